"""Invoice paid: mark the order paid and write its receipt line, once per invoice. Requires Airflow 3.

The DAG is scheduled on an asset (``enlivy://…/invoices?status=paid``) that an ``AssetWatcher`` feeds: the
triggerer runs :class:`~enlivy_provider.triggers.invoice_events.EnlivyInvoiceEventTrigger`, which reads the
organization's invoice event trail every ``ENLIVY_PAID_POLL_SECONDS`` and records one asset event per invoice
that became ``paid`` (its invoice id, old and new status, trail entry id in ``extra["payload"]``). No task
waits, no webhook endpoint is needed.

``record_paid_invoices`` handles every event of its run (a run can carry several, docs/events.md): it
reads the invoice from Enlivy and, in one SQLite transaction of the ledger (``ENLIVY_PAID_LEDGER``), marks
the order paid (``paid_orders``) and writes the receipt line (``receipts``). The invoice id is the key of
both tables, so an event delivered again (the trigger delivers at least once) or an invoice paid, reopened
and paid again changes nothing the second time: the task reports it under ``already_recorded``.

Airflow 2.11 has no ``AssetWatcher``: there this file defines no DAG, and tests/dags/test_dagbag.py says so
when it skips it. See docs/events.md, "Polling for invoice status changes".
"""

from __future__ import annotations

import os

from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

from enlivy_provider.assets import invoices_uri

DAG_ID = "enlivy_invoice_paid"
POLL_SECONDS = float(os.environ.get("ENLIVY_PAID_POLL_SECONDS", "60"))
LEDGER = os.environ.get("ENLIVY_PAID_LEDGER", "/tmp/enlivy_paid_ledger.sqlite3")
# What the asset URI names (the trigger itself reads the connection): your connection's API host and org.
API_HOST = os.environ.get("ENLIVY_API_HOST", "api.enlivy.com")
ORGANIZATION_ID = os.environ.get("ENLIVY_ORGANIZATION_ID", "org_acme")

LEDGER_TABLES = (
    "CREATE TABLE IF NOT EXISTS paid_orders (invoice_id TEXT PRIMARY KEY, order_reference TEXT NOT NULL,"
    " paid_at TEXT, event_trail_id TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS receipts (invoice_id TEXT PRIMARY KEY, number TEXT, total TEXT NOT NULL,"
    " currency TEXT NOT NULL, line TEXT NOT NULL)",
)

if AIRFLOW_V_3_0_PLUS:
    from typing import Any

    import pendulum
    from airflow.providers.common.compat.sdk import DAG, Asset, task

    from enlivy_provider.compat import AssetWatcher
    from enlivy_provider.triggers.invoice_events import EnlivyInvoiceEventTrigger

    paid_invoices = Asset(
        name="enlivy_paid_invoices",
        uri=invoices_uri(API_HOST, ORGANIZATION_ID, status="paid"),
        watchers=[
            AssetWatcher(
                name="enlivy_invoice_paid_watcher",
                trigger=EnlivyInvoiceEventTrigger(statuses=["paid"], poll_interval=POLL_SECONDS),
            )
        ],
    )

    with DAG(
        dag_id=DAG_ID,
        description="Mark the order paid and write its receipt line when an Enlivy invoice is paid",
        schedule=[paid_invoices],
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,  # one writer of the ledger at a time
        default_args={"retries": 3, "retry_delay": pendulum.duration(seconds=30)},
        tags=["enlivy", "events", "example"],
        doc_md=__doc__,
    ):

        @task
        def record_paid_invoices(triggering_asset_events: Any = None) -> dict[str, list[str]]:
            """Mark each paid invoice's order paid and write its receipt line, at most once per invoice."""
            import sqlite3
            from decimal import Decimal

            from enlivy_provider.hooks.enlivy import EnlivyHook

            payloads = [
                event.extra["payload"]
                for event in triggering_asset_events[paid_invoices]
                if isinstance(event.extra.get("payload"), dict)
            ]
            client = EnlivyHook().get_client()
            recorded: list[str] = []
            already: list[str] = []
            ledger = sqlite3.connect(LEDGER, timeout=60)
            try:
                for statement in LEDGER_TABLES:
                    ledger.execute(statement)
                for payload in payloads:
                    invoice_id = payload["invoice_id"]
                    invoice = client.get_invoice(invoice_id)
                    reference = invoice.get("peppol_sales_order_reference") or invoice_id
                    total, currency = Decimal(str(invoice["total"])), invoice["currency"]
                    number = invoice.get("formatted_number") or invoice.get("number")
                    with ledger:  # one transaction: the order and its receipt line, or neither
                        marked = ledger.execute(
                            "INSERT INTO paid_orders VALUES (?, ?, ?, ?) ON CONFLICT (invoice_id) DO NOTHING",
                            (invoice_id, reference, invoice.get("paid_at"), payload["event_trail_id"]),
                        )
                        if marked.rowcount == 0:
                            already.append(invoice_id)
                            continue
                        line = f"Received {total} {currency} for invoice {number or invoice_id} ({reference})"
                        ledger.execute(
                            "INSERT INTO receipts VALUES (?, ?, ?, ?, ?)",
                            (invoice_id, number, str(total), currency, line),
                        )
                    recorded.append(invoice_id)
                    print(line)
            finally:
                ledger.close()
            if already:
                print(f"Already recorded by an earlier run, left as they were: {', '.join(already)}")
            return {"recorded": recorded, "already_recorded": already}

        record_paid_invoices()
