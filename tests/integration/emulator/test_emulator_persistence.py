"""With --db the data survives a restart (the one emulator test that starts its own process)."""

from __future__ import annotations

from pathlib import Path

from emulator_test_api import Api, invoice_payload

from enlivy_provider.testing import run_emulator


def test_data_survives_a_restart_with_db(tmp_path: Path) -> None:
    db = tmp_path / "enlivy.db"
    with run_emulator(db=db) as first:
        api = Api(first)
        created = api.post("/invoices", json=invoice_payload(), headers={"Idempotency-Key": "persist"}).json()
        deleted = api.create_invoice(1)
        api.delete(f"/invoices/{deleted['id']}")
        user = api.post(
            "/users",
            json={
                "organization_user_role_id": "org_user_role_2qD7mZ0demoCustomer01",
                "name": "Kept",
                "country_code": "DE",
            },
        ).json()
    assert db.exists()

    with run_emulator(db=db) as second:
        api = Api(second)
        again = api.get(f"/invoices/{created['id']}", params={"include": "line_items"}).json()["data"]
        assert again["total"] == created["total"]
        assert again["line_items"]["data"] == created["line_items"]["data"]
        assert api.get(f"/invoices/{deleted['id']}").json()["data"]["deleted_at"] is not None
        assert api.get(f"/users/{user['id']}").json()["data"]["name"] == "Kept"
        assert api.create_invoice()["number"] == "3"  # the prefix counter was kept
        replay = api.post("/invoices", json=invoice_payload(), headers={"Idempotency-Key": "persist"})
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["id"] == created["id"]
