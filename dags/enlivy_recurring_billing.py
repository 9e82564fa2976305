"""Monthly usage-based billing with Enlivy.

Every month, for the month that just ended (the run's data interval, in the DAG's time zone):

1. ``collect_usage`` reads the customers and plans (``data/billing_customers.yaml``) and the month's usage
   (``data/usage.csv``, standing in for a metering database) and prices it: a fixed plan fee plus metered
   usage above the plan's allowance, with Decimal arithmetic.
2. ``create_invoices`` (:class:`EnlivyCreateInvoicesOperator`) renders ``templates/monthly_invoices.json.j2``
   into one invoice per customer and creates them in bulk, exactly once: a re-run, a retry or a backfill of
   the same month finds the invoices it already made (``if_exists="skip"``) and creates none.
3. ``wait_for_payment`` (deferrable :class:`EnlivyInvoiceStatusSensor`) waits in the triggerer until every
   invoice is paid, for a bounded time; ``soft_fail`` turns a timeout into a skip, so unpaid invoices do not
   fail the run.
4. ``list_unpaid`` reads every invoice's current status and logs the unpaid and overdue ones;
   ``summary`` logs (and writes) a table: customer, number, total, status, and records an asset event on the
   billing's invoices, ``enlivy://<API host>/organizations/<org>/invoices?billing_key=monthly-usage``
   (through the ``enlivy_billed_invoices`` asset alias: host and organization come from the connection when
   the task runs), its ``extra`` the period and the counts - so a DAG scheduled on that asset or on the
   alias runs once a period is billed.

With the ``dry_run`` param the run renders and validates every invoice of the period through the same
template and operator (``dry_run=True``), writes a preview report and writes nothing to Enlivy.

Scheduling: monthly at midnight Europe/Berlin with data intervals (``CronDataIntervalTimetable``), so the
run started on 1 November bills 1-31 October. ``catchup`` is off; missed months are billed with
``airflow backfill create --dag-id enlivy_recurring_billing --from-date ... --to-date ...``, which is safe
to repeat. A manual run (``airflow dags test enlivy_recurring_billing 2026-11-01``) bills the last complete
month before its logical date; a run triggered without one (``airflow dags trigger``, the REST API, the UI)
bills the last complete month before it was triggered. Invoices are issued on the day the billed month ends
(1 November for October), however the run was made, and fall due ``due_in_days`` later.

Configuration (read when the file is parsed, no API call): ``ENLIVY_PAYMENT_POKE_SECONDS`` (default 900)
and ``ENLIVY_PAYMENT_TIMEOUT_SECONDS`` (default 3 days) bound the payment wait; reports go to the
``report_dir`` param, else ``$ENLIVY_REPORT_DIR``, else ``$AIRFLOW_HOME/enlivy-reports``.
See docs/recurring-billing.md.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, AssetAlias, Param, task
from billing_data import (
    BILLED_INVOICES_ALIAS,
    BILLING_KEY,
    INVOICES_TEMPLATE,
    TIMEZONE,
    billing_period,
    data_params,
    expected_billings,
    money,
    priced_accounts,
    report_dir,
)

from enlivy_provider.compat import CronDataIntervalTimetable
from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator
from enlivy_provider.sensors.invoice_status import EnlivyInvoiceStatusSensor
from enlivy_provider.text_table import format_table

DAG_ID = "enlivy_recurring_billing"
PAYMENT_POKE_SECONDS = float(os.environ.get("ENLIVY_PAYMENT_POKE_SECONDS", "900"))
PAYMENT_TIMEOUT_SECONDS = float(os.environ.get("ENLIVY_PAYMENT_TIMEOUT_SECONDS", str(3 * 24 * 3600)))
PAID_STATUSES = ("paid", "solved")
# The alias the summary task attaches the billing's invoices asset to (its URI needs the connection's host);
# enlivy_month_end is scheduled on it.
BILLED_INVOICES = AssetAlias(name=BILLED_INVOICES_ALIAS)
RUN_OUTCOME = {
    "created": "created",
    "existing": "already existed",
    "replayed": "created by a concurrent or earlier attempt",
}


def _brief(invoices: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The few invoice fields the summary needs, JSON-safe (amounts as strings)."""
    keep = (
        "status",
        "formatted_number",
        "number",
        "currency",
        "total",
        "due_at",
        "organization_receiver_user_id",
    )
    return {
        invoice_id: {
            key: (str(value) if key == "total" else value) for key, value in invoice.items() if key in keep
        }
        for invoice_id, invoice in invoices.items()
    }


# ------------------------------------------------------------------------------------------ the DAG

