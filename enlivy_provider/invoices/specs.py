"""Turn rendered operator arguments into checked invoice specs (offline: no HTTP).

A spec is one invoice to create: who it is for, the validated body (without the customer id while the
customer is given by email), the billing period used by the ``if_exists`` lookup and an optional item key.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enlivy_provider.invoices.billing_identity import check_billing_key
from enlivy_provider.invoices.billing_period import BillingPeriod, parse_billing_period
from enlivy_provider.invoices.customer import CustomerRef, parse_customer
from enlivy_provider.invoices.errors import ValidationIssue, join_path
from enlivy_provider.invoices.jsontext import loads_strict
from enlivy_provider.invoices.payload import InvoiceDraft, build_invoice_draft

SPEC_KEYS = ("customer", "line_items", "invoice", "billing_period", "billing_key", "key")


@dataclass(frozen=True)
class InvoiceSpec:
    path: str  # "" for a single create, "invoices[3]" in a bulk
    customer: CustomerRef
    draft: InvoiceDraft
    key: str | None = None
    billing_key: str | None = None  # None: the operator's

    @property
    def lookup_period(self) -> BillingPeriod | None:
        """The period ``if_exists`` looks for: the invoice's when a line bills it, else the one period all period
        lines share. The lookup matches line periods, so a period no line carries could never be found."""
        periods = {
            (line.get("billing_period_started_at"), line.get("billing_period_ended_at"))
            for line in self.draft.fields.get("line_items", [])
            if line.get("has_billing_period")
        }
        invoice_period = self.draft.billing_period
        if (
            invoice_period is not None
            and (invoice_period.start.isoformat(), invoice_period.end.isoformat()) in periods
        ):
            return invoice_period
        if len(periods) == 1:
            start, end = periods.pop()
            return BillingPeriod(dt.date.fromisoformat(str(start)), dt.date.fromisoformat(str(end)))
        return None


@dataclass(frozen=True)
class SpecResult:
    """A bulk entry after the offline checks: ``spec`` when valid, else the issues (both keep the raw ids)."""

    index: int
    spec: InvoiceSpec | None
    issues: list[ValidationIssue]
    raw_customer: Any = None
    key: str | None = None
    path: str = ""  # how issues name the entry: ``invoices[3]``, or ``line 17`` of a chunk's file


def parse_json_input(value: object, path: str) -> tuple[object, list[ValidationIssue]]:
    """A rendered string (a ``.json``/``.json.j2`` template, or Jinja producing JSON) becomes data.

    Numbers with a fraction are parsed as Decimal, so ``12.10`` stays ``12.10``; ``NaN``/``Infinity`` and keys
    given twice in one object are refused with their paths (see :mod:`enlivy_provider.invoices.jsontext`).
    """
    if not isinstance(value, str):
        return value, []
    text = value.strip()
    if not text:
        return None, [ValidationIssue(path, "rendered to an empty string")]
    try:
        return loads_strict(text, path)
    except json.JSONDecodeError as exc:
        return None, [ValidationIssue(path, f"is not valid JSON after rendering ({exc.msg} at line {exc.lineno} "
                                            f"column {exc.colno})")]  # fmt: skip


def prepare_spec(
    *,
    customer: object,
    line_items: object,
    invoice: object = None,
    billing_period: object = None,
    key: object = None,
    billing_key: object = None,
    default_locale: str = "en",
    reference_date: dt.date | None = None,
    data_interval: tuple[dt.datetime, dt.datetime] | None = None,
    path: str = "",
) -> tuple[InvoiceSpec | None, list[ValidationIssue]]:
    """Check one invoice's arguments; returns ``(spec, [])`` or ``(None, issues)`` with every problem."""
    issues: list[ValidationIssue] = []
    ref, found = parse_customer(customer, path=join_path(path, "customer"))
    issues += found
    line_items, found = parse_json_input(line_items, join_path(path, "line_items"))
    issues += found
    invoice, found = parse_json_input(invoice, join_path(path, "invoice"))
    issues += found
    if isinstance(billing_period, str) and billing_period.strip().startswith("{"):
        billing_period, found = parse_json_input(billing_period, join_path(path, "billing_period"))
        issues += found
    period, found = parse_billing_period(
        billing_period, data_interval=data_interval, path=join_path(path, "billing_period")
    )
    issues += found
    if key is not None and (
        not isinstance(key, str | int) or isinstance(key, bool) or str(key).strip() == ""
    ):
        issues.append(ValidationIssue(join_path(path, "key"), f"must be a non-empty string (got {key!r})"))
    billing_key, found = check_billing_key(billing_key, join_path(path, "billing_key"))
    issues += found
    draft, found = build_invoice_draft(
        line_items=line_items if line_items is not None else [],
        invoice=invoice,
        billing_period=period,
        customer_id=ref.id if ref else None,
        default_locale=default_locale,
        reference_date=reference_date,
        prefix=path,
    )
    issues += found
    if issues or ref is None or draft is None:
        return None, issues
    return InvoiceSpec(
        path=path,
        customer=ref,
        draft=draft,
        key=None if key is None else str(key).strip(),
        billing_key=billing_key,
    ), []


