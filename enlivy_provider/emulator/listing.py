"""List requests: query-string parsing, global and per-resource filters, pagination meta
(docs/enlivy-api-notes.md §5-7).

Page size: ``per_page`` (max 50) or its alias ``limit`` (the public API page's name); both at once must
agree. The default is :data:`DEFAULT_PER_PAGE` = 20, the public page's documented default (the SDK docs
say 30; the emulator follows the public page where the two disagree). Bad values answer 422.

Filter names are the official SDK's (``HasFilters::GLOBAL_FILTERS`` and each service's
``AVAILABLE_FILTERS``): a name it does not list for the resource answers 422, and so does a listed filter
the emulator cannot honour (:data:`REFUSED_INVOICE_FILTERS`) — a filter is never silently ignored, since
an ignored filter widens the list the caller meant to narrow.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from enlivy_provider.emulator import enums
from enlivy_provider.emulator.common import validation_error
from enlivy_provider.emulator.dates import range_bounds
from enlivy_provider.emulator.jsonio import to_decimal
from enlivy_provider.emulator.limits import MAX_AMOUNT, MAX_PAGE
from enlivy_provider.emulator.store import ORDERABLE_INVOICE_COLUMNS, SEARCHABLE_INVOICE_FIELDS, InvoiceQuery

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 50
MAX_IDS = 30
MIN_Q_LENGTH = 3
_ARRAY_SUFFIX = re.compile(r"\[[^\]]*\]$")

INVOICE_INCLUDES = frozenset(
    {
        "bank_account", "invoice_prefix", "sender_user", "receiver_user", "receiver_user_address", "line_items",
        "receipts", "deleted_by_user", "party_locales", "tag_ids", "taxes", "last_peppol_exchange", "contract",
        "charge_logs", "latest_charge_log", "reversal_invoices", "parent_invoice",
    }
)  # fmt: skip
INCLUDES: dict[str, frozenset[str]] = {
    "invoice": INVOICE_INCLUDES,
    "organization_user": frozenset(
        {"organization", "user_role", "deleted_by_user", "tag_ids", "primary_bank_account", "bank_accounts"}
    ),
    "product": frozenset({"organization", "deleted_by_user", "tag_ids", "tax_class"}),
    "tax_class": frozenset({"organization", "tax_rates_overview"}),
    "tax_rate": frozenset({"organization", "organization_tax_class", "locations"}),
    "invoice_prefix": frozenset({"organization", "deleted_by_user", "custom_logo"}),
    "bank_account": frozenset(
        {
            "organization",
            "bank_account_data_account_detail",
            "bank_account_data_bridge",
            "deleted_by_user",
            "tag_ids",
        }
    ),
}
INCLUDE_META = frozenset({"navigation", "totals"})
INVOICE_DATE_PAIRS = ("created_at", "updated_at", "issued_at", "paid_at")
INVOICE_ENUM_FILTERS: dict[str, tuple[str, ...]] = {
    "status": enums.INVOICE_STATUSES,
    "direction": enums.INVOICE_DIRECTIONS,
    "source": enums.INVOICE_SOURCES,
    "currency": tuple(sorted(enums.CURRENCIES)),
}
INVOICE_ID_FILTERS = ("organization_receiver_user_id", "organization_sender_user_id")
RECORD_ORDERABLE = frozenset({"created_at", "updated_at", "id", "name", "email"})

# Names every list takes (SDK HasFilters.php GLOBAL_FILTERS lines 16-27), plus the two it passes through
# unchecked (BYPASS_KEYS lines 32-36; organization_id never reaches the query).
GLOBAL_PARAMS = frozenset(
    {"q", "q_in", "ids", "order_by", "order", "page", "per_page", "limit", "deleted", "tag_ids"}
    | {"include", "include_meta"}
)
# Per-resource names (the invoice side lists register theirs: record_lists.register, log_routes):
# InvoiceService.php AVAILABLE_FILTERS lines 55-81; ProductService.php lines 38-40;
# TaxClassService.php line 34 (none); TaxRateService.php lines 35-38; users and invoice prefixes as
# docs/filters.md lists them; bank accounts take the global ones only.
RESOURCE_FILTERS: dict[str, frozenset[str]] = {
    "invoice": frozenset(
        {
            "direction", "status", "is_downloadable", "is_tax_charged", "bank_account_id", "currency",
            "organization_receiver_user_id", "organization_sender_user_id", "organization_user_id", "source",
            "total", "product_ids", "network_exchange", "peppol_exchange_push_option", "peppol_exchange_pushed",
            "is_api_charge", "api_charged_organization_id", *(f"{base}_{end}" for base in INVOICE_DATE_PAIRS
                                                              for end in ("from", "to")),
        }
    ),
    "organization_user": frozenset(
        {"can_be_invoiced", "can_be_invoicing", "can_be_payrolled", "can_use_backoffice", "email",
         "organization_user_role_id"}
    ),
    "product": frozenset({"is_sold"}),
    "tax_class": frozenset(),
    "tax_rate": frozenset({"organization_tax_class_id", "has_eu_vat_properties"}),
    "invoice_prefix": frozenset({"type"}),
    "bank_account": frozenset(),
}  # fmt: skip
# Filters the SDK lists whose data the emulator does not keep, so it cannot answer them truthfully.
REFUSED_INVOICE_FILTERS = {
    "network_exchange": "it keeps no e-invoicing network exchanges",
    "peppol_exchange_push_option": "it keeps no e-invoicing push options",
    "peppol_exchange_pushed": "it keeps no e-invoicing pushes",
    "is_api_charge": "it keeps no API charges",
    "api_charged_organization_id": "it keeps no API charges",
}
INVOICE_FLAG_FILTERS = ("is_tax_charged", "is_downloadable")  # SDK InvoiceService.php docblock: bool


class QueryParams:
    """A query string as ``name -> [values]``; ``status[]=a``, ``status[0]=a`` and ``status=a,b`` all count."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.values: dict[str, list[str]] = {}
        for key, value in items:
            self.values.setdefault(_ARRAY_SUFFIX.sub("", key), []).append(value)

    def has(self, name: str) -> bool:
        return name in self.values

    def one(self, name: str) -> str | None:
        values = self.values.get(name)
        return values[-1] if values else None

    def many(self, name: str) -> list[str]:
        """All values, comma lists split, blanks dropped."""
        return [
            part.strip() for value in self.values.get(name, []) for part in value.split(",") if part.strip()
        ]


