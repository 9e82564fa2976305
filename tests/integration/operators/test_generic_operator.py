"""EnlivyOperator: any organization endpoint — lazy pagination, keyed writes, 4xx without retries, paths that
cannot leave the organization."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from invoice_support import Failures, make_dag, new_dag_id, result, run, try_numbers

from enlivy_provider.operators.generic import EnlivyOperator
from enlivy_provider.testing import invoice_payload


def call_dag(name: str, **kwargs: Any) -> Any:
    with make_dag(new_dag_id(name)) as dag:
        EnlivyOperator(task_id="call", **kwargs)
    return dag


def gets_of_invoices(emulator: Any) -> int:
    return int(emulator.counters()["routes"].get("GET /organizations/{org}/invoices", 0))


def test_get_paginates_every_page_into_a_list(enlivy_emulator: Any) -> None:
    enlivy_emulator.bulk_invoices(7)
    enlivy_emulator.reset_counters()
    dag = call_dag("generic_pages", endpoint="invoices", query={"per_page": 3, "order": "asc"}, paginate=True)
    states, dag_run = run(dag)
    assert states == {"call": "success"}
    records = result(dag_run, "call")
    assert len(records) == 7 and len({r["id"] for r in records}) == 7
    assert gets_of_invoices(enlivy_emulator) == 3  # 3 + 3 + 1: one request per page


def test_get_paginates_into_a_json_lines_file(enlivy_emulator: Any, tmp_path: Path) -> None:
    enlivy_emulator.bulk_invoices(4)
    target = tmp_path / "out" / "invoices.jsonl"
    dag = call_dag(
        "generic_file",
        endpoint="/invoices/",
        query={"per_page": 2},
        paginate=True,
        output_path=f"file://{target}",
    )
    states, dag_run = run(dag)
    assert states == {"call": "success"}
    assert result(dag_run, "call") == {"path": f"file://{target}", "count": 4}
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(rows) == 4 and all(row["id"].startswith("org_inv_") for row in rows)


def test_get_one_record_unwrapped(enlivy_emulator: Any, api: Any) -> None:
    created = api.create_invoice(invoice_payload())
    states, dag_run = run(
        call_dag("generic_get", endpoint=f"invoices/{created['id']}", query={"include": "line_items"})
    )
    assert states == {"call": "success"}
    record = result(dag_run, "call")
    assert record["id"] == created["id"] and len(record["line_items"]) == 1


def test_post_carries_a_deterministic_key_and_survives_a_lost_answer(enlivy_emulator: Any, api: Any) -> None:
    created = api.create_invoice(invoice_payload())
    enlivy_emulator.add_fault("POST", "/organizations/*/invoices/*/issue-receipt", "drop_after_commit")
    dag = call_dag("generic_post", method="post", endpoint=f"invoices/{created['id']}/issue-receipt")
    states, dag_run = run(dag)
    assert states == {"call": "success"}
    assert result(dag_run, "call")["object"] == "receipt"
    keys = [k for k in enlivy_emulator.idempotency_keys() if k["path"].endswith("/issue-receipt")]
    assert len(keys) == 1 and keys[0]["key"].startswith("airflow-")
    assert len(api.get_invoice(created["id"], include=["receipts"])["receipts"]) == 1  # retried, issued once


def test_post_with_the_callers_key(enlivy_emulator: Any) -> None:
    body = {"alias": "vip", "description": "Key accounts"}
    dag = call_dag("generic_key", method="POST", endpoint="tags", body=body, idempotency_key="tag-vip-1")
    states, _ = run(dag)
    assert states == {"call": "success"}
    assert [k["key"] for k in enlivy_emulator.idempotency_keys()] == ["tag-vip-1"]


def test_a_4xx_fails_at_once_without_retries(enlivy_emulator: Any, failures: Failures) -> None:
    dag = call_dag(
        "generic_404", endpoint="invoices/org_inv_missing", retries=3, on_failure_callback=failures
    )
    states, dag_run = run(dag)
    assert states == {"call": "failed"} and try_numbers(dag_run) == {"call": 1}
    assert "404" in failures.text()
    assert enlivy_emulator.counters()["total"] == 1  # the client did not retry it either


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"endpoint": "https://evil.example/steal"}, "endpoint: must be a path relative to the organization"),
        ({"endpoint": "//evil.example/x"}, "endpoint: must be a path relative to the organization"),
        ({"endpoint": "../org_other/invoices"}, "endpoint: must stay inside the organization"),
        ({"endpoint": "invoices/%2e%2e/%2e%2e"}, "endpoint: must stay inside the organization"),
        ({"endpoint": "invoices?per_page=5"}, "endpoint: must not carry a query"),
        ({"endpoint": "invoices", "method": "TRACE"}, "method: must be one of"),
        ({"endpoint": "tags", "method": "POST", "paginate": True}, "paginate: only a GET"),
        ({"endpoint": "tags", "body": {"alias": "x"}}, "body: a GET sends no body"),
    ],
    ids=[
        "absolute_url",
        "network_path",
        "dot_dot",
        "encoded_dot_dot",
        "query_in_path",
        "method",
        "paginate_post",
        "get_body",
    ],
)
def test_bad_requests_are_refused_before_sending(
    enlivy_emulator: Any, failures: Failures, kwargs: dict[str, Any], says: str
) -> None:
    states, dag_run = run(call_dag("generic_bad", retries=2, on_failure_callback=failures, **kwargs))
    assert states == {"call": "failed"} and try_numbers(dag_run) == {"call": 1}
    assert says in failures.text()
    assert enlivy_emulator.counters()["total"] == 0
