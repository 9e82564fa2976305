"""Invoice event trails over HTTP: every change, in order, with its fields old → new; filters; pages that
stay put while the log grows (the basis for change capture); order under concurrent writers."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from emulator_test_api import Api

from enlivy_provider.testing import EmulatorHandle


def _trail(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = api.get("/invoices/event-trails", params={"order": "asc", "per_page": 50, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _changes(entry: dict[str, Any]) -> dict[str, Any]:
    change = entry["changes"]["data"][0]
    return {
        field: (change["old_values"].get(field), change["new_values"][field])
        for field in change["changed_fields"]
    }


def test_every_change_of_an_invoice_is_recorded_in_order_with_old_and_new_values(api: Api) -> None:
    invoice = api.create_invoice(0)
    invoice_id = invoice["id"]
    tag = api.post("/tags", json={"alias": "vip"}).json()
    steps = [
        lambda: api.put(f"/invoices/{invoice_id}", json={"note_lang_map": {"en": "Thanks"}}),
        lambda: api.post(f"/invoices/{invoice_id}/email", json={}),  # pending -> sent_email
        lambda: api.put(f"/invoices/{invoice_id}/tag/{tag['id']}"),
        lambda: api.delete(f"/invoices/{invoice_id}"),
        lambda: api.post(f"/invoices/restore/{invoice_id}"),
        lambda: api.post(f"/invoices/{invoice_id}/charge"),
        lambda: api.post(f"/invoices/{invoice_id}/refund", json={"reason": "Returned"}),
    ]
    for step in steps:
        assert step().status_code < 300
    entries = _trail(api, subject_id=invoice_id, include="changes")
    assert [e["event_type"] for e in entries] == [
        "created", "updated", "status_changed", "updated", "deleted", "restored", "charged", "refunded",
    ]  # fmt: skip
    assert all(e["object"] == "event_trail" and e["subject_type"] == "invoice" for e in entries)
    assert all(e["id"].startswith("org_evt_trl_") and e["origin"] == "back_office" for e in entries)
    created, note, emailed, tagged, deleted, restored, charged, refunded = map(_changes, entries)
    assert created["status"] == (None, "pending") and created["total"][1] == invoice["total"]
    assert note == {"note_lang_map": (None, {"en": "Thanks"})}
    assert emailed == {"status": ("pending", "sent_email")}
    assert tagged == {"tag_ids": ([], [tag["id"]])}
    assert deleted["deleted_at"][0] is None and deleted["deleted_at"][1]
    assert restored["deleted_at"][1] is None
    assert charged["status"] == ("sent_email", "paid") and charged["paid_at"][0] is None
    assert entries[6]["organization_invoice_charge_log_id"].startswith("org_inv_cl_")
    assert refunded == {} and entries[7]["metadata"]["reason"] == "Returned"
    reversal_id = entries[7]["metadata"]["reversal_invoice_id"]
    assert [e["event_type"] for e in _trail(api, subject_id=reversal_id)] == ["created"]


def test_a_charge_entry_includes_its_charge_log(api: Api, enlivy_emulator: EmulatorHandle) -> None:
    invoice = api.create_invoice(0)
    enlivy_emulator.script_charge("failed", invoice_id=invoice["id"])
    api.post(f"/invoices/{invoice['id']}/charge")
    [entry] = _trail(api, event_type="charge_failed")
    one = api.get(
        f"/invoices/event-trails/{entry['id']}",
        params={"include": "charge_log,changes,actor_organization_user"},
    )
    assert one.status_code == 200, one.text
    data = one.json()["data"]
    assert data["charge_log"]["data"]["status"] == "failed"
    assert data["actor_organization_user"] == {"data": None}
    assert "charge_first_failed_at" in data["changes"]["data"][0]["changed_fields"]
    assert api.get("/invoices/event-trails/org_evt_trl_missing").status_code == 404


def test_trail_filters(api: Api) -> None:
    first, second = api.create_invoice(0), api.create_invoice(1)
    api.delete(f"/invoices/{second['id']}")
    assert [e["subject_id"] for e in _trail(api, subject_id=first["id"])] == [first["id"]]
    assert {e["subject_id"] for e in _trail(api, subject_id=f"{first['id']},{second['id']}")} == {
        first["id"],
        second["id"],
    }
    assert [e["subject_id"] for e in _trail(api, event_type="deleted")] == [second["id"]]
    assert len(_trail(api, event_type="created,deleted")) == 3
    assert len(_trail(api, origin="back_office")) == 3 and _trail(api, origin="cron") == []
    assert len(_trail(api, occurred_from="2000-01-01", occurred_to="2999-12-31")) == 3
    assert _trail(api, occurred_from="2000-01-01", occurred_to="2000-01-02") == []
    for bad in (
        {"event_type": "exploded"},
        {"origin": "moon"},
        {"occurred_from": "2000-01-01"},
        {"include": "x"},
    ):
        assert api.get("/invoices/event-trails", params=bad).status_code == 422, bad
    newest_first = api.get("/invoices/event-trails").json()["data"]
    assert [e["event_type"] for e in newest_first] == ["deleted", "created", "created"]  # default: desc


def test_ascending_pages_do_not_move_while_the_log_grows(api: Api) -> None:
    """Change capture reads the log oldest first, page by page, and resumes from the count it consumed."""
    invoice = api.create_invoice(0)
    for n in range(4):
        api.put(f"/invoices/{invoice['id']}", json={"note_lang_map": {"en": f"v{n}"}})
    first_page = api.get("/invoices/event-trails", params={"order": "asc", "per_page": 2, "page": 1}).json()
    for n in range(4, 7):  # more changes arrive between two reads
        api.put(f"/invoices/{invoice['id']}", json={"note_lang_map": {"en": f"v{n}"}})
    again = api.get("/invoices/event-trails", params={"order": "asc", "per_page": 2, "page": 1}).json()
    assert [e["id"] for e in again["data"]] == [e["id"] for e in first_page["data"]]
    seen, page = [], 1
    while True:
        body = api.get(
            "/invoices/event-trails",
            params={"order": "asc", "per_page": 2, "page": page, "include": "changes"},
        ).json()
        seen += body["data"]
        if page >= body["meta"]["pagination"]["total_pages"]:
            break
        page += 1
    assert len(seen) == len({e["id"] for e in seen}) == 8
    notes = [e["changes"]["data"][0]["new_values"].get("note_lang_map") for e in seen[1:]]
    assert notes == [{"en": f"v{n}"} for n in range(7)]


def test_concurrent_writers_leave_a_trail_whose_values_chain(
    api: Api, enlivy_emulator: EmulatorHandle
) -> None:
    """Each entry's old value is the previous entry's new value: the order of the log is the order of the
    changes, even when the writes race (8 threads, 40 updates of one invoice)."""
    invoice = api.create_invoice(0)
    sessions = [Api(enlivy_emulator) for _ in range(8)]

    def write(n: int) -> int:
        client = sessions[n % len(sessions)]
        return client.put(
            f"/invoices/{invoice['id']}", json={"note_lang_map": {"en": f"note {n}"}}
        ).status_code

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(write, range(40))) == {200}
    finally:
        for session in sessions:
            session.session.close()
    entries = _trail(api, subject_id=invoice["id"], include="changes", per_page=50)
    updates = [_changes(e)["note_lang_map"] for e in entries[1:]]
    assert len(updates) == 40
    for previous, current in itertools.pairwise(updates):
        assert current[0] == previous[1]
    final = api.get(f"/invoices/{invoice['id']}").json()["data"]["note_lang_map"]
    assert updates[-1][1] == final