with DAG(
    dag_id=DAG_ID,
    description="Monthly usage-based invoices: plan fee + metered usage, created once, then wait for payment",
    schedule=CronDataIntervalTimetable("0 0 1 * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    # Billing keys make racing runs of one month safe (the server keeps one invoice per billing), but one run
    # at a time keeps the months in order and the API load predictable; backfills queue behind each other.
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    params={
        "dry_run": Param(
            False,
            type="boolean",
            description="Render and validate every invoice, write a preview, create none",
        ),
        **data_params(),
    },
    tags=["enlivy", "billing", "example"],
    doc_md=__doc__,
) as dag:

    @task
    def collect_usage(params: dict[str, Any], **context: Any) -> dict:
        """Customers + plans + the period's usage -> priced accounts for the invoice template."""
        from airflow.providers.common.compat.sdk import AirflowFailException

        from enlivy_provider.run_dates import run_data_interval

        # The run's interval; a run triggered without a logical date has none and bills the last whole
        # month before it was triggered (the provider's rule, so the operators agree).
        interval = run_data_interval(context)
        if interval is None:
            raise AirflowFailException("this run has no data interval and its timetable gives none")
        period = billing_period(*interval)
        accounts = priced_accounts(params, period)
        print(f"Billing {period['label']} ({period['start']} .. {period['end']}): {len(accounts)} customers")
        return {"period": period, "accounts": accounts}

    @task.branch
    def choose_mode(params: dict[str, Any]) -> str:
        return "preview_invoices" if params.get("dry_run") else "create_invoices"

    preview_invoices = EnlivyCreateInvoicesOperator(
        task_id="preview_invoices",
        invoices=INVOICES_TEMPLATE,
        billing_key=BILLING_KEY,
        if_exists="skip",
        dry_run=True,
        retries=0,
    )

    create_invoices = EnlivyCreateInvoicesOperator(
        task_id="create_invoices",
        invoices=INVOICES_TEMPLATE,
        billing_key=BILLING_KEY,
        if_exists="skip",  # this billing's invoice (customer, month, BILLING_KEY) already exists -> reuse it
        skip_invalid=False,  # one invalid invoice stops the batch before any write
        max_concurrency=8,
    )

    wait_for_payment = EnlivyInvoiceStatusSensor(
        task_id="wait_for_payment",
        invoice_ids=create_invoices.output,
        target_statuses=PAID_STATUSES,
        deferrable=True,
        poke_interval=PAYMENT_POKE_SECONDS,
        timeout=PAYMENT_TIMEOUT_SECONDS,
        soft_fail=True,  # unpaid after the timeout: skip (list_unpaid shows them), do not fail the run
        retries=0,
    )

    @task
    def write_preview_report(preview: dict[str, Any], params: dict[str, Any], **context: Any) -> str:
        """Write the dry run's invoices (lines and totals) as JSON and a readable table; fail if any is invalid."""
        import json

        from airflow.providers.common.compat.sdk import AirflowFailException

        usage = context["ti"].xcom_pull(task_ids="collect_usage")
        period = usage["period"]
        names = {account["key"]: account["name"] for account in usage["accounts"]}
        previews = preview.get("previews") or []
        invalid = preview.get("invalid") or []
        rows = []
        for item in previews:
            totals = item.get("totals") or {}
            rows.append(
                {
                    "customer": names.get(item.get("key"), item.get("key") or item.get("customer_id") or "?"),
                    "lines": str(len(item.get("lines") or [])),
                    "sub_total": money(item.get("currency"), totals.get("sub_total", 0)),
                    "tax": money(item.get("currency"), totals.get("tax_total", 0)),
                    "total": money(item.get("currency"), totals.get("total", 0)),
                }
            )
        table = format_table(
            rows,
            [
                ("customer", "customer"),
                ("lines", "lines"),
                ("sub_total", "net"),
                ("tax", "tax"),
                ("total", "total"),
            ],
            right=("lines", "sub_total", "tax", "total"),
        )
        out_dir = report_dir(params.get("report_dir"))
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = f"billing-preview-{period['start'][:7]}"
        # "expected": the rows the month-end DAG reconciles Enlivy against (the same function builds them),
        # so this file is also an `expected` input of EnlivyReconcileInvoicesOperator.
        expected = expected_billings(previews, period)
        (out_dir / f"{stem}.json").write_text(
            json.dumps({"period": period, **preview, "expected": expected}, indent=2, default=str),
            encoding="utf-8",
        )
        text = f"DRY RUN - invoices for {period['label']} ({period['start']} .. {period['end']}), nothing created\n"
        text += table + "\n"
        for problem in invalid:
            text += f"INVALID {problem}\n"
        (out_dir / f"{stem}.txt").write_text(text, encoding="utf-8")
        print(text)
        print(f"Preview written to {out_dir / stem}.txt and .json")
        if invalid:
            raise AirflowFailException(
                f"{len(invalid)} invoice(s) of {period['label']} are invalid: {invalid}"
            )
        return str(out_dir / f"{stem}.txt")

    @task(trigger_rule="none_failed_min_one_success")
    def list_unpaid(created: dict[str, Any]) -> dict[str, Any]:
        """After the wait (paid, timed out or skipped): read every invoice's status, log unpaid and overdue ones."""
        from enlivy_provider.hooks.enlivy import EnlivyHook

        ids = list(created.get("invoice_ids") or [])
        hook = EnlivyHook()
        invoices: dict[str, dict[str, Any]] = {}
        for offset in range(0, len(ids), 30):  # the API's `ids` filter takes at most 30 ids
            batch = ids[offset : offset + 30]
            for invoice in hook.list_invoices(ids=batch, per_page=len(batch)):
                invoices[invoice["id"]] = invoice
        now = pendulum.now("UTC")
        unpaid = []
        for invoice_id in ids:
            invoice = invoices.get(invoice_id, {"id": invoice_id, "status": "missing"})
            if invoice.get("status") in PAID_STATUSES:
                continue
            due_at = invoice.get("due_at")
            overdue = invoice.get("status") == "overdue" or bool(due_at and pendulum.parse(str(due_at)) < now)
            unpaid.append(
                {
                    "id": invoice_id,
                    "number": invoice.get("formatted_number") or invoice.get("number"),
                    "customer_id": invoice.get("organization_receiver_user_id"),
                    "total": money(invoice.get("currency"), invoice.get("total", 0)),
                    "status": invoice.get("status"),
                    "due_at": due_at,
                    "overdue": overdue,
                }
            )
        for item in unpaid:
            flag = "OVERDUE" if item["overdue"] else "unpaid"
            print(f"{flag}: {item['number']} {item['total']} ({item['status']}, due {item['due_at']})")
        print(f"{len(unpaid)} of {len(ids)} invoices unpaid, {sum(i['overdue'] for i in unpaid)} overdue")
        statuses = {invoice_id: invoices.get(invoice_id, {}).get("status", "missing") for invoice_id in ids}
        return {"statuses": statuses, "unpaid": unpaid, "invoices": _brief(invoices)}

    @task(outlets=[BILLED_INVOICES])
    def summary(
        created: dict[str, Any], payments: dict[str, Any], params: dict[str, Any], **context: Any
    ) -> list:
        """Log a table of the period's invoices (customer, number, total, status) and write it to a file;
        record the billed period as an event of the billing's invoices asset."""
        from enlivy_provider.assets import create_asset
        from enlivy_provider.hooks.enlivy import EnlivyHook

        usage = context["ti"].xcom_pull(task_ids="collect_usage")
        period = usage["period"]
        from enlivy_provider.invoices.lookups import customer_label

        hook = EnlivyHook()
        names = {customer["id"]: customer_label(customer) for customer in hook.list_customers()}
        rows = []
        for outcome in ("created", "existing", "replayed"):
            for item in created.get(outcome) or []:
                invoice = payments["invoices"].get(item["id"], {})
                rows.append(
                    {
                        "customer": names.get(item.get("customer_id"), item.get("customer_id") or "?"),
                        "number": item.get("formatted_number") or item.get("number") or item["id"],
                        "total": money(item.get("currency"), (item.get("totals") or {}).get("total", 0)),
                        "status": payments["statuses"].get(item["id"]) or invoice.get("status") or "?",
                        "run": RUN_OUTCOME[outcome],
                    }
                )
        for failure in created.get("failed") or []:
            rows.append(
                {"customer": str(failure.get("key")), "number": "-", "total": "-", "status": "FAILED"}
            )
        rows.sort(key=lambda row: row["number"])
        table = format_table(
            rows,
            [
                ("customer", "customer"),
                ("number", "number"),
                ("total", "total"),
                ("status", "status"),
                ("run", "this run"),
            ],
            right=("total",),
        )
        counts = {
            outcome: len(created.get(outcome) or [])
            for outcome in ("created", "existing", "replayed", "failed")
        }
        title = (
            f"Invoices for {period['label']} ({period['start']} .. {period['end']}): "
            f"{counts['created']} created, {counts['existing']} already existed, "
            f"{counts['replayed']} created by a concurrent or earlier attempt, {counts['failed']} failed; "
            f"{len(payments['unpaid'])} unpaid"
        )
        out_dir = report_dir(params.get("report_dir"))
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"billing-summary-{period['start'][:7]}.txt"
        path.write_text(f"{title}\n{table}\n", encoding="utf-8")
        print(f"{title}\n{table}\nSummary written to {path}")
        billed = create_asset(
            api_host=hook.api_host, organization_id=hook.organization_id, billing_key=BILLING_KEY
        )
        extra = {
            "billing_period": period["start"][:7],
            "period_start": period["start"],
            "period_end": period["end"],
        }
        context["outlet_events"][BILLED_INVOICES].add(
            billed, extra={**extra, **counts, "unpaid": len(payments["unpaid"])}
        )
        return rows

    usage = collect_usage()
    mode = choose_mode()
    usage >> mode >> [preview_invoices, create_invoices]
    write_preview_report(preview_invoices.output)
    payments = list_unpaid(create_invoices.output)
    wait_for_payment >> payments
    summary(create_invoices.output, payments)
