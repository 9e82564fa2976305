"""Lists of the invoice side records (receipts, tags, charge/notification logs, network exchanges).

Each list is declared as a :class:`ListSpec` — which query parameters filter which record field, which
take enum values, which are ``_from``/``_to`` date pairs — and :func:`select` applies it on top of the
global filters of :func:`~enlivy_provider.emulator.listing.parse_common`. These record kinds are small
(one organization's logs), so filtering happens in Python over ``Store.list_records``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from starlette.responses import Response

from enlivy_provider.emulator.common import not_found, validation_error
from enlivy_provider.emulator.dates import range_bounds
from enlivy_provider.emulator.listing import (
    INCLUDES,
    RECORD_ORDERABLE,
    RESOURCE_FILTERS,
    ListRequest,
    QueryParams,
    pagination_meta,
    parse_bool,
    parse_common,
    record_predicates,
    refuse_unimplemented,
)
from enlivy_provider.emulator.store import Store
from enlivy_provider.emulator.web import json_response

Record = dict[str, Any]
Predicate = Callable[[Record], bool]


@dataclass(frozen=True)
class ListSpec:
    """The filters one list accepts besides the global ones (docs/enlivy-api-notes.md §6.1)."""

    kind: str
    includes: frozenset[str]
    equals: Mapping[str, str] = field(default_factory=dict)  # parameter -> record field (comma lists OK)
    enums: Mapping[str, tuple[str, Mapping[str, Any]]] = field(
        default_factory=dict
    )  # param -> (field, allowed)
    date_pairs: Sequence[str] = ()  # record fields filtered by <field>_from / <field>_to
    flags: Mapping[str, Callable[[Record], bool]] = field(default_factory=dict)  # bool param -> test
    # Whether one end of a date pair may come alone (the SDK sends a lone created_at_from for notification
    # logs); otherwise the two travel together, as for invoices.
    open_ended_dates: bool = False
    # Filters handled by the route's own extra predicates, and filters the SDK lists that the emulator
    # refuses (name -> why): both count as known names.
    other_filters: frozenset[str] = frozenset()
    refused: Mapping[str, str] = field(default_factory=dict)

    def filter_names(self) -> frozenset[str]:
        dates = {f"{base}_{end}" for base in self.date_pairs for end in ("from", "to")}
        return frozenset({*self.equals, *self.enums, *self.flags, *dates, *self.other_filters, *self.refused})


def register(spec: ListSpec) -> ListSpec:
    # listing.py checks include and filter names by kind against INCLUDES and RESOURCE_FILTERS; the side
    # records register theirs here so listing.py keeps one table of each.
    INCLUDES[spec.kind] = spec.includes
    RESOURCE_FILTERS[spec.kind] = spec.filter_names()
    return spec


def live_record(store: Store, kind: str, record_id: str, organization_id: str, what: str) -> Record:
    """A record of the organization that is not soft-deleted; 404 ``No query results for {what}.`` else."""
    record = store.get_record(kind, record_id, organization_id)
    if record is None or record.get("deleted_at"):
        raise not_found(what)
    return record


def _date_pair(
    params: QueryParams, base: str, errors: dict[str, list[str]], open_ended: bool
) -> Predicate | None:
    start, end = params.one(f"{base}_from"), params.one(f"{base}_to")
    if start is None and end is None:
        return None
    if open_ended and (start is None or end is None):
        start, end = start or "1000-01-01", end or "9999-01-01"
    if start is None or end is None:
        missing, other = (f"{base}_from", f"{base}_to") if start is None else (f"{base}_to", f"{base}_from")
        errors.setdefault(missing, []).append(f"The {missing} field is required when {other} is present.")
        return None
    bounds = range_bounds(start, end)
    if bounds is None:
        errors.setdefault(f"{base}_from", []).append("The dates must be YYYY-MM-DD or ISO 8601 datetimes.")
        return None
    low, high, exclusive = bounds
    if low > high:
        errors.setdefault(f"{base}_to", []).append(
            f"The {base}_to must be a date after or equal to {base}_from."
        )
        return None

    def inside(record: Record) -> bool:
        value = str(record.get(base) or "")
        return bool(value) and low <= value and (value < high if exclusive else value <= high)

    return inside


def spec_predicates(spec: ListSpec, params: QueryParams, errors: dict[str, list[str]]) -> list[Predicate]:
    """The spec's own filters as predicates (errors collected for one 422)."""
    predicates: list[Predicate] = []
    refuse_unimplemented(params, spec.refused, errors)
    for name, record_field in spec.equals.items():
        if params.has(name):
            wanted = set(params.many(name))
            if not wanted:
                errors.setdefault(name, []).append(f"The {name} field must list at least one value.")
            predicates.append(lambda r, f=record_field, w=wanted: r.get(f) in w)  # type: ignore[misc]
    for name, (record_field, allowed) in spec.enums.items():
        if params.has(name):
            values = params.many(name)
            if not values or any(v not in allowed for v in values):
                errors.setdefault(name, []).append(f"The selected {name} is invalid.")
            predicates.append(lambda r, f=record_field, w=set(values): r.get(f) in w)  # type: ignore[misc]
    for base in spec.date_pairs:
        inside = _date_pair(params, base, errors, spec.open_ended_dates)
        if inside is not None:
            predicates.append(inside)
    for name, test in spec.flags.items():
        flag = parse_bool(params, name, errors)
        if flag is not None:
            predicates.append(lambda r, t=test, w=flag: t(r) is w)  # type: ignore[misc]
    return predicates


def select(
    spec: ListSpec, records: list[Record], params: QueryParams, extra: Sequence[Predicate] = ()
) -> tuple[list[Record], ListRequest]:
    """Filter (global + spec filters), then sort; unknown or bad values answer one 422."""
    errors: dict[str, list[str]] = {}
    request = parse_common(spec.kind, params, errors, RECORD_ORDERABLE)
    predicates = spec_predicates(spec, params, errors)
    predicates += record_predicates(request, records, errors)
    if errors:
        raise validation_error(errors)
    predicates.extend(extra)
    selected = [r for r in records if all(p(r) for p in predicates)]
    # Ties (same second) keep insertion order, so pages never reshuffle between requests.
    order = sorted(range(len(selected)), key=lambda i: (str(selected[i].get(request.order_by) or ""), i))
    if request.order == "desc":
        order.reverse()
    return [selected[i] for i in order], request


def page_response(
    request: Request,
    records: list[Record],
    listing: ListRequest,
    params: QueryParams,
    render: Callable[[Record, list[str]], Record],
) -> Response:
    """``{"data": [...], "meta": {"pagination": ...}}`` for one page of already filtered records."""
    start = (listing.page - 1) * listing.per_page
    page = records[start : start + listing.per_page]
    meta = pagination_meta(len(records), len(page), listing, str(request.url.replace(query=None)), params)
    return json_response({"data": [render(r, listing.includes) for r in page], "meta": meta})
