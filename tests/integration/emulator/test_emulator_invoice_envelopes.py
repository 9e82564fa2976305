"""The exact envelope of each invoice endpoint (docs/enlivy-api-notes.md §4, §8) and exact amounts."""

from __future__ import annotations

from decimal import Decimal

from emulator_test_api import Api, decimal_json, invoice_payload

from enlivy_provider.emulator import seed
from enlivy_provider.testing import EmulatorHandle


def test_create_answers_201_with_the_invoice_unwrapped_and_line_items_wrapped(api: Api) -> None:
    response = api.post("/invoices", json=invoice_payload())
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Request-Id"].startswith("req_")
    body = decimal_json(response)
    assert "data" not in body
    assert body["id"].startswith("org_inv_")
    assert body["object"] == "invoice"
    assert body["organization_id"] == seed.DEMO_ORG_ID
    assert body["status"] == "pending"
    assert body["tag_ids"] == []
    lines = body["line_items"]["data"]
    assert len(lines) == 1
    assert lines[0]["id"].startswith("org_invli_")
    assert lines[0]["organization_invoice_id"] == body["id"]
    assert (body["sub_total"], body["discount"], body["tax_total"], body["total"]) == (
        Decimal("190.00"),
        Decimal("0.00"),
        Decimal("36.10"),
        Decimal("226.10"),
    )


def test_amounts_are_json_numbers_with_two_decimals(api: Api) -> None:
    payload = invoice_payload(line_items=[{"name_lang_map": {"en": "x"}, "quantity": 1, "price": 99.99}])
    response = api.post("/invoices", json=payload)
    assert '"sub_total":99.99' in response.text
    assert '"tax_total":0.00' in response.text
    assert '"price":99.99' in response.text
    payload = invoice_payload(line_items=[{"name_lang_map": {"en": "x"}, "quantity": 2, "price": 95}])
    assert '"total":190.00' in api.post("/invoices", json=payload).text


def test_decimal_amounts_are_not_float_rounded(api: Api) -> None:
    # 0.1 + 0.2 style sums: exact with Decimal, 0.30000000000000004 with floats.
    lines = [
        {"name_lang_map": {"en": "a"}, "quantity": 1, "price": "0.10"},
        {"name_lang_map": {"en": "b"}, "quantity": 1, "price": "0.20"},
        {"name_lang_map": {"en": "c"}, "quantity": 3, "price": "33.33", "discount": "0.99"},
    ]
    body = decimal_json(api.post("/invoices", json=invoice_payload(line_items=lines)))
    assert body["sub_total"] == Decimal("100.29")
    assert body["discount"] == Decimal("0.99")
    assert body["total"] == Decimal("99.30")


def test_get_wraps_the_invoice_in_data_and_includes_are_wrapped(api: Api) -> None:
    created = api.create_invoice()
    plain = api.get(f"/invoices/{created['id']}").json()
    assert set(plain) == {"data"}
    assert plain["data"]["id"] == created["id"]
    assert "line_items" not in plain["data"]
    included = api.get(
        f"/invoices/{created['id']}",
        params={"include": "line_items,invoice_prefix,taxes,receiver_user,tag_ids"},
    ).json()["data"]
    assert included["line_items"]["data"][0]["name_lang_map"] == {"en": "Item 0"}
    assert included["invoice_prefix"]["data"]["id"] == seed.DEMO_INVOICE_PREFIX_ID
    assert included["receiver_user"]["data"]["id"] == seed.DEMO_CUSTOMERS[0].id
    assert included["taxes"]["data"] == [
        {
            "organization_tax_class_id": seed.TAX_CLASS_STANDARD_ID,
            "rate": 19.0,
            "taxable_amount": 190.0,
            "amount": 36.1,
        }
    ]
    assert included["tag_ids"] == []


def test_unknown_include_is_422(api: Api) -> None:
    created = api.create_invoice()
    response = api.get(f"/invoices/{created['id']}", params={"include": "line_items,nope"})
    assert response.status_code == 422
    assert "include" in response.json()["errors"]


def test_put_is_partial_wraps_in_data_and_replaces_line_items(api: Api) -> None:
    created = api.create_invoice()
    response = api.put(f"/invoices/{created['id']}", json={"note_lang_map": {"en": "Thanks"}})
    assert response.status_code == 200
    body = decimal_json(response)
    assert set(body) == {"data"}
    invoice = body["data"]
    assert invoice["note_lang_map"] == {"en": "Thanks"}
    assert invoice["total"] == Decimal("226.10")  # untouched lines kept
    assert invoice["line_items"]["data"][0]["id"] == created["line_items"]["data"][0]["id"]

    new_lines = [{"name_lang_map": {"en": "New"}, "quantity": 1, "price": "10.00"}]
    invoice = decimal_json(api.put(f"/invoices/{created['id']}", json={"line_items": new_lines}))["data"]
    assert [line["name_lang_map"] for line in invoice["line_items"]["data"]] == [{"en": "New"}]
    assert invoice["total"] == Decimal("10.00")
    assert invoice["note_lang_map"] == {"en": "Thanks"}


