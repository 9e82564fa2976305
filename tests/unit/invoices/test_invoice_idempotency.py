from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from enlivy_provider.invoices.idempotency import idempotency_key, key_from_context, run_identity

BASE = {
    "dag_id": "billing",
    "task_id": "create",
    "run": "2026-11-01T00:00:00+00:00",
    "map_index": -1,
    "item": "c1",
}


def test_key_is_deterministic_and_shaped() -> None:
    key = idempotency_key(**BASE)
    assert key == idempotency_key(**BASE)
    assert key.startswith("airflow-") and len(key) == len("airflow-") + 40


def test_every_part_changes_the_key() -> None:
    keys = {idempotency_key(**BASE)}
    for field, value in [
        ("dag_id", "b2"),
        ("task_id", "t2"),
        ("run", "r2"),
        ("map_index", 0),
        ("item", "c2"),
    ]:
        keys.add(idempotency_key(**{**BASE, field: value}))
    keys.add(idempotency_key(**BASE, action="invoice.update"))
    assert len(keys) == 7


def test_run_identity_prefers_the_logical_date_in_utc() -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    assert run_identity(dt.datetime(2026, 11, 1, 1, tzinfo=cet), "manual__x") == "2026-11-01T00:00:00+00:00"
    assert run_identity(None, "manual__x") == "run_id:manual__x"


def test_key_from_context_matches_the_explicit_form() -> None:
    ti = SimpleNamespace(dag_id="billing", task_id="create", map_index=-1, run_id="scheduled__x")
    context = {
        "ti": ti,
        "logical_date": dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
        "run_id": "scheduled__x",
    }
    assert key_from_context(context, item="c1") == idempotency_key(**BASE)