@dataclass
class ListRequest:
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    q: str | None = None
    ids: list[str] | None = None
    order_by: str = "created_at"
    order: str = "desc"
    deleted: int = 0
    includes: list[str] = field(default_factory=list)
    include_meta: list[str] = field(default_factory=list)
    q_in: list[str] | None = None
    tag_ids: list[str] | None = None


def _int(params: QueryParams, name: str, errors: dict[str, list[str]]) -> int | None:
    raw = params.one(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        errors.setdefault(name, []).append(f"The {name} field must be an integer.")
        return None


def parse_includes(kind: str, raw: str | list[str] | None, errors: dict[str, list[str]]) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, (str, list)):
        errors.setdefault("include", []).append("The include must be a comma list or an array of names.")
        return []
    names = [
        p.strip()
        for p in (raw.split(",") if isinstance(raw, str) else raw)
        if isinstance(p, str) and p.strip()
    ]
    unknown = sorted(set(names) - INCLUDES[kind])
    if unknown or (not isinstance(raw, str) and not all(isinstance(p, str) for p in raw)):
        errors.setdefault("include", []).append(f"Unknown include(s): {', '.join(unknown)}.")
    return names


def parse_common(
    kind: str, params: QueryParams, errors: dict[str, list[str]], orderable: frozenset[str]
) -> ListRequest:
    request = ListRequest()
    _check_names(kind, params, errors)
    page = _int(params, "page", errors)
    if page is not None:
        if not 1 <= page <= MAX_PAGE:
            errors.setdefault("page", []).append(f"The page must be between 1 and {MAX_PAGE}.")
        else:
            request.page = page
    sizes = {name: _int(params, name, errors) for name in ("per_page", "limit") if params.has(name)}
    for name, size in sizes.items():
        if size is not None and not 1 <= size <= MAX_PER_PAGE:
            errors.setdefault(name, []).append(f"The {name} must be between 1 and {MAX_PER_PAGE}.")
        elif size is not None:
            request.per_page = size
    if len(sizes) == 2 and sizes["per_page"] != sizes["limit"]:
        errors.setdefault("limit", []).append(
            "The limit is an alias of per_page (the page size); send one of them, or both with one value."
        )
    q = params.one("q")
    if q is not None:
        if len(q.strip()) < MIN_Q_LENGTH:
            errors.setdefault("q", []).append(f"The q must be at least {MIN_Q_LENGTH} characters.")
        else:
            request.q = q.strip()
    if params.has("ids"):
        ids = params.many("ids")
        if not ids:
            errors.setdefault("ids", []).append("The ids field must list at least one id.")
        elif len(ids) > MAX_IDS:
            errors.setdefault("ids", []).append(f"The ids may not have more than {MAX_IDS} items.")
        elif q is not None:
            errors.setdefault("ids", []).append("The ids filter cannot be combined with q.")
        else:
            request.ids = ids
    order_by = params.one("order_by")
    if order_by is not None:
        if order_by not in orderable:
            errors.setdefault("order_by", []).append("The selected order by is invalid.")
        else:
            request.order_by = order_by
    order = params.one("order")
    if order is not None:
        if order.lower() not in ("asc", "desc"):
            errors.setdefault("order", []).append("The order must be asc or desc.")
        else:
            request.order = order.lower()
    deleted = params.one("deleted")
    if deleted is not None:
        if deleted.strip() not in ("-1", "0", "1"):
            errors.setdefault("deleted", []).append("The deleted must be -1, 0 or 1.")
        else:
            request.deleted = int(deleted)
    if params.has("q_in"):
        request.q_in = params.many("q_in")
        if q is None or not request.q_in:
            errors.setdefault("q_in", []).append("The q_in filter names fields to search q in; send q too.")
    if params.has("tag_ids"):
        request.tag_ids = params.many("tag_ids")
        if not request.tag_ids:
            errors.setdefault("tag_ids", []).append("The tag_ids field must list at least one tag id.")
    if params.has("include"):
        request.includes = parse_includes(kind, params.many("include"), errors)
    if params.has("include_meta"):
        request.include_meta = params.many("include_meta")
        unknown = sorted(set(request.include_meta) - INCLUDE_META)
        if unknown:
            errors.setdefault("include_meta", []).append(
                f"Unknown include_meta value(s): {', '.join(unknown)}."
            )
    return request


