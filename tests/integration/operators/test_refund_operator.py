"""EnlivyRefundInvoiceOperator: full and partial reversals, exactly once through faults and re-runs, and
input refused before any write. Amounts are computed by hand: the invoice has two lines,
2 x 95.00 and 3 x 10.00, both at 19 % VAT (sub total 220.00, tax 41.80, total 261.80)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from invoice_support import Failures, make_dag, new_dag_id, result, run, run_at_once, try_numbers

from enlivy_provider.emulator import seed
from enlivy_provider.operators.refund import EnlivyRefundInvoiceOperator
from enlivy_provider.testing import invoice_payload

REFUND = "/organizations/*/invoices/*/refund"


@pytest.fixture
def invoice(api: Any) -> dict[str, Any]:
    lines = [
        {"name_lang_map": {"en": "Seat"}, "quantity": 2, "price": "95.00"},
        {"name_lang_map": {"en": "Add-on"}, "quantity": 3, "price": "10.00"},
    ]
    for line in lines:
        line["organization_tax_class_id"] = seed.TAX_CLASS_STANDARD_ID
    created: dict[str, Any] = api.create_invoice(invoice_payload(line_items=lines), include=["line_items"])
    assert Decimal(created["total"]) == Decimal("261.80")
    return created


def refund_dag(name: str, invoice_id: str, **kwargs: Any) -> Any:
    kwargs.setdefault("reason", "Customer returned the goods")
    with make_dag(new_dag_id(name)) as dag:
        EnlivyRefundInvoiceOperator(task_id="refund", invoice_id=invoice_id, **kwargs)
    return dag


def reversals(emulator: Any, invoice_id: str) -> list[dict[str, Any]]:
    return [
        i
        for i in emulator.invoices()
        if i.get("type") == "reversal" and i["organization_invoice_id"] == invoice_id
    ]


def refund_writes(emulator: Any) -> int:
    return int(emulator.counters()["routes"].get("POST /organizations/{org}/invoices/{id}/refund", 0))


def test_full_refund_reverses_everything_and_links_both_ways(
    enlivy_emulator: Any, api: Any, invoice: dict[str, Any]
) -> None:
    states, dag_run = run(refund_dag("refund_full", invoice["id"]))
    assert states == {"refund": "success"}
    summary = result(dag_run, "refund")
    assert summary["outcome"] == "created" and summary["original_id"] == invoice["id"]
    assert summary["totals"] == {
        "sub_total": "-220.00",
        "discount": "0.00",
        "tax_total": "-41.80",
        "total": "-261.80",
    }
    assert summary["reversal_number"]
    [reversal] = reversals(enlivy_emulator, invoice["id"])
    assert reversal["id"] == summary["reversal_id"]
    original = api.get_invoice(invoice["id"], include=["reversal_invoices"])
    assert [r["id"] for r in original["reversal_invoices"]] == [summary["reversal_id"]]
    back = api.get_invoice(summary["reversal_id"], include=["parent_invoice"])
    assert back["parent_invoice"]["id"] == invoice["id"] and back["type"] == "reversal"


def test_partial_refund_by_line_id_and_by_order(
    enlivy_emulator: Any, api: Any, invoice: dict[str, Any]
) -> None:
    seat = invoice["line_items"][0]
    lines = [
        {"line_item_id": seat["id"], "quantity": 1},  # 95.00 + 18.05 VAT
        {"order": 2, "quantity": "1.5"},  # 15.00 + 2.85 VAT
    ]
    states, dag_run = run(refund_dag("refund_partial", invoice["id"], line_items=lines))
    assert states == {"refund": "success"}
    summary = result(dag_run, "refund")
    assert summary["totals"] == {
        "sub_total": "-110.00",
        "discount": "0.00",
        "tax_total": "-20.90",
        "total": "-130.90",
    }
    [reversal] = reversals(enlivy_emulator, invoice["id"])
    assert sorted(Decimal(str(li["quantity"])) for li in reversal["line_items"]) == [
        Decimal("-1.5"),
        Decimal(-1),
    ]
    back = api.get_invoice(summary["reversal_id"], include=["parent_invoice"])
    assert back["parent_invoice"]["id"] == invoice["id"]

    # The rest, by a second refund (another reason): the two reversals add up to minus the invoice.
    states, dag_run = run(refund_dag("refund_rest", invoice["id"], reason="Contract ended"))
    assert states == {"refund": "success"}
    assert result(dag_run, "refund")["totals"]["total"] == "-130.90"
    original = api.get_invoice(invoice["id"], include=["reversal_invoices"])
    assert len(original["reversal_invoices"]) == 2


@pytest.mark.parametrize(
    ("action", "fault"),
    [
        ("drop_after_commit", {}),
        ("rate_limit", {"retry_after": 0, "times": 2}),
        ("error", {"status": 503, "times": 2}),
        ("error", {"status": 500, "times": 1}),
    ],
    ids=["drop_after_commit", "429", "503_twice", "500"],
)
def test_a_fault_on_the_refund_route_still_gives_one_reversal(
    enlivy_emulator: Any, invoice: dict[str, Any], action: str, fault: dict[str, Any]
) -> None:
    enlivy_emulator.add_fault("POST", REFUND, action, **fault)
    states, dag_run = run(refund_dag(f"refund_{action}", invoice["id"]))
    assert states == {"refund": "success"}
    assert refund_writes(enlivy_emulator) >= 2  # the fault happened and the client sent again, same key
    assert len(reversals(enlivy_emulator, invoice["id"])) == 1
    expected = "replayed" if action == "drop_after_commit" else "created"
    assert result(dag_run, "refund")["outcome"] == expected


def test_task_retried_after_a_lost_answer_refunds_once(
    enlivy_emulator: Any, connection_extra: Any, invoice: dict[str, Any]
) -> None:
    connection_extra(max_retries=0)  # the client gives up at once: the *task* fails and Airflow retries it
    enlivy_emulator.add_fault("POST", REFUND, "drop_after_commit")
    states, dag_run = run(refund_dag("refund_task_retry", invoice["id"], retries=1, retry_delay=0))
    assert states == {"refund": "success"}
    assert try_numbers(dag_run) == {"refund": 2}
    assert len(reversals(enlivy_emulator, invoice["id"])) == 1
    assert result(dag_run, "refund")["outcome"] == "replayed"


@pytest.mark.parametrize(
    "line_items", [None, [{"order": 1, "quantity": 2}]], ids=["full", "partial_whole_line"]
)
def test_a_rerun_refunds_nothing_again(
    enlivy_emulator: Any, invoice: dict[str, Any], line_items: Any
) -> None:
    first_states, first = run(refund_dag("refund_once", invoice["id"], line_items=line_items))
    assert first_states == {"refund": "success"}
    # Another DAG, another run, the same refund (invoice and reason): nothing is left of what it refunds,
    # and the server answers with the first reversal under the refund's key.
    states, again = run(refund_dag("refund_again", invoice["id"], line_items=line_items))
    assert states == {"refund": "success"}
    assert result(again, "refund")["outcome"] == "replayed"
    assert result(again, "refund")["reversal_id"] == result(first, "refund")["reversal_id"]
    assert len(reversals(enlivy_emulator, invoice["id"])) == 1


def test_the_same_reason_with_other_lines_is_refused_not_refunded(
    enlivy_emulator: Any, invoice: dict[str, Any], failures: Failures
) -> None:
    run(refund_dag("refund_first", invoice["id"], line_items=[{"order": 1, "quantity": 2}]))
    states, dag_run = run(
        refund_dag(
            "refund_changed",
            invoice["id"],
            line_items=[{"order": 1, "quantity": 1}],
            retries=2,
            on_failure_callback=failures,
        )
    )
    assert states == {"refund": "failed"} and try_numbers(dag_run) == {"refund": 1}
    assert "Idempotency-Key was already used with a different body" in failures.text()
    assert len(reversals(enlivy_emulator, invoice["id"])) == 1


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"line_items": [{"order": 1, "quantity": 3}]}, "line_items[0].quantity: 3 exceeds what is left"),
        (
            {"line_items": [{"order": 2, "quantity": 2}, {"order": 2, "quantity": 2}]},
            "line_items[1].quantity: 4 exceeds what is left",
        ),
        ({"line_items": [{"order": 1, "quantity": 0}]}, "line_items[0].quantity: must be greater than 0"),
        ({"line_items": [{"order": 1, "quantity": "-1"}]}, "line_items[0].quantity: must be greater than 0"),
        ({"line_items": [{"order": 1, "quantity": "1,5"}]}, "line_items[0].quantity:"),
        ({"line_items": [{"order": 3, "quantity": 1}]}, "line_items[0].order: the invoice has no line 3"),
        ({"line_items": [{"line_item_id": "org_invli_nope", "quantity": 1}]}, "line_items[0].line_item_id:"),
        ({"line_items": [{"quantity": 1}]}, "line_items[0]: must name its line by exactly one of"),
        ({"line_items": [{"order": 1, "qty": 1}]}, "line_items[0].qty: unknown field"),
        ({"line_items": []}, "line_items: must list at least one line"),
        ({"reason": "  "}, "reason: must be a non-empty string"),
    ],
    ids=[
        "over_refund",
        "over_refund_summed",
        "zero",
        "negative",
        "decimal_comma",
        "no_such_order",
        "no_such_line",
        "no_line_named",
        "unknown_key",
        "empty_list",
        "blank_reason",
    ],
)
def test_bad_input_fails_without_writes_or_retries(
    enlivy_emulator: Any, invoice: dict[str, Any], failures: Failures, kwargs: dict[str, Any], says: str
) -> None:
    enlivy_emulator.reset_counters()
    dag = refund_dag("refund_bad", invoice["id"], retries=2, on_failure_callback=failures, **kwargs)
    states, dag_run = run(dag)
    assert states == {"refund": "failed"} and try_numbers(dag_run) == {"refund": 1}
    assert says in failures.text()
    assert enlivy_emulator.counters()["writes"] == 0


def test_earlier_refunds_count_against_what_is_left(
    enlivy_emulator: Any, api: Any, invoice: dict[str, Any], failures: Failures
) -> None:
    seat = invoice["line_items"][0]
    api.refund_invoice(invoice["id"], [{"organization_invoice_line_item_id": seat["id"], "quantity": 1}])
    enlivy_emulator.reset_counters()
    dag = refund_dag(
        "refund_over", invoice["id"], line_items=[{"order": 1, "quantity": 2}], on_failure_callback=failures
    )
    states, _ = run(dag)
    assert states == {"refund": "failed"}
    assert "line_items[0].quantity: 2 exceeds what is left to refund" in failures.text()
    assert "(1 of 2 billed" in failures.text()
    assert enlivy_emulator.counters()["writes"] == 0


def test_a_draft_cannot_be_refunded(enlivy_emulator: Any, api: Any, failures: Failures) -> None:
    draft = api.create_invoice(invoice_payload(status="draft"))
    enlivy_emulator.reset_counters()
    states, _ = run(refund_dag("refund_draft", draft["id"], on_failure_callback=failures))
    assert states == {"refund": "failed"}
    assert "invoice_id: " in failures.text() and "only an issued standard invoice" in failures.text()
    assert enlivy_emulator.counters()["writes"] == 0


def test_two_runs_racing_to_refund_the_same_invoice_make_one_reversal(
    enlivy_emulator: Any, connection_extra: Any, invoice: dict[str, Any]
) -> None:
    patience_s = 240  # a loaded machine may start the second process minutes after the first
    connection_extra(timeout=patience_s + 30)
    # Both runs read the invoice before either refunds: each sees everything left and sends the refund.
    enlivy_emulator.add_fault(
        "GET", "/organizations/*/invoices/*", "barrier", parties=2, delay_ms=patience_s * 1000
    )
    (states_a, results_a), (states_b, results_b) = run_at_once(
        (refund_dag("refund_race_a", invoice["id"]), {}), (refund_dag("refund_race_b", invoice["id"]), {})
    )
    assert states_a == states_b == {"refund": "success"}
    assert sorted([results_a["refund"]["outcome"], results_b["refund"]["outcome"]]) == ["created", "replayed"]
    assert results_a["refund"]["reversal_id"] == results_b["refund"]["reversal_id"]
    assert len(reversals(enlivy_emulator, invoice["id"])) == 1
    assert refund_writes(enlivy_emulator) == 2  # both really sent it: the key, not the read, kept one
