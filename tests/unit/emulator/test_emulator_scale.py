"""The emulator at the size of a large billing run (100,000 customers and invoices, docs/emulator.md): the
reads a chunk makes for each customer cost the same whatever the organization's size."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from enlivy_provider.emulator import seed
from enlivy_provider.emulator.app import create_app
from enlivy_provider.emulator.seeding import apply_seed
from enlivy_provider.emulator.state import EmulatorConfig, EmulatorState
from enlivy_provider.emulator.store import InvoiceQuery, Store, records_by_ids_sql


def test_the_existence_lookup_of_one_customer_reads_an_index_not_every_invoice() -> None:
    # GET /invoices?organization_receiver_user_id=<customer>&deleted=-1 — the lookup before every create.
    # Without an index on the customer, each lookup scanned all of the organization's invoices: with 100,000
    # invoices a bulk run slowed from ~420 to ~11 requests/s.
    store = Store()
    query = InvoiceQuery(
        seed.DEMO_ORG_ID, equals={"organization_receiver_user_id": ["org_user_x"]}, deleted=-1
    )
    where, params = store._where(query)
    plan = store._conn.execute(
        f"EXPLAIN QUERY PLAN SELECT doc FROM invoices WHERE {where} ORDER BY created_at DESC, seq DESC",
        params,
    ).fetchall()
    assert any("invoices_org_receiver" in str(row[-1]) for row in plan), plan


def test_users_named_by_ids_are_read_by_primary_key_not_by_walking_the_organization() -> None:
    # A chunk resolves its customers 30 ids per request. Walking the (kind, organization, seq) index instead
    # cost ~40 ms of the emulator's CPU per request with 100,000 customers: four chunks starting at once
    # kept it busy for a minute and a half.
    store = Store()
    plan = store._conn.execute(
        "EXPLAIN QUERY PLAN " + records_by_ids_sql(3), ("a", "b", "c", "organization_user", seed.DEMO_ORG_ID)
    ).fetchall()
    details = " | ".join(str(row[-1]) for row in plan)
    assert "(id=?)" in details and "records_kind_org" not in details, details


@pytest.fixture
def big_organization() -> Any:
    """The emulator app in process with 2,000 extra customers, and a count of full user-list reads."""
    store = Store()
    apply_seed(store, "demo", extra_customers=2_000)
    state = EmulatorState(store, EmulatorConfig())
    full_reads: list[str] = []
    list_records = store.list_records

    def counted(kind: str, organization_id: str | None = None) -> list[dict[str, Any]]:
        full_reads.append(kind)
        return list_records(kind, organization_id)

    store.list_records = counted  # type: ignore[method-assign]
    with TestClient(create_app(state)) as client:  # type: ignore[arg-type]
        client.headers["Authorization"] = f"Bearer {seed.DEMO_TOKEN}"
        yield client, full_reads


def test_a_user_list_filtered_by_ids_reads_only_those_users(big_organization: Any) -> None:
    client, full_reads = big_organization
    wanted = [f"org_user_2qD7mZ0benchCust{i:09d}" for i in (7, 1999, 3)] + [seed.SENDER_USER_ID]
    answer = client.get(
        f"/organizations/{seed.DEMO_ORG_ID}/users", params={"ids": ",".join(wanted), "include": "user_role"}
    )
    assert answer.status_code == 200, answer.text
    assert {user["id"] for user in answer.json()["data"]} == set(wanted)
    assert answer.json()["meta"]["pagination"]["total"] == 4
    assert "organization_user" not in full_reads  # not the 2,007 users of the organization
    # The same rules as the full list: an unknown id is simply absent; 31 ids are refused; q_in still checks
    # its field names against the records.
    assert (
        client.get(f"/organizations/{seed.DEMO_ORG_ID}/users", params={"ids": "org_user_nobody"}).json()[
            "data"
        ]
        == []
    )
    too_many = ",".join(f"org_user_2qD7mZ0benchCust{i:09d}" for i in range(1, 32))
    assert client.get(f"/organizations/{seed.DEMO_ORG_ID}/users", params={"ids": too_many}).status_code == 422
    answer = client.get(f"/organizations/{seed.DEMO_ORG_ID}/users", params={"ids": wanted[0], "q_in": "nope"})
    assert answer.status_code == 422