def test_put_status_over_a_payment_keeps_paid_at_and_paid_at_can_be_put_back(
    api: Api, enlivy_emulator: EmulatorHandle
) -> None:
    """PUT is partial: a status change does not touch ``paid_at`` (the API notes document no status side
    effect), which is how a write racing a payment ends ``overdue`` with ``paid_at`` set."""
    created = api.create_invoice()
    paid_at = enlivy_emulator.set_invoice_status(created["id"], "paid")["paid_at"]
    overdue = api.put(f"/invoices/{created['id']}", json={"status": "overdue"}).json()["data"]
    assert (overdue["status"], overdue["paid_at"]) == ("overdue", paid_at)
    restored = api.put(f"/invoices/{created['id']}", json={"status": "paid", "paid_at": paid_at}).json()[
        "data"
    ]
    assert (restored["status"], restored["paid_at"]) == ("paid", paid_at)


def test_include_is_read_from_the_json_body_on_post_and_put(api: Api) -> None:
    body = api.post("/invoices", json={**invoice_payload(), "include": "invoice_prefix"}).json()
    assert body["invoice_prefix"]["data"]["id"] == seed.DEMO_INVOICE_PREFIX_ID
    updated = api.put(f"/invoices/{body['id']}", json={"include": ["receiver_user"], "status": "paid"}).json()
    assert updated["data"]["receiver_user"]["data"]["id"] == seed.DEMO_CUSTOMERS[0].id
    assert updated["data"]["paid_at"] is not None


def test_delete_is_soft_and_restore_brings_it_back(api: Api) -> None:
    created = api.create_invoice()
    deleted = api.delete(f"/invoices/{created['id']}")
    assert deleted.status_code == 200
    assert deleted.json()["data"]["deleted_at"] is not None
    assert [i["id"] for i in api.list_invoices().json()["data"]] == []
    assert api.get(f"/invoices/{created['id']}").json()["data"]["deleted_at"] is not None
    assert api.delete(f"/invoices/{created['id']}").status_code == 404

    restored = api.post(f"/invoices/restore/{created['id']}")
    assert restored.status_code == 200
    assert restored.json()["data"]["deleted_at"] is None
    assert [i["id"] for i in api.list_invoices().json()["data"]] == [created["id"]]


def test_numbering_from_the_prefix_and_drafts_unnumbered(api: Api) -> None:
    first = api.create_invoice(issued_at="2026-03-01")
    second = api.create_invoice(issued_at="2026-03-02")
    draft = api.create_invoice(status="draft")
    assert (first["number"], first["formatted_number"]) == ("1", "INV-2026-0001")
    assert (second["number"], second["formatted_number"]) == ("2", "INV-2026-0002")
    assert first["issued_at"] == "2026-03-01T00:00:00Z"
    assert draft["number"] is None and draft["formatted_number"] is None
    assert draft["will_number_be_auto_assigned"] is True
    issued = api.put(f"/invoices/{draft['id']}", json={"status": "pending"}).json()["data"]
    assert issued["number"] == "3"
    assert issued["finalized_at"] is not None


def test_email_answers_a_record_and_marks_pending_invoices_sent(api: Api) -> None:
    created = api.create_invoice()
    response = api.post(
        f"/invoices/{created['id']}/email", json={"to": ["ap@globex.example"], "subject": "Your invoice"}
    )
    assert response.status_code == 200
    log = response.json()["data"]
    assert log["organization_invoice_id"] == created["id"]
    assert log["to"] == ["ap@globex.example"]
    assert api.get(f"/invoices/{created['id']}").json()["data"]["status"] == "sent_email"
    assert api.handle.emails()[0]["subject"] == "Your invoice"
    default_to = api.post(f"/invoices/{api.create_invoice()['id']}/email").json()["data"]
    assert default_to["to"] == [seed.DEMO_CUSTOMERS[0].email]


def test_email_rejects_bad_addresses_and_drafts(api: Api) -> None:
    created = api.create_invoice()
    bad = api.post(f"/invoices/{created['id']}/email", json={"to": ["not-an-email"]})
    assert bad.status_code == 422 and "to" in bad.json()["errors"]
    draft = api.create_invoice(status="draft")
    assert api.post(f"/invoices/{draft['id']}/email").status_code == 422


def test_download_returns_pdf_bytes(api: Api) -> None:
    created = api.create_invoice()
    response = api.get(f"/invoices/{created['id']}/download")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    assert response.content.rstrip().endswith(b"%%EOF")
    assert created["formatted_number"].encode() in response.content


def test_unknown_invoice_is_404_with_a_message(api: Api) -> None:
    for method, path in (
        ("GET", "/invoices/org_inv_missing"),
        ("PUT", "/invoices/org_inv_missing"),
        ("DELETE", "/invoices/org_inv_missing"),
        ("POST", "/invoices/restore/org_inv_missing"),
        ("POST", "/invoices/org_inv_missing/email"),
        ("GET", "/invoices/org_inv_missing/download"),
    ):
        response = api.request(method, path, json={} if method in ("PUT", "POST") else None)
        assert response.status_code == 404, (method, path)
        assert response.json()["message"]


def test_malformed_json_body_is_400(api: Api) -> None:
    response = api.post("/invoices", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "JSON" in response.json()["message"]
