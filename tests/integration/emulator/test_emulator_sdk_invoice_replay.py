"""The official PHP SDK's invoice tests, replayed against the emulator over HTTP.

Written from the SDK sources (enlivy/enlivy-php; line numbers are those of the stored copies cited in
docs/emulator.md): the integration tests in ``tests/Integration/View/InvoiceTest.php`` (run there against
the real API) and the response shapes the unit tests in ``tests/Unit/ServiceTest.php`` mock for the
invoice side endpoints — what the SDK is built to read. Each test names the case it replays.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from emulator_test_api import Api

from enlivy_provider.testing import EmulatorHandle


@pytest.fixture
def invoices(api: Api) -> list[dict[str, Any]]:
    """Something to list: the integration tests read whatever the organization holds."""
    return [api.create_invoice(0), api.create_invoice(1, status="draft"), api.create_invoice(2)]


# -- tests/Integration/View/InvoiceTest.php ------------------------------------------------------------


def test_list_invoices(api: Api, invoices: list[dict[str, Any]]) -> None:
    """InvoiceTest.php:21-36 testListInvoices — a collection whose items are invoices with an ``org_inv_``
    id, an organization, a currency and a status."""
    body = api.get("/invoices").json()
    assert isinstance(body["data"], list) and body["data"]
    first = body["data"][0]
    assert first["object"] == "invoice" and first["id"].startswith("org_inv_")
    assert first["organization_id"] and first["currency"] and first["status"]


def test_list_invoices_with_pagination(api: Api, invoices: list[dict[str, Any]]) -> None:
    """InvoiceTest.php:38-48 testListInvoicesWithPagination — ``page=1`` answers meta with pagination whose
    ``current_page`` is 1."""
    body = api.get("/invoices", params={"page": 1}).json()
    assert body["meta"]["pagination"]["current_page"] == 1


def test_list_invoices_with_status_filter(api: Api, invoices: list[dict[str, Any]]) -> None:
    """InvoiceTest.php:50-59 testListInvoicesWithStatusFilter — every invoice listed with ``status=draft``
    is a draft."""
    data = api.get("/invoices", params={"status": "draft"}).json()["data"]
    assert data and all(invoice["status"] == "draft" for invoice in data)


def test_list_invoices_with_include(api: Api, invoices: list[dict[str, Any]]) -> None:
    """InvoiceTest.php:61-76 testListInvoicesWithInclude — with ``include=receiver_user,sender_user,
    line_items`` an invoice that has a receiver carries ``receiver_user``."""
    data = api.get("/invoices", params={"include": "receiver_user,sender_user,line_items"}).json()["data"]
    for invoice in data:
        if invoice["organization_receiver_user_id"] is not None:
            assert invoice["receiver_user"]["data"]["id"] == invoice["organization_receiver_user_id"]


def test_retrieve_invoice(api: Api, invoices: list[dict[str, Any]]) -> None:
    """InvoiceTest.php:78-96 testRetrieveInvoice — the id of ``per_page=1``'s first item retrieves that
    invoice, with a currency and a status."""
    listed = api.get("/invoices", params={"per_page": 1}).json()["data"]
    assert len(listed) == 1
    invoice = api.get(f"/invoices/{listed[0]['id']}").json()["data"]
    assert invoice["id"] == listed[0]["id"] and invoice["currency"] and invoice["status"]


def test_retrieve_invoice_with_include(api: Api, invoices: list[dict[str, Any]]) -> None:
    """InvoiceTest.php:98-114 testRetrieveInvoiceWithInclude — ``include=line_items,receiver_user`` answers
    the line items."""
    first = api.get("/invoices", params={"per_page": 1}).json()["data"][0]
    invoice = api.get(f"/invoices/{first['id']}", params={"include": "line_items,receiver_user"}).json()[
        "data"
    ]
    assert invoice["line_items"]["data"] and invoice["receiver_user"]["data"]


def test_list_invoice_prefixes(api: Api) -> None:
    """InvoiceTest.php:120-132 testListInvoicePrefixes — a collection of prefixes with ids."""
    data = api.get("/invoice-prefixes").json()["data"]
    assert data and data[0]["object"] == "invoice_prefix" and data[0]["id"]


# -- shapes tests/Unit/ServiceTest.php mocks ---------------------------------------------------------------


def test_list_and_retrieve_envelopes_and_request_id(api: Api, invoices: list[dict[str, Any]]) -> None:
    """ServiceTest.php:40-67 (list: ``data`` + ``meta.pagination`` with ``total``, ``current_page``,
    ``total_pages``), 69-89 (retrieve: ``{"data": {id, object}}``), 241-254 (``X-Request-Id`` header)."""
    listed = api.get("/invoices")
    pagination = listed.json()["meta"]["pagination"]
    assert {"total", "current_page", "total_pages"} <= set(pagination)
    one = api.get(f"/invoices/{invoices[0]['id']}")
    assert set(one.json()) == {"data"} and one.json()["data"]["object"] == "invoice"
    assert one.headers["X-Request-Id"].startswith("req_")


def test_an_idempotency_key_makes_a_repeated_action_answer_the_same(api: Api) -> None:
    """ServiceTest.php:209-224 — the SDK sends ``Idempotency-Key``; the repeated write is answered, not redone."""
    invoice = api.create_invoice(0)
    first = api.post(f"/invoices/{invoice['id']}/issue-receipt", headers={"Idempotency-Key": "sdk-1"})
    again = api.post(f"/invoices/{invoice['id']}/issue-receipt", headers={"Idempotency-Key": "sdk-1"})
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(api.get("/receipts").json()["data"]) == 1


def test_charge_answers_the_invoice_with_the_charge_result_meta(api: Api) -> None:
    """ServiceTest.php:256-293 — ``meta.charge_result`` carries status, error_code, error_message,
    provider_reference (``charge:ch_…``) and next_action_url; TenantBillingInvoiceService.php:77-80 — a charge
    answers the refreshed invoice with the outcome in ``meta``."""
    invoice = api.create_invoice(0)
    body = api.post(f"/invoices/{invoice['id']}/charge").json()
    assert body["data"]["object"] == "invoice" and body["data"]["id"] == invoice["id"]
    result = body["meta"]["charge_result"]
    assert set(result) == {"status", "error_code", "error_message", "provider_reference", "next_action_url"}
    assert result["status"] == "succeeded" and result["provider_reference"].startswith("charge:ch_")
    assert result["error_code"] is result["error_message"] is result["next_action_url"] is None


def test_charge_logs_live_under_the_invoices_path(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    """ServiceTest.php:317-326 — ``invoiceChargeLogs->list(['organization_invoice_id' => …])`` is a GET of
    ``/organizations/{org}/invoices/charge-logs``."""
    invoice = api.create_invoice(0)
    api.post(f"/invoices/{invoice['id']}/charge")
    response = api.get("/invoices/charge-logs", params={"organization_invoice_id": invoice["id"]})
    assert response.status_code == 200 and response.json()["data"][0]["object"] == "invoice_charge_log"
    assert enlivy_emulator.request_count("GET", "/organizations/{org}/invoices/charge-logs") == 1


def test_notification_logs_take_types_and_a_lone_created_at_from(api: Api) -> None:
    """ServiceTest.php:328-341 — ``types`` as a comma list and ``created_at_from`` on its own, under
    ``/invoices/notification-logs``."""
    invoice = api.create_invoice(0)
    api.post(f"/invoices/{invoice['id']}/email", json={})
    params = {
        "types": "email_reminder_upcoming,email_reminder_overdue",
        "created_at_from": "2026-07-01T00:00:00Z",
    }
    response = api.get("/invoices/notification-logs", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["data"] == []  # the one log is a plain e-mail, not a reminder
    emails = api.get("/invoices/notification-logs", params={**params, "types": "email"}).json()["data"]
    assert [log["organization_invoice_id"] for log in emails] == [invoice["id"]]


def test_scheduled_reminders_have_no_id_and_carry_the_window_meta(api: Api) -> None:
    """ServiceTest.php:357-396 — rows without ``id`` with organization_invoice_id, organization_invoice_number,
    type, scheduled_for (05:00Z three days before a midnight due date), sequence 1, due_at, total, currency,
    recipient_email; ``meta`` is ``{from, to, count}`` and there is no next page."""
    due = (datetime.now(timezone.utc) + timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    api.create_invoice(0, due_at=due.strftime("%Y-%m-%dT%H:%M:%SZ"))
    window = {
        "from": (due - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "to": (due + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "type": "email_reminder_upcoming",
    }
    body = api.get("/invoices/scheduled-reminders", params=window).json()
    [row] = body["data"]
    assert set(row) == {
        "organization_invoice_id", "organization_invoice_number", "type", "scheduled_for", "sequence", "due_at",
        "total", "currency", "recipient_email",
    }  # fmt: skip
    assert row["type"] == "email_reminder_upcoming" and row["sequence"] == 1
    assert row["scheduled_for"] == (due - timedelta(days=3, hours=-5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["meta"] == {"from": window["from"], "to": window["to"], "count": 1}
    assert "pagination" not in body["meta"]  # Collection::hasMore() is false without pagination meta
