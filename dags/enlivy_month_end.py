"""Month-end follow-up of the monthly billing: reconcile last month, e-mail, remind, charge, summarize.

When it runs, and which month it closes (``collect_usage``):

* **When the billing reports a month** (the schedule's assets): ``enlivy_recurring_billing``'s ``summary``
  records an event on the billing's invoices asset through the ``enlivy_billed_invoices`` alias, after it
  waited for payments. The run this starts closes the month the event names in its extra
  (``billing_period``), never one guessed from when the event came; its reference date is the day it was
  triggered. Months another run closed after their event are not closed again (``still_open`` skips). When
  the events name more than one month still open, it closes the one reported last and fails at the end,
  naming the others with the commands that close them. Events of no ``monthly-usage`` billing, or an extra
  that names no whole month, fail the run before anything is written.
* **The backstop: the 4th at 06:00 Europe/Berlin** (the schedule's time part; data interval 4th to 4th).
  It closes the calendar month before its reference date (the day its interval ends) unless another run
  closed it (``month-end-closed-YYYY-MM.json``, written when a close succeeds): then ``still_open`` skips
  the rest. If the billing never created the month's invoices, its reconciliation finds them missing and fails.
* **By hand**: ``--conf '{"billing_period": "2026-09"}'`` closes September, dated no earlier than the day
  after September ended; without it, the month before the run's reference date (``run_dates``).

1. ``collect_usage`` prices the customers and usage the billing DAG bills, with the same function
   (``billing_data.priced_accounts``); ``expected_invoices`` renders them through the billing DAG's template
   as a dry run (no write) and ``expected_rows`` turns the previews into one expected billing per customer
   (``billing_data.expected_billings``).
2. ``reconcile`` (:class:`EnlivyReconcileInvoicesOperator`) compares them with the invoices Enlivy holds for
   the month under the billing key ``monthly-usage``, writes ``month-end-reconciliation-YYYY-MM.json``
   (``ObjectStoragePath``) and fails, without retries, on a missing or duplicate invoice or a wrong total:
   nothing is then e-mailed, reminded or charged.
3. ``select_invoices`` reads the unpaid invoices of the billing key once, page by page, and picks: the
   month's invoices never sent, the month's invoices paid by a stored card, and every invoice at a step of
   the dunning ladder (7, 14, 30 days past due) on the reference date.
4. ``send_invoices`` (first e-mail), ``charge_invoices``, then ``remind_7d``/``remind_14d``/``remind_30d``
   act once per invoice and purpose (the operators' keys): a re-run sends, charges and reminds nothing again.
5. ``summary`` runs whatever happened before: it logs and writes ``month-end-summary-YYYY-MM.txt`` (what
   was found, what was done to each invoice) and fails the run, naming the findings, if a task failed.

Params: the billing DAG's ``customers_file`` and ``usage_file`` (what to expect), ``report_dir`` (a path,
or a URL such as ``s3://bucket/reports``; else ``$ENLIVY_REPORT_DIR``, else ``$AIRFLOW_HOME/enlivy-reports``)
and ``billing_period`` (a month to close, ``YYYY-MM``).
See docs/month-end.md.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, AssetAlias, Param, task
from billing_data import BILLED_INVOICES_ALIAS, BILLING_KEY, INVOICES_TEMPLATE, TIMEZONE, data_params
from month_end_rules import DUNNING_STEPS

from enlivy_provider.compat import CronDataIntervalTimetable, asset_or_time_schedule, run_task_states
from enlivy_provider.operators.charge import EnlivyChargeInvoiceOperator
from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator
from enlivy_provider.operators.reconcile import EnlivyReconcileInvoicesOperator
from enlivy_provider.operators.send import EnlivySendInvoiceOperator

DAG_ID = "enlivy_month_end"
FAIL_ON = ("missing", "duplicate", "total_mismatch")

with DAG(
    dag_id=DAG_ID,
    description="After monthly billing: reconcile last month, e-mail, remind overdue, charge stored cards",
    schedule=asset_or_time_schedule(
        timetable=CronDataIntervalTimetable("0 6 4 * *", timezone=TIMEZONE),  # the backstop
        assets=[AssetAlias(name=BILLED_INVOICES_ALIAS)],  # the billing reported a month (a list: Airflow 2)
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIMEZONE),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
    params={
        **data_params(),  # the billing DAG's files: what it billed from is what is expected
        "billing_period": Param(
            None,
            type=["null", "string"],
            pattern="^[0-9]{4}-(0[1-9]|1[0-2])$",
            description="The month to close (YYYY-MM); else the month the billing's event names, or the month "
            "before the run's reference date",
        ),
    },
    tags=["enlivy", "billing", "example"],
    doc_md=__doc__,
) as dag:

    @task
    def collect_usage(params: dict[str, Any], **context: Any) -> dict[str, Any]:
        """The month this run closes and its reference date (see the module docstring), its priced accounts
        (the billing template reads them), the report URLs; why the run has nothing to do, if so; and the
        billed months it leaves open."""
        import datetime as dt
        import json

        from airflow.providers.common.compat.sdk import AirflowFailException, ObjectStoragePath
        from billing_data import priced_accounts, report_url
        from month_end_rules import (
            billed_month,
            close_commands,
            months_billed_by_events,
            months_to_close,
            named_month,
        )

        from enlivy_provider.compat import triggering_events
        from enlivy_provider.run_dates import is_asset_triggered, reference_date, run_type

        reference = reference_date(context)
        if reference is None:
            raise AirflowFailException("this run has no reference date (no data interval, no trigger time)")
        run = context["dag_run"]
        base = report_url(params.get("report_dir"))

        def closed_by(month: str) -> dict[str, Any] | None:
            """Who closed ``month`` (its marker), unless it was this run (cleared: it closes it again)."""
            path = ObjectStoragePath(f"{base}/month-end-closed-{month}.json")
            marker = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
            return None if marker is None or marker.get("run_id") == run.run_id else marker

        skip, left_open = None, []
        try:
            if params.get("billing_period"):
                period, why = named_month(params["billing_period"], "params.billing_period"), "as asked"
                # A manual run in the first days of a month infers the interval before: never date a close
                # before the month it closes has ended.
                reference = max(reference, dt.date.fromisoformat(period["end"]) + dt.timedelta(days=1))
            elif is_asset_triggered(context):
                billed = months_billed_by_events(triggering_events(context), BILLING_KEY)
                markers = {month: closed_by(month) for month in billed}
                closed_at = {
                    month: dt.datetime.fromisoformat(marker["closed_at"]) if marker else None
                    for month, marker in markers.items()
                }
                chosen, left_open = months_to_close(billed, closed_at)
                why = f"the billing reported {', '.join(sorted(billed))}"
                if chosen is None:
                    chosen = max(billed)
                    skip = f"every month the billing reported ({', '.join(sorted(billed))}) was closed after"
                    skip += " its report: " + "; ".join(
                        f"{month} by run {marker['run_id']}" for month, marker in markers.items() if marker
                    )
                period = named_month(chosen, "billing_period")
            else:
                period, why = billed_month(reference), "the month before the reference date"
        except ValueError as error:  # a permanent error: retrying reads the same events
            raise AirflowFailException(f"no month to close: {error}") from error
        month = period["start"][:7]
        marker = closed_by(month) if run_type(context) == "scheduled" and skip is None else None  # backstop
        if marker is not None:
            skip = (
                f"{period['label']} was closed by run {marker.get('run_id')} "
                f"(as of {marker.get('reference_date')}, at {marker.get('closed_at')})"
            )
        print(
            f"{'Checking' if skip else 'Closing'} {period['label']} ({period['start']} .. {period['end']}; "
            f"{why}) as of {reference}"
        )
        if left_open:
            print(
                f"WARNING: also billed and not closed: {', '.join(left_open)} (this run closes {month}); "
                f"close each with: {close_commands(DAG_ID, left_open)}"
            )
        return {
            "period": period,
            "reference_date": reference.isoformat(),
            "accounts": [] if skip else priced_accounts(params, period),
            "report": f"{base}/month-end-reconciliation-{month}.json",
            "summary": f"{base}/month-end-summary-{month}.txt",
            "closed": f"{base}/month-end-closed-{month}.json",
            "skip": skip,
            "left_open": left_open,
        }

    @task.short_circuit(ignore_downstream_trigger_rules=True)
    def still_open(usage: dict[str, Any]) -> bool:
        """False (every later task skipped) when the month was closed already: the 4th-of-month backstop
        after a run closed it, or a run whose billing reports were all handled by later closes."""
        if usage["skip"]:
            print(f"{usage['skip']}: nothing to do")
            return False
        return True

    expected_invoices = EnlivyCreateInvoicesOperator(
        task_id="expected_invoices",
        invoices=INVOICES_TEMPLATE,  # the billing DAG's template over the same accounts
        billing_key=BILLING_KEY,
        dry_run=True,  # renders and prices every invoice, writes nothing
    )

    @task(retries=0)
    def expected_rows(preview: dict[str, Any], usage: dict[str, Any]) -> dict[str, Any]:
        """One expected billing per customer (customer, billing key, period, total, currency), and names."""
        from billing_data import expected_billings

        previews = preview.get("previews") or []
        names = {account["key"]: account["name"] for account in usage["accounts"]}
        return {
            "expected": expected_billings(previews, usage["period"]),
            "names": {
                item["customer_id"]: names.get(item.get("key"), item["customer_id"]) for item in previews
            },
        }

    @task(multiple_outputs=True)
    def select_invoices(usage: dict[str, Any]) -> dict[str, Any]:
        """The unpaid invoices of the billing key, read once: which to e-mail, charge and remind."""
        import datetime as dt

        from month_end_rules import UNPAID_STATUSES, choose_actions

        from enlivy_provider.hooks.enlivy import EnlivyHook

        reference = dt.date.fromisoformat(usage["reference_date"])
        hook = EnlivyHook()
        try:
            invoices = hook.get_client().list_invoices(
                status=",".join(UNPAID_STATUSES), include="line_items", per_page=50
            )
            chosen = choose_actions(invoices, usage["period"], reference, BILLING_KEY)
        finally:
            hook.close()
        reminders = ", ".join(f"{d}d: {len(chosen[f'remind_{d}d'])}" for d in DUNNING_STEPS)
        print(
            f"As of {reference}: {len(chosen['send'])} to e-mail, {len(chosen['charge'])} to charge "
            f"(stored card), reminders {reminders}"
        )
        return chosen

    usage = collect_usage()
    gate = still_open(usage)
    rows = expected_rows(expected_invoices.output, usage)
    reconcile = EnlivyReconcileInvoicesOperator(
        task_id="reconcile",
        expected=rows,  # an XComArg: the rows themselves, not their text
        report_path="{{ ti.xcom_pull(task_ids='collect_usage')['report'] }}",
        fail_on=FAIL_ON,  # AirflowFailException: no retry, nothing e-mailed or charged
    )
    selected = select_invoices(usage)
    send = EnlivySendInvoiceOperator(
        task_id="send_invoices", invoice_ids=selected["send"], purpose="first_send"
    )
    # After the first e-mail: the send operator skips paid invoices, and a charged invoice is paid.
    charge = EnlivyChargeInvoiceOperator(task_id="charge_invoices", invoice_ids=selected["charge"])
    reminders = [
        EnlivySendInvoiceOperator(
            task_id=f"remind_{days}d",
            invoice_ids=selected[f"remind_{days}d"],
            purpose="reminder",
            reminder_step=f"{days}d",  # the key's purpose: "reminder:7d", once per invoice
            subject=f"Payment reminder: your invoice is {days} days past due",
        )
        for days in DUNNING_STEPS
    ]

    @task(trigger_rule="all_done", retries=0)
    def summary(**context: Any) -> dict[str, Any]:
        """What the run found and did, as a table (log and file); fails the run if a task before it failed."""
        from airflow.providers.common.compat.sdk import AirflowFailException, ObjectStoragePath
        from month_end_rules import (
            ACTION_TASKS,
            SUMMARY_COLUMNS,
            action_counts,
            close_commands,
            describe_actions,
            describe_findings,
            summary_rows,
        )

        from enlivy_provider.text_table import format_table

        ti = context["ti"]
        usage = ti.xcom_pull(task_ids="collect_usage") or {}
        period = usage.get("period") or {}
        names = (ti.xcom_pull(task_ids="expected_rows") or {}).get("names") or {}
        states = run_task_states(context)
        failed = sorted(task for task, state in states.items() if state == "failed" and task != ti.task_id)
        blocked = sorted(task for task, state in states.items() if state == "upstream_failed")
        recon = ti.xcom_pull(task_ids="reconcile")
        # A task that failed on some invoices pushed its result as "action_result" before failing.
        results = {
            task_id: ti.xcom_pull(task_ids=task_id) or ti.xcom_pull(task_ids=task_id, key="action_result")
            for task_id in ACTION_TASKS
        }
        lines = [
            f"Month-end for {period.get('label', '?')} ({period.get('start')} .. {period.get('end')}), "
            f"as of {usage.get('reference_date')}"
        ]
        findings: list[str] = []
        if recon is not None:
            counts = ", ".join(f"{name} {n}" for name, n in recon["counts"].items())
            lines.append(f"Reconciliation: {recon['expected']} expected billings; {counts}")
        elif usage.get("report") and ObjectStoragePath(usage["report"]).exists():
            import json

            report = json.loads(ObjectStoragePath(usage["report"]).read_text(encoding="utf-8"))
            findings = describe_findings((r for r in report if r.get("category") in FAIL_ON), names)
            lines.append(f"Reconciliation FAILED: {len(findings)} finding(s) that stop the month-end")
            lines += [f"  {finding}" for finding in findings]
        lines.append(f"Report: {usage.get('report')}")
        chosen = ti.xcom_pull(task_ids="select_invoices")
        rows = summary_rows(chosen or {}, results, names)
        if chosen is None:
            lines.append(
                "This run: nothing e-mailed, reminded or charged (it stopped before choosing invoices)"
            )
        else:
            lines.append("This run: " + describe_actions(action_counts(results)))
            lines.append(
                format_table(rows, SUMMARY_COLUMNS) if rows else "Nothing to e-mail, remind or charge."
            )
        if failed or blocked:
            lines.append(f"FAILED: {', '.join(failed) or '-'}; not run: {', '.join(blocked) or '-'}")
        left_open = usage.get("left_open") or []
        if left_open:
            lines.append(
                f"NOT CLOSED (billed, never closed): {', '.join(left_open)}; close each with: "
                f"{close_commands(DAG_ID, left_open)}"
            )
        text = "\n".join(lines)
        if usage.get("summary"):
            target = ObjectStoragePath(usage["summary"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text + "\n", encoding="utf-8")
        print(f"{text}\nSummary written to {usage.get('summary')}")
        if failed or blocked:
            named = f": {'; '.join(findings)}" if findings else ""
            raise AirflowFailException(
                f"month-end of {period.get('label', 'an unknown month')} failed ({', '.join(failed)}){named}"
            )
        import json

        from airflow.providers.common.compat.sdk import timezone

        closed = {  # what the 4th-of-month backstop reads: the month is closed, by whom
            "period": period,
            "run_id": context["dag_run"].run_id,
            "reference_date": usage.get("reference_date"),
            "closed_at": timezone.utcnow().isoformat(),
        }
        ObjectStoragePath(usage["closed"]).write_text(json.dumps(closed) + "\n", encoding="utf-8")
        if left_open:  # this month is closed; the older ones need a person (e-mails, card charges)
            raise AirflowFailException(
                f"{period['label']} closed, but billed months were never closed: {', '.join(left_open)}; "
                f"close each with: {close_commands(DAG_ID, left_open)}"
            )
        return {
            "period": period,
            "reference_date": usage.get("reference_date"),
            "reconciliation": recon["counts"] if recon else None,
            "actions": action_counts(results),
            "rows": rows,
            "summary": usage.get("summary"),
        }

    usage >> gate >> [expected_invoices, selected]
    reconcile >> selected
    send >> charge >> reminders
    [usage, rows, reconcile, selected, send, charge, *reminders] >> summary()