def _check_names(kind: str, params: QueryParams, errors: dict[str, list[str]]) -> None:
    known = GLOBAL_PARAMS | RESOURCE_FILTERS[kind]
    label = kind.replace("_", " ")
    for name in params.values:
        if name not in known:
            errors.setdefault(name, []).append(f"The {name} filter is not one the API lists for {label}s.")


def parse_bool(params: QueryParams, name: str, errors: dict[str, list[str]]) -> bool | None:
    raw = params.one(name)
    if raw is None:
        return None
    lowered = raw.strip().lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    errors.setdefault(name, []).append(f"The {name} field must be true or false.")
    return None


def parse_invoice_list(organization_id: str, params: QueryParams) -> tuple[InvoiceQuery, ListRequest]:
    errors: dict[str, list[str]] = {}
    request = parse_common("invoice", params, errors, ORDERABLE_INVOICE_COLUMNS)
    query = InvoiceQuery(
        organization_id=organization_id,
        ids=request.ids,
        q=request.q,
        deleted=request.deleted,
        order_by=request.order_by,
        order=request.order,
        tag_ids=request.tag_ids,
    )
    if request.q_in:
        unknown = sorted(set(request.q_in) - set(SEARCHABLE_INVOICE_FIELDS))
        if unknown:
            errors.setdefault("q_in", []).append(
                f"The emulator searches only {', '.join(SEARCHABLE_INVOICE_FIELDS)}; not {', '.join(unknown)}."
            )
        else:
            query.q_in = request.q_in
    refuse_unimplemented(params, REFUSED_INVOICE_FILTERS, errors)
    for name in INVOICE_FLAG_FILTERS:
        wanted = parse_bool(params, name, errors)
        if wanted is not None:
            query.flags[name] = wanted
    if params.has("product_ids"):
        query.product_ids = params.many("product_ids")
        if not query.product_ids:
            errors.setdefault("product_ids", []).append("The product_ids field must list at least one id.")
    for name, allowed in INVOICE_ENUM_FILTERS.items():
        if params.has(name):
            values = params.many(name)
            bad = [v for v in values if v not in allowed]
            if not values or bad:
                errors.setdefault(name, []).append(f"The selected {name} is invalid.")
            else:
                query.equals[name] = values
    for name in INVOICE_ID_FILTERS:
        if params.has(name):
            values = params.many(name)
            if not values:
                errors.setdefault(name, []).append(f"The {name} field must be an id.")
            else:
                query.equals[name] = values
    if params.has("organization_user_id"):
        query.equals["organization_receiver_user_id"] = params.many("organization_user_id")
    if params.has("bank_account_id"):
        query.equals["organization_bank_account_id"] = params.many("bank_account_id")
    for base in INVOICE_DATE_PAIRS:
        start, end = params.one(f"{base}_from"), params.one(f"{base}_to")
        if start is None and end is None:
            continue
        if start is None or end is None:
            missing = f"{base}_from" if start is None else f"{base}_to"
            other = f"{base}_to" if start is None else f"{base}_from"
            errors.setdefault(missing, []).append(f"The {missing} field is required when {other} is present.")
            continue
        bounds = range_bounds(start, end)
        if bounds is None:
            errors.setdefault(f"{base}_from", []).append(
                "The dates must be YYYY-MM-DD or ISO 8601 datetimes."
            )
        elif bounds[0] > bounds[1] or (bounds[0] == bounds[1] and bounds[2]):
            errors.setdefault(f"{base}_to", []).append(
                f"The {base}_to must be a date after or equal to {base}_from."
            )
        else:
            query.ranges.append((base, *bounds))
    if params.has("total"):
        amount = to_decimal(params.one("total"))
        if amount is None:
            errors.setdefault("total", []).append("The total must be a number.")
        elif abs(amount) > MAX_AMOUNT:
            errors.setdefault("total", []).append(f"The total may not be greater than {MAX_AMOUNT}.")
        else:
            query.total_cents = int((amount * 100).to_integral_value())
    if errors:
        raise validation_error(errors)
    return query, request


