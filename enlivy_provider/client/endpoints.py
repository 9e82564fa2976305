"""Where each client method goes: method, path, query and body of every Enlivy call (docs/enlivy-api-notes.md §8, §12).

Both clients turn a method call into a ``Call`` here and only then send it, so a path or a parameter rule
is written once for sync and async.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from enlivy_provider.client import core
from enlivy_provider.client.errors import EnlivyInvalidRequestError


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    idempotency_key: str | None = None


class Endpoints:
    """Builds the ``Call`` of every API operation for one organization."""

    def __init__(self, organization_id: str | None) -> None:
        self.organization_id = organization_id

    def org_path(self, suffix: str = "") -> str:
        if not self.organization_id:
            # §1: the SDK fails locally when no organization is known; so do we.
            raise EnlivyInvalidRequestError(
                "no organization id: pass organization_id= (connection extra 'organization_id')"
            )
        return f"/organizations/{core.path_segment(self.organization_id)}{suffix}"

    # -- lists ----------------------------------------------------------------------------------------

    def list_page(
        self,
        resource: str,
        *,
        page: int = 1,
        per_page: int = core.DEFAULT_PER_PAGE,
        filters: Mapping[str, Any],
    ) -> Call:
        """GET one page of ``resource`` (``invoices``, ``users``, ``products``, ...) with checked filters.

        A caller's ``limit`` is sent alone, without the client's own ``per_page``: the public page reads
        ``limit`` as the page size and the SDK as a cap on search results, and under either reading a second
        page size next to it could only contradict it. Paging follows the answer's meta either way."""
        core.check_filters(resource, filters)
        if not 1 <= int(per_page) <= core.MAX_PER_PAGE:
            raise EnlivyInvalidRequestError(
                f"per_page must be between 1 and {core.MAX_PER_PAGE}, got {per_page}"
            )
        size = {} if "limit" in filters else {"per_page": int(per_page)}
        params = {**filters, "page": int(page), **size}
        if "include" in filters:
            params["include"] = core.check_include(resource, filters["include"])
        return Call("GET", self.org_path(f"/{resource}"), params)

    def walk(self, resource: str, filters: Mapping[str, Any]) -> tuple[int, int, dict[str, Any]]:
        """(first page, per_page, other filters) of an auto-paginating list; checks everything up front so
        a typo fails at the call rather than at the first ``next()``."""
        rest = dict(filters)
        page = int(rest.pop("page", 1))
        per_page = int(rest.pop("per_page", core.DEFAULT_PER_PAGE))
        self.list_page(resource, page=page, per_page=per_page, filters=rest)
        return page, per_page, rest

    # -- invoices -------------------------------------------------------------------------------------

    def _invoice(self, invoice_id: str, suffix: str = "") -> str:
        return self.org_path(f"/invoices/{core.path_segment(invoice_id)}{suffix}")

    def get_invoice(self, invoice_id: str, include: str | Iterable[str] | None = None) -> Call:
        return Call("GET", self._invoice(invoice_id), {"include": core.check_include("invoices", include)})

    def create_invoice(
        self, payload: Mapping[str, Any], idempotency_key: str | None, include: str | Iterable[str] | None
    ) -> Call:
        return Call(
            "POST", self.org_path("/invoices"), None, _with_include(payload, include), idempotency_key
        )

    def update_invoice(
        self,
        invoice_id: str,
        payload: Mapping[str, Any],
        idempotency_key: str | None,
        include: str | Iterable[str] | None,
    ) -> Call:
        return Call("PUT", self._invoice(invoice_id), None, _with_include(payload, include), idempotency_key)

    def delete_invoice(self, invoice_id: str) -> Call:
        return Call("DELETE", self._invoice(invoice_id))

    def restore_invoice(self, invoice_id: str) -> Call:
        # "restore" comes before the id on this route (§8).
        return Call("POST", self.org_path(f"/invoices/restore/{core.path_segment(invoice_id)}"))

    def send_invoice_email(
        self,
        invoice_id: str,
        to: Iterable[str] | str | None,
        cc: Iterable[str] | str | None,
        subject: str | None,
        message: str | None,
        idempotency_key: str | None,
    ) -> Call:
        body = {"to": _as_list(to), "cc": _as_list(cc), "subject": subject, "message": message}
        return Call(
            "POST",
            self._invoice(invoice_id, "/email"),
            None,
            {k: v for k, v in body.items() if v is not None},
            idempotency_key,
        )

    def download_invoice(self, invoice_id: str) -> Call:
        return Call("GET", self._invoice(invoice_id, "/download"))

    # -- invoice actions (§8, §8.1): every one a write, so every one carries an Idempotency-Key ----------

    def charge_invoice(
        self, invoice_id: str, idempotency_key: str | None, include: str | Iterable[str] | None
    ) -> Call:
        return Call(
            "POST", self._invoice(invoice_id, "/charge"), None, _with_include({}, include), idempotency_key
        )

    def refund_invoice(
        self,
        invoice_id: str,
        line_items: Iterable[Mapping[str, Any]] | None,
        options: Mapping[str, Any],
        idempotency_key: str | None,
        include: str | Iterable[str] | None,
    ) -> Call:
        body = {name: value for name, value in options.items() if value is not None}
        if line_items is not None:
            body["line_items"] = [_refund_line(index, item) for index, item in enumerate(line_items)]
        return Call(
            "POST", self._invoice(invoice_id, "/refund"), None, _with_include(body, include), idempotency_key
        )

    def issue_invoice(
        self,
        proforma_id: str,
        organization_invoice_prefix_id: str | None,
        idempotency_key: str | None,
        include: str | Iterable[str] | None,
    ) -> Call:
        body = (
            {"organization_invoice_prefix_id": organization_invoice_prefix_id}
            if organization_invoice_prefix_id
            else {}
        )
        return Call(
            "POST",
            self._invoice(proforma_id, "/issue-invoice"),
            None,
            _with_include(body, include),
            idempotency_key,
        )

    def issue_receipt(self, invoice_id: str, idempotency_key: str | None) -> Call:
        return Call("POST", self._invoice(invoice_id, "/issue-receipt"), None, None, idempotency_key)

    def tag_invoice(
        self, invoice_id: str, tag_id: str, idempotency_key: str | None, *, remove: bool = False
    ) -> Call:
        # HasTagging: the tag id in the path, no body (§8.1).
        path = self._invoice(invoice_id, f"/tag/{core.path_segment(tag_id)}")
        return Call("DELETE" if remove else "PUT", path, None, None, idempotency_key)

    def create_tag(self, payload: Mapping[str, Any], idempotency_key: str | None) -> Call:
        return Call("POST", self.org_path("/tags"), None, dict(payload), idempotency_key)

    # -- invoice side records -----------------------------------------------------------------------------

    def get_record(self, resource: str, record_id: str, include: str | Iterable[str] | None = None) -> Call:
        """GET one record of a side list (``receipts``, ``invoices/event-trails``, ...)."""
        params = {"include": core.check_include(resource, include)}
        return Call("GET", self.org_path(f"/{resource}/{core.path_segment(record_id)}"), params)

    def scheduled_reminders(self, filters: Mapping[str, Any]) -> Call:
        for name in filters:
            if name not in core.SCHEDULED_REMINDER_FILTERS:
                raise EnlivyInvalidRequestError(
                    f"unknown filter {name!r} for invoices/scheduled-reminders; "
                    f"accepted: {', '.join(sorted(core.SCHEDULED_REMINDER_FILTERS))}"
                )
        return Call("GET", self.org_path("/invoices/scheduled-reminders"), dict(filters))

    # -- customers and the organization ---------------------------------------------------------------

    def get_customer(self, customer_id: str, include: str | Iterable[str] | None = None) -> Call:
        return Call(
            "GET",
            self.org_path(f"/users/{core.path_segment(customer_id)}"),
            {"include": core.check_include("users", include)},
        )

    def get_organization(self) -> Call:
        return Call("GET", self.org_path())


def _with_include(payload: Mapping[str, Any], include: str | Iterable[str] | None) -> dict[str, Any]:
    # On writes the SDK sends `include` inside the JSON body (§7).
    body = dict(payload)
    names = core.check_include("invoices", include)
    if names:
        body["include"] = names
    return body


def _refund_line(index: int, item: Mapping[str, Any]) -> dict[str, Any]:
    """One ``{organization_invoice_line_item_id, quantity}`` row; a missing key is refused before sending."""
    missing = [key for key in ("organization_invoice_line_item_id", "quantity") if item.get(key) is None]
    if missing:
        raise EnlivyInvalidRequestError(
            f"line_items.{index}: {', '.join(missing)} required for a refund line"
        )
    return {
        "organization_invoice_line_item_id": item["organization_invoice_line_item_id"],
        "quantity": item["quantity"],
    }


def _as_list(value: Iterable[str] | str | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)