def prepare_bulk_specs(
    invoices: object,
    *,
    invoice_defaults: object = None,
    billing_period: object = None,
    default_locale: str = "en",
    reference_date: dt.date | None = None,
    data_interval: tuple[dt.datetime, dt.datetime] | None = None,
    paths: list[str] | None = None,
) -> tuple[list[SpecResult], list[ValidationIssue]]:
    """Check every bulk entry; returns per-entry results and issues about the whole input. ``paths`` name the
    entries in issues (default ``invoices[i]``; a chunk's rows are named by their line in the file)."""
    invoices, issues = parse_json_input(invoices, "invoices")
    defaults, found = parse_json_input(invoice_defaults, "invoice_defaults")
    issues += found
    if defaults is not None and not isinstance(defaults, Mapping):
        issues.append(ValidationIssue("invoice_defaults", "must be an object of invoice fields"))
        defaults = None
    if issues:
        return [], issues
    if isinstance(invoices, Mapping) and "invoices" in invoices:
        invoices = invoices["invoices"]
    if not isinstance(invoices, list | tuple):
        return [], [
            ValidationIssue("invoices", f"must be a list of invoice specs (got {type(invoices).__name__})")
        ]
    if not invoices:
        return [], [ValidationIssue("invoices", "must not be empty")]

    results: list[SpecResult] = []
    for index, raw in enumerate(invoices):
        path = paths[index] if paths is not None else join_path("invoices", index)
        if not isinstance(raw, Mapping):
            issue = ValidationIssue(path, f"must be an object (got {type(raw).__name__})")
            results.append(SpecResult(index, None, [issue], path=path))
            continue
        unknown = sorted(set(map(str, raw)) - set(SPEC_KEYS))
        extra = [
            ValidationIssue(join_path(path, k), f"unknown field (a spec has {', '.join(SPEC_KEYS)})")
            for k in unknown
        ]
        invoice_fields, found = parse_json_input(raw.get("invoice"), join_path(path, "invoice"))
        merged_invoice: object = invoice_fields
        if isinstance(defaults, Mapping) and (invoice_fields is None or isinstance(invoice_fields, Mapping)):
            merged_invoice = {**defaults, **(invoice_fields or {})}
        spec, spec_issues = prepare_spec(
            customer=raw.get("customer"),
            line_items=raw.get("line_items"),
            invoice=merged_invoice,
            billing_period=raw.get("billing_period", billing_period),
            key=raw.get("key"),
            billing_key=raw.get("billing_key"),
            default_locale=default_locale,
            reference_date=reference_date,
            data_interval=data_interval,
            path=path,
        )
        all_issues = extra + found + spec_issues
        key = raw.get("key")
        results.append(
            SpecResult(
                index,
                None if all_issues else spec,
                all_issues,
                raw_customer=raw.get("customer"),
                key=None if key is None else str(key),
                path=path,
            )
        )
    return results, []
