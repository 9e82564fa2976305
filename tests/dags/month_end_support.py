"""What the tests of dags/enlivy_month_end.py share: the billing DAG's scheduled October run, and what Enlivy
did as a result, counted in the emulator (e-mails, charges)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pendulum
from airflow_runs import create_scheduled_run, execute_run
from airflow_support import task_states, xcom_result

from enlivy_provider.client import EnlivyClient
from enlivy_provider.emulator.seed import DEMO_CUSTOMERS

BILLING, MONTH_END = "enlivy_recurring_billing", "enlivy_month_end"
BERLIN = "Europe/Berlin"
CUSTOMER = {c.email.split("@")[1].split(".")[0]: c.id for c in DEMO_CUSTOMERS}  # "wayne" -> org_user_…
REMINDER = "Payment reminder: your invoice is {} days past due"


def bill_october_run(dags: tuple[Any, Any]) -> Any:
    """The billing DAG's scheduled October run (data interval 1 Oct .. 1 Nov Berlin), run; its DagRun."""
    billing = dags[0]
    dag_run = execute_run(billing, create_scheduled_run(billing, pendulum.datetime(2026, 10, 1, tz=BERLIN)))
    assert str(dag_run.state) == "success", task_states(dag_run)
    return dag_run


def october_invoices(dag_run: Any) -> dict[str, dict[str, Any]]:
    """{customer id: its October invoice} of a billing run."""
    return {summary["customer_id"]: summary for summary in xcom_result(dag_run, "create_invoices")["created"]}


def bill_october(dags: tuple[Any, Any]) -> dict[str, dict[str, Any]]:
    """The billing DAG's scheduled October run; {customer id: its October invoice}."""
    return october_invoices(bill_october_run(dags))


def emails(emulator: Any) -> Counter[tuple[str, str]]:
    """(invoice id, "invoice" or the reminder's subject) of every e-mail Enlivy sent (a first send carries
    Enlivy's own subject, "Invoice INV-…")."""
    return Counter(
        (
            e["organization_invoice_id"],
            e["subject"] if e["subject"].startswith("Payment reminder") else "invoice",
        )
        for e in emulator.emails()
    )


def charges(emulator: Any) -> Counter[str]:
    with EnlivyClient(emulator.base_url, emulator.token, organization_id=emulator.org_id) as api:
        return Counter(log["organization_invoice_id"] for log in api.list_charge_logs())
