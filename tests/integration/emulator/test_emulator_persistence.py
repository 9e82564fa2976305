"""With --db the data survives a restart; command-line options apply (the one test that starts its own process)."""

from __future__ import annotations

from pathlib import Path

import requests
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

    with run_emulator(db=db, latency_ms=5, rate_limit=500, auto_pay_after=3600) as second:
        api = Api(second)
        config = requests.get(f"{second.base_url}/_emulator/config", timeout=10).json()
        assert config == {
            "latency_ms": 5,
            "rate_limit": 500.0,
            "auto_pay_after": 3600.0,
            "replay_header": True,
        }
        again = api.get(f"/invoices/{created['id']}", params={"include": "line_items"}).json()["data"]
        assert again["total"] == created["total"]
        assert again["line_items"]["data"] == created["line_items"]["data"]
        assert api.get(f"/invoices/{deleted['id']}").json()["data"]["deleted_at"] is not None
        assert api.get(f"/users/{user['id']}").json()["data"]["name"] == "Kept"
        assert api.create_invoice()["number"] == "3"  # the prefix counter was kept
        replay = api.post("/invoices", json=invoice_payload(), headers={"Idempotency-Key": "persist"})
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["id"] == created["id"]
        second.reset()  # reset goes back to the command-line options, not to zero
        assert requests.get(f"{second.base_url}/_emulator/config", timeout=10).json() == config