def _text_of(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(_text_of(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_text_of(v) for v in value)
    return "" if value is None else str(value)


def _flag_is(
    role_flags: Callable[[dict[str, Any]], dict[str, Any]], flag: str, wanted: bool
) -> Callable[[dict[str, Any]], bool]:
    return lambda record: bool(role_flags(record).get(flag)) is wanted


def record_predicates(
    request: ListRequest, records: list[dict[str, Any]], errors: dict[str, list[str]]
) -> list[Callable[[dict[str, Any]], bool]]:
    """The global filters over a list held in memory: ``deleted``, ``ids``, ``q`` (within ``q_in``, which
    must name fields the records have) and ``tag_ids`` (a record carrying any of them)."""
    predicates: list[Callable[[dict[str, Any]], bool]] = []
    if request.deleted == 0:
        predicates.append(lambda r: not r.get("deleted_at"))
    elif request.deleted == 1:
        predicates.append(lambda r: bool(r.get("deleted_at")))
    if request.ids is not None:
        wanted_ids = set(request.ids)
        predicates.append(lambda r: r["id"] in wanted_ids)
    searched = request.q_in
    if searched and records:
        unknown = sorted(set(searched) - set().union(*(record.keys() for record in records)))
        if unknown:
            errors.setdefault("q_in", []).append(f"Unknown field(s) to search: {', '.join(unknown)}.")
    if request.q:
        needle = request.q.lower()
        predicates.append(
            lambda r: needle in _text_of({k: r.get(k) for k in searched} if searched else r).lower()
        )
    if request.tag_ids is not None:
        tags = set(request.tag_ids)
        predicates.append(lambda r: bool(tags & set(r.get("tag_ids") or ())))
    return predicates


def refuse_unimplemented(
    params: QueryParams, refusals: Mapping[str, str], errors: dict[str, list[str]]
) -> None:
    """A 422 entry for each filter the SDK lists but the emulator cannot answer truthfully (``reason``)."""
    for name, reason in refusals.items():
        if params.has(name):
            errors.setdefault(name, []).append(
                f"The emulator does not implement the {name} filter: {reason}."
            )


def filter_records(
    kind: str,
    records: list[dict[str, Any]],
    params: QueryParams,
    role_flags: Callable[[dict[str, Any]], dict[str, Any]],
) -> tuple[list[dict[str, Any]], ListRequest]:
    """Apply global and per-resource filters (docs/enlivy-api-notes.md §6.4) to a small record list; sorted, not paged."""
    errors: dict[str, list[str]] = {}
    request = parse_common(kind, params, errors, RECORD_ORDERABLE)
    predicates: list[Callable[[dict[str, Any]], bool]] = []
    if kind == "organization_user":
        for flag in ("can_be_invoiced", "can_be_invoicing", "can_be_payrolled", "can_use_backoffice"):
            wanted = parse_bool(params, flag, errors)
            if wanted is not None:
                predicates.append(_flag_is(role_flags, flag, wanted))
        if params.has("email"):
            email = (params.one("email") or "").lower()
            predicates.append(lambda r: (r.get("email") or "").lower() == email)
        if params.has("organization_user_role_id"):
            role_ids = params.many("organization_user_role_id")
            predicates.append(lambda r: r.get("organization_user_role_id") in role_ids)
    elif kind == "product":
        is_sold = parse_bool(params, "is_sold", errors)
        if is_sold is not None:
            predicates.append(lambda r: bool(r.get("is_sold")) is is_sold)
    elif kind == "tax_rate":
        if params.has("organization_tax_class_id"):
            class_ids = params.many("organization_tax_class_id")
            predicates.append(lambda r: r.get("organization_tax_class_id") in class_ids)
        eu = parse_bool(params, "has_eu_vat_properties", errors)
        if eu is not None:
            predicates.append(lambda r: bool(r.get("has_eu_vat_properties")) is eu)
    elif kind == "invoice_prefix" and params.has("type"):
        types = params.many("type")
        if not types or any(t not in enums.PREFIX_TYPES for t in types):
            errors.setdefault("type", []).append("The selected type is invalid.")
        predicates.append(lambda r: r.get("type") in types)
    predicates += record_predicates(request, records, errors)
    if errors:
        raise validation_error(errors)
    selected = [r for r in records if all(p(r) for p in predicates)]
    selected.sort(key=lambda r: str(r.get(request.order_by) or ""), reverse=request.order == "desc")
    return selected, request


def pagination_meta(
    total: int, count: int, request: ListRequest, base_url: str, query: QueryParams
) -> dict[str, Any]:
    total_pages = max(1, math.ceil(total / request.per_page))
    links: dict[str, str] = {}

    def link(page: int) -> str:
        items = [(k, v) for k, values in query.values.items() if k != "page" for v in values]
        return f"{base_url}?{urlencode([*items, ('page', str(page))])}"

    if request.page < total_pages:
        links["next"] = link(request.page + 1)
    if 1 < request.page <= total_pages + 1:
        links["previous"] = link(request.page - 1)
    return {
        "pagination": {
            "total": total,
            "count": count,
            "per_page": request.per_page,
            "current_page": request.page,
            "total_pages": total_pages,
            "links": links,
        }
    }
