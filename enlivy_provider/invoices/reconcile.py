"""Reconciliation of a billing run: what it should have invoiced against what Enlivy holds (no HTTP).

:func:`index_expected` checks the expected rows (customer id, billing key, period, total, currency) one at a time
and stores them in an :class:`~enlivy_provider.invoices.expected_index.ExpectedIndex` (a temporary on-disk
SQLite database), refusing the whole input with every bad field named. :class:`Reconciliation` then takes
Enlivy's invoices one at a time (:meth:`Reconciliation.add`, fed from a paginated listing) and records what it
sees of each expected billing in that index, so memory grows neither with the invoices read nor with the rows
expected. Findings known the moment an invoice is read (unexpected, cancelled/deleted, unpaid) go straight to
``emit``; the ones that need every invoice (missing, duplicate, total mismatch) come out of
:meth:`Reconciliation.finish`, streamed from the index in the expected rows' order.

Which invoice belongs to which billing is the billing identity's rule (``billing_identity``/``lookups``): a
billing invoice of the customer, with a line billing exactly the period, carrying the billing key or none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from enlivy_provider.invoices.billing_identity import BILLING_KEY_FIELD, Billing, check_billing_key
from enlivy_provider.invoices.billing_period import BillingPeriod, parse_date
from enlivy_provider.invoices.decimals import NotADecimalError, to_decimal
from enlivy_provider.invoices.errors import InvoiceValidationError, ValidationIssue, join_path
from enlivy_provider.invoices.expected_index import Candidate, ExpectedBilling, ExpectedIndex
from enlivy_provider.invoices.lookups import billed_periods, is_billing_invoice, is_dead

CATEGORIES: tuple[str, ...] = ("missing", "duplicate", "unexpected", "total_mismatch", "cancelled_or_deleted")
DEFAULT_FAIL_ON: tuple[str, ...] = ("missing", "duplicate", "total_mismatch")
# Days past due, inclusive bounds; None = open-ended. Day 0 is the due day itself.
AGEING_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30", 0, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("90+", 91, None),
)
# Statuses in which nothing is owed any more (a cancelled invoice is dead, see lookups.is_dead).
SETTLED_STATUSES = frozenset({"paid", "solved"})
REPORT_COLUMNS: tuple[str, ...] = (
    "category",
    "customer_id",
    "billing_key",
    "period_start",
    "period_end",
    "invoice_ids",
    "status",
    "currency",
    "expected_total",
    "invoiced_total",
    "difference",
    "days_past_due",
    "ageing_bucket",
)


# --------------------------------------------------------------------------------------------- expected rows


def _text(row: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if row.get(name) not in (None, ""):
            return row[name]
    return None


def _row_period(
    row: Mapping[str, Any], path: str, default: BillingPeriod | None
) -> tuple[BillingPeriod | None, list[ValidationIssue]]:
    nested = row.get("billing_period")
    source = nested if isinstance(nested, Mapping) else row
    prefix = join_path(path, "billing_period") if isinstance(nested, Mapping) else path
    names = (("start", "period_start"), ("end", "period_end"))
    raw = [_text(source, n) for n in names]
    if raw == [None, None]:
        if default is None:
            return None, [
                ValidationIssue(join_path(path, "period_start"), "is required (no billing_period given)")
            ]
        return default, []
    if isinstance(raw[0], str) and isinstance(raw[1], str):
        period = _period_of_text(raw[0], raw[1])
        if period is not None:
            return period, []
    issues: list[ValidationIssue] = []
    days: list[dt.date | None] = []
    for value, (short, flat) in zip(raw, names, strict=True):
        where = join_path(prefix, short if isinstance(nested, Mapping) else flat)
        day = parse_date(value) if value is not None else None
        if day is None:
            issues.append(ValidationIssue(where, f"must be a date YYYY-MM-DD (got {value!r})"))
        days.append(day)
    start, end = days
    if start is not None and end is not None and end < start:
        issues.append(ValidationIssue(join_path(path, "period_end"), f"{end} is before the start {start}"))
    if issues or start is None or end is None:
        return None, issues
    return BillingPeriod(start, end), []


@lru_cache(maxsize=256)
def _period_of_text(start: str, end: str) -> BillingPeriod | None:
    """The period two valid day texts name (start not after end), else None: the caller then says what is
    wrong. Cached: a run's rows name a few periods, which then share one object each."""
    first, last = parse_date(start), parse_date(end)
    return BillingPeriod(first, last) if first is not None and last is not None and first <= last else None


