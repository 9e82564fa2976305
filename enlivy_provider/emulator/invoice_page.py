"""A read-only HTML page per invoice, where the Enlivy web app would show it, so the operators' "Enlivy invoice"
extra link leads somewhere in a local Airflow (``make demo``, users' DAG tests). Not part of the API: it lives
under ``/_emulator/`` (no token: a browser follows the link) and shows what the app would — number, customer,
lines, totals, status."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response

from enlivy_provider.emulator.resources import invoice_for_admin
from enlivy_provider.emulator.web import state_of

APP_PATH = "/_emulator/app/organizations/{organization_id}/invoices/{invoice_id}"
page_router = APIRouter()


def app_url_template(base_url: str) -> str:
    """The ``app_url`` connection extra that points the extra link at these pages."""
    return base_url.rstrip("/") + APP_PATH


@page_router.get(APP_PATH.replace("{organization_id}", "{org}").replace("{invoice_id}", "{id}"))
async def invoice_page(request: Request, org: str, id: str) -> Response:
    invoice = state_of(request).store.get_invoice(id)
    if invoice is None or invoice.get("organization_id") != org:
        return HTMLResponse(
            _page("Invoice not found", f"<p>No invoice {escape(id)} in {escape(org)}.</p>"), 404
        )
    record = invoice_for_admin(invoice)
    customer = state_of(request).store.get_record(
        "organization_user", record.get("organization_receiver_user_id") or ""
    )
    return HTMLResponse(_page(_title(record), _body(record, customer or {})))


def _title(invoice: dict[str, Any]) -> str:
    return f"Invoice {invoice.get('formatted_number') or invoice.get('number') or invoice['id']}"


def _body(invoice: dict[str, Any], customer: dict[str, Any]) -> str:
    def cell(value: Any) -> str:
        return f"<td>{escape('' if value is None else str(value))}</td>"

    who = " ".join(str(part) for part in (customer.get("name"), f"<{customer.get('email')}>") if part)
    rows = "".join(
        "<tr>"
        + cell(
            (line.get("name_lang_map") or {}).get("en")
            or next(iter((line.get("name_lang_map") or {"": ""}).values()))
        )
        + "".join(cell(line.get(key)) for key in ("quantity", "price", "discount", "tax_total", "total"))
        + "</tr>"
        for line in invoice.get("line_items") or []
    )
    facts = "".join(
        f"<tr><th>{label}</th>{cell(invoice.get(key))}</tr>"
        for label, key in (
            ("Status", "status"), ("Customer id", "organization_receiver_user_id"), ("Issued", "issued_at"),
            ("Due", "due_at"), ("Paid", "paid_at"), ("Currency", "currency"), ("Sub total", "sub_total"),
            ("Discount", "discount"), ("Tax", "tax_total"), ("Total", "total"), ("Deleted", "deleted_at"),
        )
    )  # fmt: skip
    return (
        f"<p>Customer: {escape(who or str(invoice.get('organization_receiver_user_id')))}</p>"
        f"<table>{facts}</table><h2>Lines</h2><table><tr><th>Line</th><th>Quantity</th><th>Price</th>"
        f"<th>Discount</th><th>Tax</th><th>Total</th></tr>{rows}</table>"
        "<p><small>Enlivy emulator: a read-only stand-in for the invoice's page in the Enlivy app.</small></p>"
    )


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
