"""The month-end DAG's rules as plain functions (no Airflow, no HTTP): which month a run closes, which
invoices it e-mails, charges and reminds, and the readable summary of what it did.

Not a DAG file (``.airflowignore``): ``enlivy_month_end.py`` imports it from the dags folder, which Airflow puts
on ``sys.path``. Light at import: the provider's helpers load inside the functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from billing_data import billing_period, money

#: Days past due at which a reminder goes out. An invoice gets the highest step it has reached, once per
#: step: a monthly run that finds an invoice 20 days late sends the 14-day reminder, not 7 and 14 together.
DUNNING_STEPS = (7, 14, 30)
#: An invoice paid by a stored card: the customer's card is charged instead of waiting for a transfer.
CARD_PAYMENT_METHODS = ("card_payment", "stripe_card_payment")
#: Issued and not settled (Enlivy's statuses; ``sent_email``/``sent_physical``: delivered, still unpaid).
UNPAID_STATUSES = ("pending", "sent_email", "sent_physical", "payment_partial", "overdue")
#: Never delivered: the status Enlivy moves to ``sent_email`` when the invoice is e-mailed.
NOT_SENT = "pending"
ACTION_TASKS = ("send_invoices", "charge_invoices", *(f"remind_{days}d" for days in DUNNING_STEPS))


def billed_month(reference: dt.date) -> dict[str, str]:
    """The calendar month before ``reference`` as ``{"start", "end" (inclusive), "label"}``, by the same rule
    the billing DAG turns its data interval into a period (``billing_data.billing_period``)."""
    import pendulum

    first = pendulum.datetime(reference.year, reference.month, 1, tz="UTC")
    return _calendar_month(first.subtract(months=1))


def _calendar_month(first: Any) -> dict[str, str]:
    """The calendar month starting on ``first`` (a UTC midnight), by the billing DAG's rule."""
    return billing_period(first, first.add(months=1), tz="UTC")


def named_month(value: Any, field: str) -> dict[str, str]:
    """The calendar month ``value`` names (``"2026-10"``) as :func:`billed_month` gives it; ValueError naming
    ``field`` when it names none."""
    import re

    import pendulum

    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", value):
        raise ValueError(f"{field}: {value!r} is not a month (YYYY-MM)")
    return _calendar_month(pendulum.datetime(int(value[:4]), int(value[5:]), 1, tz="UTC"))


def _billing_key_of(uri: str) -> str | None:
    """The ``billing_key`` an ``enlivy://`` invoices asset is narrowed to (None: another asset)."""
    from enlivy_provider.assets import narrowing_of

    try:
        return narrowing_of(uri).get("billing_key")
    except ValueError:  # not an enlivy invoices asset (a file, an x- scheme)
        return None


def months_billed_by_events(events: Iterable[Any], billing_key: str) -> dict[str, dt.datetime]:
    """``{"2026-10": time of the latest event naming it}`` for the events of ``billing_key``: the months they
    name in their extra (``billing_period``, checked against ``period_start``/``period_end``), never months
    guessed from when the events arrived. ``events`` have ``uri``, ``extra`` and ``timestamp``
    (:class:`enlivy_provider.compat.TriggeringEvent`).

    ValueError, naming what is wrong, when no event is this billing's or an event's extra does not name a
    whole month.
    """
    events = list(events)
    ours = [event for event in events if _billing_key_of(event.uri) == billing_key]
    if not ours:
        seen = ", ".join(sorted({event.uri for event in events})) or "none"
        raise ValueError(
            f"no asset event of the billing {billing_key!r} triggered this run (events of: {seen}): "
            "it has no month to close"
        )
    months: dict[str, dt.datetime] = {}
    for event in ours:
        where = f"the event of {event.uri} at {event.timestamp.isoformat()}"
        month = named_month(event.extra.get("billing_period"), f"{where}: extra.billing_period")
        named = (event.extra.get("period_start"), event.extra.get("period_end"))
        if named != (month["start"], month["end"]):
            raise ValueError(
                f"{where}: extra.period_start..period_end {named[0]}..{named[1]} is not the whole month "
                f"{month['label']} ({month['start']}..{month['end']}) its billing_period names"
            )
        key = month["start"][:7]
        months[key] = max(months.get(key, event.timestamp), event.timestamp)
    return months


