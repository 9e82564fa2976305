"""Invoice routes: list, retrieve, create, update, delete, restore, e-mail, download (docs/enlivy-api-notes.md §8).

Create answers 201 with the invoice unwrapped; the others answer ``{"data": invoice}`` (lists with
``meta``). ``restore`` is registered before ``/invoices/{id}`` so the fixed segment wins.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from enlivy_provider.emulator.listing import QueryParams, pagination_meta, parse_invoice_list
from enlivy_provider.emulator.pdf import pdf_bytes
from enlivy_provider.emulator.resources import render_invoice
from enlivy_provider.emulator.web import (
    ORG,
    api_router,
    authorize,
    includes_of,
    json_response,
    read_json,
    state_of,
    with_write_defaults,
)
from enlivy_provider.invoices.totals import CENT

invoice_router = api_router()


@invoice_router.get(ORG + "/invoices")
async def list_invoices(request: Request, org: str) -> Response:
    authorize(request, org)
    state = state_of(request)
    params = QueryParams(request.query_params.multi_items())
    query, listing = parse_invoice_list(org, params)
    invoices, total = state.store.query_invoices(
        query, limit=listing.per_page, offset=(listing.page - 1) * listing.per_page
    )
    meta = pagination_meta(total, len(invoices), listing, str(request.url.replace(query=None)), params)
    if "navigation" in listing.include_meta:
        meta["navigation"] = {
            "active": state.store.count_invoices(org, deleted=False),
            "trash": state.store.count_invoices(org, deleted=True),
        }
    if "totals" in listing.include_meta:
        sums = state.store.invoice_sums(query)
        meta["totals"] = {
            currency: {
                "count": values["count"],
                **{k: (CENT * v) for k, v in values.items() if k != "count"},
            }
            for currency, values in sums.items()
        }
    data = [render_invoice(state.store, invoice, listing.includes) for invoice in invoices]
    return json_response({"data": data, "meta": meta})


@invoice_router.post(ORG + "/invoices")
async def create_invoice(request: Request, org: str) -> Response:
    authorize(request, org)
    body = await read_json(request)
    includes = includes_of("invoice", request, body)
    state = state_of(request)
    invoice = state.invoices.create(org, body)
    return json_response(render_invoice(state.store, invoice, with_write_defaults(includes)), 201)


def _data(request: Request, invoice: dict[str, Any], body: dict[str, Any] | None = None) -> Response:
    """``{"data": invoice}`` with the requested includes (writes: from the body, plus ``line_items``)."""
    includes = includes_of("invoice", request, body)
    if body is not None:
        includes = with_write_defaults(includes)
    return json_response({"data": render_invoice(state_of(request).store, invoice, includes)})


@invoice_router.post(ORG + "/invoices/restore/{id}")
async def restore_invoice(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    return _data(request, state_of(request).invoices.restore(org, id))


@invoice_router.get(ORG + "/invoices/{id}")
async def get_invoice(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    return _data(request, state_of(request).invoices.get(org, id))


@invoice_router.put(ORG + "/invoices/{id}")
async def update_invoice(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    body = await read_json(request)
    includes_of("invoice", request, body)  # a bad include is a 422 before anything is written
    return _data(request, state_of(request).invoices.update(org, id, body), body)


@invoice_router.delete(ORG + "/invoices/{id}")
async def delete_invoice(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    return _data(request, state_of(request).invoices.delete(org, id))


@invoice_router.post(ORG + "/invoices/{id}/email")
async def email_invoice(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    body = await read_json(request)
    return json_response({"data": state_of(request).invoices.email(org, id, body)})


@invoice_router.get(ORG + "/invoices/{id}/download")
async def download_invoice(request: Request, org: str, id: str) -> Response:
    authorize(request, org)
    invoice = state_of(request).invoices.get(org, id, allow_deleted=False)
    name = invoice.get("formatted_number") or invoice["id"]
    return Response(
        pdf_bytes(invoice),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"'},
    )
