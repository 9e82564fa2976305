"""Where each client method goes: method, path, query and body of every Enlivy call (enlivy-api.md §8, §12).

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
        """GET one page of ``resource`` (``invoices``, ``users``, ``products``, ...) with checked filters."""
        core.check_filters(resource, filters)
        if not 1 <= int(per_page) <= core.MAX_PER_PAGE:
            raise EnlivyInvalidRequestError(
                f"per_page must be between 1 and {core.MAX_PER_PAGE}, got {per_page}"
            )
        params = {**filters, "page": int(page), "per_page": int(per_page)}
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


def _as_list(value: Iterable[str] | str | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)