def _row_total(row: Mapping[str, Any], path: str) -> tuple[Decimal | None, list[ValidationIssue]]:
    value, field_name = row.get("total"), "total"
    if value is None:
        totals = row.get("totals")
        if isinstance(totals, Mapping):  # a create operator's summary
            value, field_name = totals.get("total"), "totals.total"
    if value is None or value == "":
        problem = "is required (a decimal amount such as '119.00')"
    elif isinstance(value, float):  # a float has already lost the exact amount
        problem = f"must be a decimal string, not a float ({value!r})"
    else:
        try:
            return to_decimal(value), []
        except NotADecimalError as exc:
            problem = str(exc)
    return None, [ValidationIssue(join_path(path, field_name), problem)]


def parse_expected_row(
    row: Any,
    where: str,
    *,
    default_billing_key: str | None = None,
    default_period: BillingPeriod | None = None,
) -> tuple[ExpectedBilling | None, list[ValidationIssue]]:
    """One expected row (``where`` is its path, e.g. ``expected[3]``): the billing, or every problem named."""
    if not isinstance(row, Mapping):
        return None, [ValidationIssue(where, f"must be an object (got {type(row).__name__})")]
    found: list[ValidationIssue] = []
    customer = _text(row, ("customer_id", "customer"))
    if not isinstance(customer, str) or not customer.strip():
        found.append(
            ValidationIssue(join_path(where, "customer_id"), f"must be a customer id (got {customer!r})")
        )
    key, key_issues = check_billing_key(row.get("billing_key"), join_path(where, "billing_key"))
    found += key_issues
    key = key or default_billing_key
    if key is None and not key_issues:
        found.append(ValidationIssue(join_path(where, "billing_key"), "is required (no billing_key given)"))
    period, period_issues = _row_period(row, where, default_period)
    found += period_issues
    total, total_issues = _row_total(row, where)
    found += total_issues
    currency = row.get("currency")
    if not isinstance(currency, str) or len(currency.strip()) != 3 or not currency.strip().isalpha():
        found.append(
            ValidationIssue(join_path(where, "currency"), f"must be an ISO 4217 code (got {currency!r})")
        )
    if found or key is None or period is None or total is None or not isinstance(customer, str):
        return None, found
    return ExpectedBilling(customer.strip(), key, period, total, str(currency).strip().upper()), []


def index_expected(
    rows: Iterable[Any],
    index: ExpectedIndex,
    *,
    default_billing_key: str | None = None,
    default_period: BillingPeriod | None = None,
    path: str = "expected",
) -> ExpectedIndex:
    """Check every row and store the billings in ``index``, one row at a time (``rows`` may be a lazy reader);
    raises :class:`InvoiceValidationError` naming ``expected[i].field`` for each problem.

    A row is a mapping with ``customer_id`` (or ``customer``), ``billing_key``, ``period_start``/``period_end``
    (or ``billing_period: {start, end}``), ``total`` (or ``totals.total``) and ``currency``. A row without a
    billing key or period takes the defaults; two rows of one billing are an error.
    """
    issues: list[ValidationIssue] = []

    def valid() -> Iterator[tuple[int, ExpectedBilling]]:
        for position, row in enumerate(rows):
            billing, found = parse_expected_row(
                row,
                join_path(path, position),
                default_billing_key=default_billing_key,
                default_period=default_period,
            )
            issues.extend(found)
            if billing is not None:
                yield position, billing

    index.load(valid())
    issues += [
        ValidationIssue(join_path(path, seq), f"is the same billing as {join_path(path, first)}")
        for seq, first in index.duplicates()
    ]
    if issues:
        raise InvoiceValidationError(issues, subject="expected invoices")
    return index