def months_to_close(
    billed: Mapping[str, dt.datetime], closed_at: Mapping[str, dt.datetime | None]
) -> tuple[str | None, list[str]]:
    """Which month a run triggered by billing events closes, and which billed months it leaves open.

    ``billed``: :func:`months_billed_by_events`; ``closed_at``: when another run last closed each month
    (None: never). A month closed after its latest event was handled already (a late or re-delivered event).
    Of the months left, the run closes the one whose event came last (what the billing just reported); the
    others (an event Airflow's queue passed over while a run was busy, or billed before this DAG was deployed)
    are returned, oldest first, for the run to name: closing an old month sends e-mails and charges cards,
    which a person decides.
    """

    def handled(key: str) -> bool:
        closed = closed_at.get(key)
        return closed is not None and closed >= billed[key]

    waiting = [key for key in billed if not handled(key)]
    if not waiting:
        return None, []
    latest = max(waiting, key=lambda key: (billed[key], key))
    return latest, sorted(key for key in waiting if key != latest)


def close_commands(dag_id: str, months: Iterable[str]) -> str:
    """The commands that close each month by hand (the DAG's ``billing_period`` param)."""
    import json

    return "; ".join(
        f"airflow dags trigger {dag_id} --conf '{json.dumps({'billing_period': key})}'" for key in months
    )


def dunning_step(days_past_due: int | None) -> str | None:
    """The reminder step an invoice this many days past due is at (``"14d"``), or None (not yet 7 days)."""
    reached = [days for days in DUNNING_STEPS if days_past_due is not None and days_past_due >= days]
    return f"{reached[-1]}d" if reached else None


def days_past_due(invoice: Mapping[str, Any], reference: dt.date) -> int | None:
    """Whole days from the invoice's due date to ``reference`` (0 on the due day, negative before)."""
    due = str(invoice.get("due_at") or "")[:10]
    return (reference - dt.date.fromisoformat(due)).days if due else None


def choose_actions(
    invoices: Iterable[Mapping[str, Any]], month: Mapping[str, str], reference: dt.date, billing_key: str
) -> dict[str, Any]:
    """What a month-end run does to each unpaid invoice of ``billing_key`` (any month), read once:

    * ``send``: the month's invoices never delivered (status ``pending``): the first e-mail;
    * ``charge``: the month's invoices paid by a stored card (``payment_method``);
    * ``remind_7d`` / ``remind_14d`` / ``remind_30d``: every invoice at that step of the ladder on ``reference``;
    * ``invoices``: ``{id: {number, customer_id, total, due_at, days_past_due}}`` of those chosen.
    """
    from enlivy_provider.invoices.billing_identity import BILLING_KEY_FIELD
    from enlivy_provider.invoices.billing_period import BillingPeriod
    from enlivy_provider.invoices.lookups import invoice_covers_period, is_billing_invoice, is_dead

    period = BillingPeriod(dt.date.fromisoformat(month["start"]), dt.date.fromisoformat(month["end"]))
    chosen: dict[str, Any] = {"send": [], "charge": [], **{f"remind_{d}d": [] for d in DUNNING_STEPS}}
    chosen["invoices"] = {}
    for invoice in invoices:
        if (
            not is_billing_invoice(invoice)
            or is_dead(invoice)
            or invoice.get(BILLING_KEY_FIELD) != billing_key
        ):
            continue  # another DAG's invoice, a credit note, or a dead one: not this billing's to chase
        status = invoice.get("status")
        if status not in UNPAID_STATUSES:
            continue
        invoice_id = str(invoice["id"])
        of_month = invoice_covers_period(invoice, period)
        late = days_past_due(invoice, reference)
        lists = []
        if of_month and status == NOT_SENT:
            lists.append("send")
        if of_month and invoice.get("payment_method") in CARD_PAYMENT_METHODS:
            lists.append("charge")
        step = dunning_step(late)
        if step is not None:
            lists.append(f"remind_{step}")
        for name in lists:
            chosen[name].append(invoice_id)
        if lists:
            chosen["invoices"][invoice_id] = {
                "number": invoice.get("formatted_number") or invoice.get("number") or invoice_id,
                "customer_id": invoice.get("organization_receiver_user_id"),
                "total": money(invoice.get("currency"), invoice.get("total") or 0),
                "due_at": str(invoice.get("due_at") or "")[:10] or "-",
                "days_past_due": "-" if late is None or late < 0 else str(late),
            }
    return chosen


