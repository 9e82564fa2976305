"""Normalise rendered line items into the API's request form (docs/enlivy-api-notes.md §10.2).

What a DAG author may write per line, and what it becomes:

==========================================  ====================================================
``name: "Consulting"``                      ``name_lang_map: {<default_locale>: "Consulting"}``
``unit: "hour"``                            ``unit_lang_map: {<default_locale>: "hour"}``
``product_id`` / ``organization_product_id``  ``organization_product_id`` (name/price/tax inherited)
``tax_class_id`` / ``organization_tax_class_id``  ``organization_tax_class_id``
``quantity``, ``price``, ``discount``         :class:`~decimal.Decimal` (numbers or numeric strings)
``billing_period: {start, end}``            ``has_billing_period`` + ``billing_period_started_at/_ended_at``
``order`` (missing)                         the line's position, 1-based
==========================================  ====================================================

An invoice-level billing period fills the period fields of every line that has none of its own; a line
with ``has_billing_period: false`` keeps none. Keys whose value is ``None`` are dropped (absent).
Problems are collected, never raised one at a time; the JSON Schema check runs afterwards on the result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from enlivy_provider.invoices.billing_period import (
    BillingPeriod,
    calendar_problem,
    parse_billing_period,
    parse_date,
)
from enlivy_provider.invoices.decimals import NotADecimalError, to_decimal, whole_number
from enlivy_provider.invoices.errors import ValidationIssue, join_path, merge_issues, raise_if_issues
from enlivy_provider.invoices.schema import schema_issues

DECIMAL_FIELDS = ("quantity", "price", "discount")
_ALIASES = {"product_id": "organization_product_id", "tax_class_id": "organization_tax_class_id"}
_PERIOD_FIELDS = ("has_billing_period", "billing_period_started_at", "billing_period_ended_at")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def normalise_line_items(
    raw: object,
    *,
    default_locale: str = "en",
    billing_period: BillingPeriod | None = None,
    path: str = "line_items",
) -> tuple[list[dict[str, Any]], list[ValidationIssue]]:
    """Normalise a rendered list of line items; returns ``(items, issues)`` (schema not yet applied)."""
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, list | tuple):
        return [], [ValidationIssue(path, f"must be a list of line items (got {type(raw).__name__})")]
    if not raw:
        return [], [ValidationIssue(path, "must not be empty")]
    items: list[dict[str, Any]] = []
    issues: list[ValidationIssue] = []
    for index, entry in enumerate(raw):
        item, item_issues = normalise_line_item(
            entry,
            position=index + 1,
            default_locale=default_locale,
            billing_period=billing_period,
            path=join_path(path, index),
        )
        items.append(item)
        issues.extend(item_issues)
    return items, issues


def normalise_line_item(
    raw: object,
    *,
    position: int = 1,
    default_locale: str = "en",
    billing_period: BillingPeriod | None = None,
    path: str = "line_items[0]",
) -> tuple[dict[str, Any], list[ValidationIssue]]:
    """Normalise one rendered line item; returns ``(item, issues)``."""
    if not isinstance(raw, Mapping):
        return {}, [ValidationIssue(path, f"must be an object (got {type(raw).__name__})")]
    issues: list[ValidationIssue] = []
    item: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        target = _ALIASES.get(str(key), str(key))
        if target in item and target != key:
            issues.append(ValidationIssue(join_path(path, str(key)), f"given twice (as {key} and {target})"))
            continue
        item[target] = value

    _text_to_lang_map(item, "name", "name_lang_map", default_locale, path, issues)
    _text_to_lang_map(item, "unit", "unit_lang_map", default_locale, path, issues)

    for field in DECIMAL_FIELDS:
        if field in item:
            try:
                item[field] = to_decimal(item[field])
            except NotADecimalError as exc:
                issues.append(ValidationIssue(join_path(path, field), str(exc)))

    if "order" in item:
        order = item["order"]
        if isinstance(order, str) and whole_number(order) is not None:
            item["order"] = whole_number(order)
    else:
        item["order"] = position

    _normalise_period(item, billing_period, path, issues)
    return item, issues


def _text_to_lang_map(
    item: dict[str, Any], text_key: str, map_key: str, locale: str, path: str, issues: list[ValidationIssue]
) -> None:
    if text_key not in item:
        return
    text = item.pop(text_key)
    if not isinstance(text, str):
        issues.append(ValidationIssue(join_path(path, text_key), f"must be a string (got {text!r})"))
        return
    given = item.get(map_key)
    if given is None:
        item[map_key] = {locale: text}
    elif isinstance(given, Mapping):
        if locale in given and given[locale] != text:
            issues.append(
                ValidationIssue(
                    join_path(path, text_key), f"conflicts with {map_key}.{locale}; give one or the other"
                )
            )
        else:
            item[map_key] = {locale: text, **given}
    # a non-mapping lang map is reported by the schema


def _normalise_period(
    item: dict[str, Any], default: BillingPeriod | None, path: str, issues: list[ValidationIssue]
) -> None:
    if "billing_period" in item:
        period, period_issues = parse_billing_period(
            item.pop("billing_period"), path=join_path(path, "billing_period")
        )
        issues.extend(period_issues)
        if period is not None:
            if any(field in item for field in _PERIOD_FIELDS):
                issues.append(
                    ValidationIssue(
                        join_path(path, "billing_period"),
                        "give either billing_period or has_billing_period/billing_period_*_at, not both",
                    )
                )
            else:
                item.update(period.as_line_fields())
        return

    flag = item.get("has_billing_period")
    if isinstance(flag, str) and flag.strip().lower() in _TRUE | _FALSE:
        flag = item["has_billing_period"] = flag.strip().lower() in _TRUE
    for field in ("billing_period_started_at", "billing_period_ended_at"):
        value = item.get(field)
        if isinstance(value, dt.date | dt.datetime):
            item[field] = (value.date() if isinstance(value, dt.datetime) else value).isoformat()
        problem = calendar_problem(item.get(field))  # more precise than the schema's "must be a date"
        if problem:
            issues.append(ValidationIssue(join_path(path, field), problem))

    if flag is False:
        for field in ("billing_period_started_at", "billing_period_ended_at"):
            if field in item:
                issues.append(
                    ValidationIssue(join_path(path, field), "is set while has_billing_period is false")
                )
        return
    has_dates = "billing_period_started_at" in item or "billing_period_ended_at" in item
    if has_dates:
        item.setdefault("has_billing_period", True)
        start = parse_date(item.get("billing_period_started_at"))
        end = parse_date(item.get("billing_period_ended_at"))
        if start and end and end < start:
            issues.append(
                ValidationIssue(
                    join_path(path, "billing_period_ended_at"), f"must not be before the start ({start})"
                )
            )
        return
    if flag is True and default is None:
        issues.append(
            ValidationIssue(
                join_path(path, "has_billing_period"),
                "is true but no period is given (billing_period_started_at/_ended_at or billing_period)",
            )
        )
        return
    if default is not None:
        item.update(default.as_line_fields())


def validate_line_items(
    raw: object,
    *,
    default_locale: str = "en",
    billing_period: BillingPeriod | None = None,
    path: str = "line_items",
) -> list[dict[str, Any]]:
    """Normalise and schema-check line items; raise :class:`InvoiceValidationError` listing every problem."""
    items, issues = normalise_line_items(
        raw, default_locale=default_locale, billing_period=billing_period, path=path
    )
    found: list[ValidationIssue] = []
    for index, item in enumerate(items):
        found.extend(schema_issues(item, "line_item.schema.json", prefix=join_path(path, index)))
    raise_if_issues(merge_issues(issues, found), subject="line items")
    return items