def rows_from_bulk_result(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The invoices a bulk create run stands for (created, found existing, or replayed), as expected rows."""
    return [
        summary for outcome in ("created", "existing", "replayed") for summary in result.get(outcome) or []
    ]


# ------------------------------------------------------------------------------------------- reconciliation


def ageing_bucket(days_past_due: int) -> str | None:
    for name, low, high in AGEING_BUCKETS:
        if days_past_due >= low and (high is None or days_past_due <= high):
            return name
    return None  # not due yet


def _money(value: Any) -> Decimal | None:
    try:
        return to_decimal(value)
    except NotADecimalError:
        return None


def _amount_text(value: Any) -> str:
    amount = _money(value)
    return "" if amount is None else str(amount)


def _sum_text(amounts: Mapping[str, Decimal]) -> dict[str, str]:
    return {currency: str(amount) for currency, amount in sorted(amounts.items())}


Finding = dict[str, str]


@dataclass
class Reconciliation:
    """Feed it every invoice of the period (:meth:`add`), then :meth:`finish`; ``emit`` receives each finding
    (a row of :data:`REPORT_COLUMNS`) once. What has been seen of each expected billing is written to
    ``expected`` (the index the rows were loaded into), not kept here."""

    expected: ExpectedIndex
    reference_date: dt.date
    emit: Callable[[Finding], None] = lambda _finding: None
    examples_per_category: int = 10
    extra_periods: Iterable[BillingPeriod] = ()
    extra_keys: Iterable[str] = ()
    counts: dict[str, int] = field(init=False)
    examples: dict[str, list[Finding]] = field(init=False)

    def __post_init__(self) -> None:
        # The distinct periods (a handful) by their line-item text, the operator's own ones included.
        self._periods: dict[tuple[str, str], BillingPeriod] = dict(self.expected.periods)
        for period in self.extra_periods:
            self._periods.setdefault((period.start.isoformat(), period.end.isoformat()), period)
        self._extra_keys = frozenset(self.extra_keys)
        self.counts = dict.fromkeys(CATEGORIES, 0)
        self.examples = {category: [] for category in CATEGORIES}
        self.ageing: dict[str, dict[str, Any]] = {
            name: {"count": 0, "totals": {}} for name, _low, _high in AGEING_BUCKETS
        }
        self._invoiced_totals: dict[str, Decimal] = {}
        self.read = 0
        self.in_scope = 0

    # -- streaming ------------------------------------------------------------------------------------

    def add(self, invoice: Mapping[str, Any]) -> None:
        self.read += 1
        if not is_billing_invoice(invoice):
            return
        carried = invoice.get(BILLING_KEY_FIELD)
        if carried and not isinstance(carried, str):
            return  # not a key any row can have
        periods = [period for period in billed_periods(invoice) if period in self._periods]
        if not periods:
            return
        customer = str(invoice.get("organization_receiver_user_id") or "")
        candidates = self.expected.candidates(customer, periods, carried or None)
        if carried and not candidates and not self._is_run_key(carried):
            return  # another billing's invoice (another DAG or task): not this run's concern
        self.in_scope += 1
        chosen = self._pick(invoice, customer, candidates)
        period = self._periods[periods[0]]
        if is_dead(invoice):
            self._found("cancelled_or_deleted", self._invoice_finding(invoice, chosen, period))
            return
        if chosen is None:
            self._found("unexpected", self._invoice_finding(invoice, None, period))
        else:
            self._record_live(chosen, invoice)
        self._age(invoice, chosen, period)

    def _is_run_key(self, billing_key: str) -> bool:
        return billing_key in self._extra_keys or self.expected.knows_key(billing_key)

    def _pick(
        self, invoice: Mapping[str, Any], customer: str, candidates: list[Candidate]
    ) -> Candidate | None:
        """The billing an invoice counts for. The billing identity decides which candidates it may be (an
        invoice without a key is taken as the billing's, see ``Billing.marks``); one without a live invoice
        yet comes first."""
        matching = [
            candidate
            for candidate in candidates
            if Billing("", customer, self._periods[candidate.period], candidate.billing_key).marks(invoice)
        ]
        return next((c for c in matching if c.live == 0), matching[0] if matching else None)

    def _record_live(self, candidate: Candidate, invoice: Mapping[str, Any]) -> None:
        total = _money(invoice.get("total"))
        currency = str(invoice.get("currency") or "")
        self.expected.record_live(
            candidate.seq, str(invoice.get("id")), total, currency, str(invoice.get("status") or "")
        )
        if candidate.live == 0 and total is not None:  # a billing's first live invoice counts in the totals
            self._invoiced_totals[currency] = self._invoiced_totals.get(currency, Decimal(0)) + total

    def _age(self, invoice: Mapping[str, Any], chosen: Candidate | None, period: BillingPeriod) -> None:
        if invoice.get("status") in SETTLED_STATUSES:
            return
        due = parse_date(invoice.get("due_at"))
        if due is None:
            return
        days = (self.reference_date - due).days
        bucket = ageing_bucket(days)
        if bucket is None:
            return
        entry = self.ageing[bucket]
        entry["count"] += 1
        total, currency = _money(invoice.get("total")), str(invoice.get("currency") or "")
        if total is not None:
            entry["totals"][currency] = entry["totals"].get(currency, Decimal(0)) + total
        finding = self._invoice_finding(invoice, chosen, period)
        self.emit({**finding, "category": "unpaid", "days_past_due": str(days), "ageing_bucket": bucket})

    # -- findings -------------------------------------------------------------------------------------

    def _found(self, category: str, finding: Finding) -> None:
        self.counts[category] += 1
        if len(self.examples[category]) < self.examples_per_category:
            self.examples[category].append(finding)
        self.emit(finding)

    def _invoice_finding(
        self, invoice: Mapping[str, Any], chosen: Candidate | None, period: BillingPeriod
    ) -> Finding:
        dead = is_dead(invoice)
        category = "cancelled_or_deleted" if dead else "unexpected"
        status = "deleted" if invoice.get("deleted_at") else str(invoice.get("status") or "")
        expected = self.expected.billing(chosen.seq) if chosen is not None else None
        return _finding(
            category,
            customer_id=str(invoice.get("organization_receiver_user_id") or ""),
            billing_key=expected.billing_key if expected else str(invoice.get(BILLING_KEY_FIELD) or ""),
            period=expected.period if expected else period,
            invoice_ids=str(invoice.get("id") or ""),
            status=status,
            currency=str(invoice.get("currency") or ""),
            expected_total=str(expected.total) if expected else "",
            invoiced_total=_amount_text(invoice.get("total")),
        )

    def finish(self) -> dict[str, Any]:
        """Missing, duplicate and total-mismatch findings (in the expected rows' order), then the summary."""
        for state in self.expected.unsettled():
            billing = state.expected
            common = {
                "customer_id": billing.customer_id,
                "billing_key": billing.billing_key,
                "expected_total": str(billing.total),
            }
            period = billing.period
            if state.live == 0:
                self._found(
                    "missing", _finding("missing", period=period, currency=billing.currency, **common)
                )
            elif state.live > 1:
                ids = ",".join(state.live_ids) + (f",+{state.live - 2}" if state.live > 2 else "")
                self._found(
                    "duplicate",
                    _finding(
                        "duplicate", period=period, invoice_ids=ids, currency=billing.currency, **common
                    ),
                )
            elif state.invoiced_total != billing.total or state.invoiced_currency != billing.currency:
                difference = (
                    str(state.invoiced_total - billing.total)
                    if state.invoiced_total is not None and state.invoiced_currency == billing.currency
                    else ""
                )
                currency = billing.currency
                if state.invoiced_currency != billing.currency:
                    currency = f"{billing.currency}->{state.invoiced_currency}"
                self._found(
                    "total_mismatch",
                    _finding(
                        "total_mismatch",
                        period=period,
                        invoice_ids=",".join(state.live_ids),
                        status=state.status or "",
                        currency=currency,
                        invoiced_total=str(state.invoiced_total) if state.invoiced_total is not None else "",
                        difference=difference,
                        **common,
                    ),
                )
        return self.summary()

    def summary(self) -> dict[str, Any]:
        expected_totals = self.expected.expected_totals
        currencies = sorted({*expected_totals, *self._invoiced_totals})
        zero = Decimal(0)
        return {
            "reference_date": self.reference_date.isoformat(),
            "expected": self.expected.count,
            "invoices_read": self.read,
            "invoices_in_scope": self.in_scope,
            "counts": dict(self.counts),
            "examples": {category: list(rows) for category, rows in self.examples.items()},
            "totals": {
                currency: {
                    "expected": str(expected_totals.get(currency, zero)),
                    "invoiced": str(self._invoiced_totals.get(currency, zero)),
                    "difference": str(
                        self._invoiced_totals.get(currency, zero) - expected_totals.get(currency, zero)
                    ),
                }
                for currency in currencies
            },
            "ageing": {
                name: {"count": entry["count"], "totals": _sum_text(entry["totals"])}
                for name, entry in self.ageing.items()
            },
        }


def _finding(category: str, *, period: BillingPeriod, **values: str) -> Finding:
    row = dict.fromkeys(REPORT_COLUMNS, "")
    row.update(
        values, category=category, period_start=period.start.isoformat(), period_end=period.end.isoformat()
    )
    return row


def check_fail_on(
    value: Iterable[str] | str, path: str = "fail_on"
) -> tuple[tuple[str, ...], list[ValidationIssue]]:
    names = (value,) if isinstance(value, str) else tuple(value)
    unknown = [name for name in names if name not in CATEGORIES]
    if unknown:
        return (), [ValidationIssue(path, f"unknown categories {unknown!r}; choose from {list(CATEGORIES)}")]
    return names, []


def failed_categories(counts: Mapping[str, int], fail_on: Iterable[str]) -> list[str]:
    return [category for category in fail_on if counts.get(category, 0) > 0]


def iter_examples(summary: Mapping[str, Any]) -> Iterator[Finding]:
    """The summary's example findings, category by category (for the log's table)."""
    for category in CATEGORIES:
        yield from summary["examples"].get(category, [])