# ----------------------------------------------------------------------------------------------- the summary


def _action_label(task_id: str, entry: Mapping[str, Any]) -> str:
    outcome = str(entry.get("outcome"))
    if task_id == "send_invoices":
        return {"sent": "e-mailed", "already_sent": "e-mailed before"}.get(outcome, f"e-mail {outcome}")
    if task_id == "charge_invoices":
        if outcome == "skipped":
            return f"not charged ({entry.get('reason')})"
        detail = f" ({entry['error_code']})" if entry.get("error_code") else ""
        return f"charge {outcome}{' (replayed)' if entry.get('replayed') else ''}{detail}"
    step = task_id.removeprefix("remind_")
    return {"sent": f"reminder {step} sent", "already_sent": f"reminder {step} sent before"}.get(
        outcome, f"reminder {step} {outcome}"
    )


def action_counts(results: Mapping[str, Mapping[str, Any] | None]) -> dict[str, dict[str, int]]:
    """{task id: {outcome: count}} of the action tasks' results (an empty dict for a task that did not run)."""
    return {task_id: dict((results.get(task_id) or {}).get("counts") or {}) for task_id in ACTION_TASKS}


def summary_rows(
    chosen: Mapping[str, Any], results: Mapping[str, Mapping[str, Any] | None], names: Mapping[str, str]
) -> list[dict[str, str]]:
    """One row per invoice this run chose: number, customer, total, due date, days past due, what was done."""
    done: dict[str, list[str]] = {}
    for task_id in ACTION_TASKS:
        for entry in (results.get(task_id) or {}).get("invoices") or []:
            done.setdefault(str(entry["invoice_id"]), []).append(_action_label(task_id, entry))
    rows = []
    for invoice_id, info in (chosen.get("invoices") or {}).items():
        rows.append(
            {
                "number": str(info["number"]),
                "customer": names.get(str(info.get("customer_id")), str(info.get("customer_id") or "?")),
                "total": str(info["total"]),
                "due_at": str(info["due_at"]),
                "days_past_due": str(info["days_past_due"]),
                "done": ", ".join(done.get(invoice_id, [])) or "not done (task did not run)",
            }
        )
    return sorted(rows, key=lambda row: row["number"])


SUMMARY_COLUMNS = (
    ("number", "invoice"),
    ("customer", "customer"),
    ("total", "total"),
    ("due_at", "due"),
    ("days_past_due", "days late"),
    ("done", "this run"),
)


def describe_actions(counts: Mapping[str, Mapping[str, int]]) -> str:
    """``e-mailed 6 (0 sent before); reminders 7d 1, 14d 1, 30d 2 (0 sent before); charged 1 (succeeded 1)``."""
    send = counts.get("send_invoices") or {}
    reminded = {task: counts.get(task) or {} for task in ACTION_TASKS if task.startswith("remind_")}
    steps = ", ".join(f"{task.removeprefix('remind_')} {c.get('sent', 0)}" for task, c in reminded.items())
    before = sum(c.get("already_sent", 0) for c in reminded.values())
    charge = {k: v for k, v in (counts.get("charge_invoices") or {}).items() if k != "skipped"}
    charges = ", ".join(f"{outcome} {n}" for outcome, n in sorted(charge.items())) or "none"
    return (
        f"e-mailed {send.get('sent', 0)} ({send.get('already_sent', 0)} sent before); "
        f"reminders {steps} ({before} sent before); charged {sum(charge.values())} ({charges})"
    )


def describe_findings(findings: Iterable[Mapping[str, Any]], names: Mapping[str, str]) -> list[str]:
    """Readable lines for report rows (``missing: Globex Corporation (org_user_…), 2026-10-01..2026-10-31``)."""
    lines = []
    for row in findings:
        customer = str(row.get("customer_id") or "")
        who = f"{names[customer]} ({customer})" if customer in names else customer or "?"
        invoices = f", invoices {row['invoice_ids']}" if row.get("invoice_ids") else ""
        lines.append(
            f"{row.get('category')}: {who}, {row.get('period_start')}..{row.get('period_end')}{invoices}"
        )
    return lines
