"""Month-end follow-up of the billing DAG: reconcile, e-mail, remind, charge, summarize.

Runs on the 1st at 06:00 Europe/Berlin, after ``enlivy_recurring_billing`` (midnight) has invoiced the month
that just ended, and works on that month (the previous calendar month of the run's reference date):

1. ``collect_usage`` prices the same customers and usage the billing DAG bills (``billing_data``), and
   ``expected_invoices`` renders them through the billing DAG's template as a dry run (no write): what
   should have been invoiced, per customer, with totals.
2. ``reconcile`` (:class:`EnlivyReconcileInvoicesOperator`) compares that with the invoices Enlivy holds for
   the month under the billing key ``monthly-usage``, writes ``month-end-reconciliation-YYYY-MM.json`` to the
   report dir and fails the run (before anything is sent) on a missing or duplicate invoice or a wrong total.
3. ``select_invoices`` lists the unpaid invoices of the month page by page and picks: the ones never e-mailed,
   the overdue ones for each step of the dunning ladder (7, 14, 30 days past due), the ones paid by a stored
   card (``payment_method`` a card payment).
4. ``send_invoices``, ``remind_7d``/``remind_14d``/``remind_30d`` (:class:`EnlivySendInvoiceOperator`) and
   ``charge_invoices`` (:class:`EnlivyChargeInvoiceOperator`) act once per invoice and purpose: a re-run, or
   next month's run, e-mails, reminds and charges nothing twice.
5. ``summary`` logs a table: invoice, status, due date, days past due, what this run did.

Params: ``as_of`` (the day days-past-due are counted to; default today in Berlin), the billing DAG's
``customers_file``/``usage_file``/``report_dir``. See docs/month-end.md.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, CronDataIntervalTimetable, Param, task
from billing_data import TIMEZONE, money, priced_accounts, report_dir

from enlivy_provider.operators.charge import EnlivyChargeInvoiceOperator
from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator
from enlivy_provider.operators.reconcile import EnlivyReconcileInvoicesOperator
from enlivy_provider.operators.send import EnlivySendInvoiceOperator

DAG_ID = "enlivy_month_end"
BILLING_KEY = "monthly-usage"  # the billing DAG's key: these are its invoices
INVOICES_TEMPLATE = "templates/monthly_invoices.json.j2"
DUNNING_STEPS = (7, 14, 30)  # days past due at which a reminder goes out, each once per invoice
CARD_PAYMENT_METHODS = ("card_payment", "stripe_card_payment")
UNPAID_STATUSES = ("pending", "sent_email", "overdue", "partially_paid")
REPORT = "{{ ti.xcom_pull(task_ids='collect_usage')['report_path'] }}"


def billed_month(reference: Any) -> dict[str, str]:
    """The calendar month before ``reference`` (a date): ``{"start", "end" (inclusive), "label"}``."""
    first = pendulum.date(reference.year, reference.month, 1).subtract(months=1)
    end = first.add(months=1).subtract(days=1)
    return {"start": first.isoformat(), "end": end.isoformat(), "label": first.format("MMMM YYYY")}


def dunning_steps(days_past_due: int) -> list[str]:
    """The reminder steps an invoice this many days past due has reached (``["7d", "14d"]``)."""
    return [f"{days}d" for days in DUNNING_STEPS if days_past_due >= days]


with DAG(
    dag_id=DAG_ID,
    description="After monthly billing: reconcile last month, e-mail, remind overdue, charge stored cards",
    schedule=CronDataIntervalTimetable("0 6 1 * *", timezone=TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    params={
        "as_of": Param(
            None, type=["null", "string"], description="Count days past due to this date (default: today)"
        ),
        "customers_file": Param("data/billing_customers.yaml", type="string"),
        "usage_file": Param("data/usage.csv", type="string"),
        "report_dir": Param(None, type=["null", "string"]),
    },
    tags=["enlivy", "billing", "example"],
    doc_md=__doc__,
) as dag:

    @task
    def collect_usage(params: dict[str, Any], **context: Any) -> dict:
        """The billed month's priced accounts (the billing DAG's template reads them) and the report path."""
        from airflow.sdk.exceptions import AirflowFailException

        from enlivy_provider.run_dates import reference_date

        reference = reference_date(context)
        if reference is None:
            raise AirflowFailException("this run has no reference date")
        period = billed_month(reference)
        out_dir = report_dir(params.get("report_dir"))
        out_dir.mkdir(parents=True, exist_ok=True)
        return {
            "period": period,
            "accounts": priced_accounts(params, period),
            "report_path": str(out_dir / f"month-end-reconciliation-{period['start'][:7]}.json"),
        }

    expected_invoices = EnlivyCreateInvoicesOperator(
        task_id="expected_invoices",
        invoices=INVOICES_TEMPLATE,
        billing_key=BILLING_KEY,
        dry_run=True,  # renders and prices every invoice, writes nothing
        retries=0,
    )

    @task(retries=0)
    def expected_rows(preview: dict[str, Any], **context: Any) -> list[dict[str, Any]]:
        """One expected billing per customer: customer, period, total, currency."""
        period = context["ti"].xcom_pull(task_ids="collect_usage")["period"]
        rows = []
        for item in preview.get("previews") or []:
            rows.append(
                {
                    "customer_id": item["customer_id"],
                    "billing_key": BILLING_KEY,
                    "billing_period": {"start": period["start"], "end": period["end"]},
                    "total": str((item.get("totals") or {})["total"]),
                    "currency": item["currency"],
                }
            )
        return rows

    reconcile = EnlivyReconcileInvoicesOperator(
        task_id="reconcile",
        expected=expected_rows(expected_invoices.output),  # an XComArg: the rows themselves, not their text
        billing_key=BILLING_KEY,
        report_path=REPORT,
        retries=0,
    )

    @task(multiple_outputs=True)
    def select_invoices(params: dict[str, Any], **context: Any) -> dict[str, Any]:
        """The month's unpaid invoices (read page by page): which to e-mail, remind, charge."""
        from enlivy_provider.hooks.enlivy import EnlivyHook

        period = context["ti"].xcom_pull(task_ids="collect_usage")["period"]
        as_of = (
            pendulum.parse(params["as_of"]).date() if params.get("as_of") else pendulum.today(TIMEZONE).date()
        )
        from enlivy_provider.invoices.billing_identity import BILLING_KEY_FIELD
        from enlivy_provider.invoices.billing_period import BillingPeriod
        from enlivy_provider.invoices.lookups import invoice_covers_period, is_billing_invoice, is_dead
        from enlivy_provider.operators.reconcile import DEFAULT_ISSUE_GRACE_DAYS, iter_period_invoices

        month = BillingPeriod(pendulum.parse(period["start"]).date(), pendulum.parse(period["end"]).date())
        client = EnlivyHook().get_client()
        chosen: dict[str, Any] = {"send": [], "charge": [], "invoices": {}}
        chosen.update({f"remind_{step}d": [] for step in DUNNING_STEPS})
        # The window the reconciliation reads; this billing's invoices of the month, lazily page by page.
        window_end = month.end + pendulum.duration(days=DEFAULT_ISSUE_GRACE_DAYS)
        for invoice in iter_period_invoices(client, month.start, window_end, 50):
            if not is_billing_invoice(invoice) or is_dead(invoice):
                continue
            if invoice.get(BILLING_KEY_FIELD) != BILLING_KEY or not invoice_covers_period(invoice, month):
                continue
            if invoice.get("status") not in UNPAID_STATUSES:
                continue
            invoice_id = invoice["id"]
            if invoice.get("status") != "sent_email":  # never e-mailed yet (the operator skips drafts)
                chosen["send"].append(invoice_id)
            due = pendulum.parse(str(invoice["due_at"])).date() if invoice.get("due_at") else None
            past_due = (as_of - due).days if due else 0
            for step in dunning_steps(past_due):
                chosen[f"remind_{step}"].append(invoice_id)
            if invoice.get("payment_method") in CARD_PAYMENT_METHODS:
                chosen["charge"].append(invoice_id)
            chosen["invoices"][invoice_id] = {
                "number": invoice.get("formatted_number") or invoice.get("number") or invoice_id,
                "total": money(invoice.get("currency"), invoice.get("total", 0)),
                "status": invoice.get("status"),
                "due_at": str(due) if due else "-",
                "past_due": str(max(past_due, 0)),
            }
        print(f"{len(chosen['invoices'])} unpaid invoice(s) of {period['label']} as of {as_of}")
        return chosen

    selected = select_invoices()
    send = EnlivySendInvoiceOperator(task_id="send_invoices", invoice_ids=selected["send"])
    reminders = [
        EnlivySendInvoiceOperator(
            task_id=f"remind_{days}d",
            invoice_ids=selected[f"remind_{days}d"],
            purpose="reminder",
            reminder_step=f"{days}d",
            subject=f"Reminder: invoice {days} days past due",
        )
        for days in DUNNING_STEPS
    ]
    charge = EnlivyChargeInvoiceOperator(task_id="charge_invoices", invoice_ids=selected["charge"])

    @task(trigger_rule="none_failed", retries=0)  # a failed reconciliation must fail the run (leaf state)
    def summary(chosen: dict[str, Any], **context: Any) -> list[dict[str, str]]:
        """Log what this run did to each unpaid invoice of the month, as a table."""
        from enlivy_provider.text_table import format_table

        ti = context["ti"]
        chosen = chosen or {"invoices": {}}  # the run stopped before selecting (a failed reconciliation)
        done: dict[str, list[str]] = {}
        for task_id in ("send_invoices", *(f"remind_{d}d" for d in DUNNING_STEPS), "charge_invoices"):
            result = ti.xcom_pull(task_ids=task_id) or {}
            for entry in result.get("invoices") or []:
                outcome = entry.get("outcome")
                if outcome in ("sent", "charged") or entry.get("charge_result"):
                    label = task_id.replace("_invoices", "")
                    done.setdefault(entry["invoice_id"], []).append(f"{label}:{outcome}")
        rows = [
            {**info, "done": ", ".join(done.get(invoice_id, [])) or "-"}
            for invoice_id, info in sorted(chosen["invoices"].items(), key=lambda item: item[1]["number"])
        ]
        print(
            format_table(
                rows,
                [
                    ("number", "invoice"),
                    ("total", "total"),
                    ("status", "status"),
                    ("due_at", "due"),
                    ("past_due", "days past due"),
                    ("done", "this run"),
                ],
                right=("total", "past_due"),
            )
        )
        return rows

    collect = collect_usage()
    collect >> expected_invoices
    reconcile >> selected
    [send, *reminders, charge] >> summary(selected)
