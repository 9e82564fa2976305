"""Billing identity under races, several billing DAGs and invoices killed in the app (docs/operators.md,
"What exactly-once means").

Races are real: runs in separate processes, their existence lookups held by an emulator ``barrier`` until every
run has asked, so all of them see "no invoice yet" and all of them create. Counts come from the emulator.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pendulum
import pytest
from invoice_support import (
    CONSULTING,
    CUSTOMERS,
    OCTOBER,
    PLATFORM,
    Failures,
    duplicates,
    live_invoices,
    make_dag,
    new_dag_id,
    result,
    run,
    run_at_once,
)

from enlivy_provider.operators.invoices import EnlivyCreateInvoiceOperator, EnlivyCreateInvoicesOperator

LOOKUPS = "/organizations/*/invoices"  # GET: the existence lookup; POST: the create
NOV_1 = pendulum.datetime(2026, 11, 1, tz="UTC")
NOV_2 = NOV_1.add(days=1)


# On a loaded machine one run's process may reach the race minutes after the other's: the barrier, and the
# held run's client (its read timeout), wait long enough for it, or a timed-out lookup would be sent again.
PATIENCE_S = 240


@pytest.fixture(autouse=True)
def _patient_client(connection_extra: Any) -> None:
    connection_extra(timeout=PATIENCE_S + 30)


def hold_lookups(emulator: Any, parties: int) -> None:
    """Hold the existence lookups' answers until ``parties`` of them were handled: every run sees no invoice."""
    emulator.add_fault("GET", LOOKUPS, "barrier", parties=parties, delay_ms=PATIENCE_S * 1000)


def create_dag(name: str, quantity: int = 1, *, dag_id: str | None = None, **kwargs: Any) -> Any:
    """One create task billing CUSTOMERS[0] for October; ``dag_id`` reuses a DAG id (a re-run of that DAG)."""
    with make_dag(dag_id or new_dag_id(name)) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=CUSTOMERS[0],
            line_items=[{"product_id": PLATFORM, "quantity": quantity}],
            invoice={"currency": "EUR", "status": "pending", "issued_at": "2026-11-01", "due_in_days": 14},
            billing_period=OCTOBER,
            **kwargs,
        )
    return dag


def bulk_dag(name: str) -> Any:
    specs = [
        {"customer": customer, "line_items": [{"product_id": PLATFORM, "quantity": 1}]}
        for customer in CUSTOMERS
    ]
    with make_dag(new_dag_id(name)) as dag:
        EnlivyCreateInvoicesOperator(
            task_id="bulk",
            invoices=specs,
            invoice_defaults={"currency": "EUR", "issued_at": "2026-11-01"},
            billing_period=OCTOBER,
            max_concurrency=len(
                specs
            ),  # every lookup of a run in flight at once, so the barrier can hold them
        )
    return dag


def outcomes(*summaries: dict[str, Any]) -> list[str]:
    return sorted(summary["outcome"] for summary in summaries)


def test_two_runs_billing_one_customer_and_month_at_once_create_one_invoice(enlivy_emulator: Any) -> None:
    # A scheduled run and a manual run of the same month, in two processes, both past the lookup before
    # either creates: the billing's key is the same in both, so the server keeps one invoice.
    hold_lookups(enlivy_emulator, 2)
    dag = create_dag("race_single")
    (states_a, out_a), (states_b, out_b) = run_at_once(
        (dag, {"logical_date": NOV_1}), (dag, {"logical_date": NOV_2})
    )
    assert states_a == states_b == {"create": "success"}
    [invoice] = live_invoices(enlivy_emulator)
    assert out_a["create"]["id"] == out_b["create"]["id"] == invoice["id"]
    assert outcomes(out_a["create"], out_b["create"]) == ["created", "replayed"]  # no run claims the other's


def test_two_bulk_runs_billing_six_customers_at_once_create_six_invoices(enlivy_emulator: Any) -> None:
    hold_lookups(enlivy_emulator, 2 * len(CUSTOMERS))
    dag = bulk_dag("race_bulk")
    (states_a, out_a), (states_b, out_b) = run_at_once(
        (dag, {"logical_date": NOV_1}), (dag, {"logical_date": NOV_2})
    )
    assert states_a == states_b == {"bulk": "success"}
    assert len(live_invoices(enlivy_emulator)) == len(CUSTOMERS)
    assert duplicates(enlivy_emulator) == 0
    both = Counter(
        s["outcome"] for out in (out_a, out_b) for kind in ("created", "replayed") for s in out["bulk"][kind]
    )
    assert both == {"created": len(CUSTOMERS), "replayed": len(CUSTOMERS)}


def test_racing_runs_with_different_inputs_create_one_and_fail_the_other_naming_it(
    enlivy_emulator: Any,
) -> None:
    # The inputs changed between the runs (quantity 1 vs 2) but the billing is the same: one invoice, and the
    # other run fails without retries, naming it, instead of billing the month twice.
    hold_lookups(enlivy_emulator, 2)
    one, two = create_dag("race_changed_a", quantity=1), create_dag("race_changed_b", quantity=2)
    two.task_dict["create"].billing_key = one.task_dict["create"].billing_key = "platform-fee"
    (states_a, out_a), (states_b, out_b) = run_at_once(
        (one, {"logical_date": NOV_1}), (two, {"logical_date": NOV_1})
    )
    assert sorted([states_a["create"], states_b["create"]]) == ["failed", "success"]
    [invoice] = live_invoices(enlivy_emulator)
    winner = out_a["create"] or out_b["create"]
    assert winner["id"] == invoice["id"] and winner["outcome"] == "created"


def test_the_changed_inputs_failure_names_the_existing_invoice(enlivy_emulator: Any) -> None:
    failures = Failures()
    first = result(
        run(create_dag("changed_first", quantity=1, billing_key="fee"), logical_date=NOV_1)[1], "create"
    )
    # if_exists="create" skips the lookup, so the write itself meets the first one's key with another body.
    dag = create_dag(
        "changed_second", quantity=2, billing_key="fee", if_exists="create", on_failure_callback=failures
    )
    states, _ = run(dag, logical_date=NOV_1)
    assert states == {"create": "failed"}
    assert "already written with different inputs" in failures.text()
    assert first["id"] in failures.text()
    assert len(live_invoices(enlivy_emulator)) == 1


def test_mapped_creates_billing_one_customer_and_month_make_one_invoice(enlivy_emulator: Any) -> None:
    # Two mapped copies of one task bill the same customer and month: one billing, one invoice.
    with make_dag(new_dag_id("mapped_same")) as dag:
        EnlivyCreateInvoiceOperator.partial(
            task_id="create",
            line_items=[{"product_id": PLATFORM, "quantity": 1}],
            invoice={"currency": "EUR", "issued_at": "2026-11-01"},
            billing_period=OCTOBER,
            if_exists="create",  # no lookup: the key alone must hold
        ).expand(customer=[CUSTOMERS[0], CUSTOMERS[0]])
    states, dag_run = run(dag, logical_date=NOV_1)
    assert states == {"create[0]": "success", "create[1]": "success"}
    first, second = result(dag_run, "create", 0), result(dag_run, "create", 1)
    assert first["id"] == second["id"] and outcomes(first, second) == ["created", "replayed"]
    assert len(live_invoices(enlivy_emulator)) == 1


def test_two_billing_dags_for_one_customer_and_month_both_bill(enlivy_emulator: Any) -> None:
    # A platform-fee DAG and a consulting-hours DAG bill the same customer for October: two billings.
    platform = create_dag("platform_fee")
    with make_dag(new_dag_id("consulting_hours")) as consulting:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=CUSTOMERS[0],
            line_items=[{"product_id": CONSULTING, "quantity": 12}],
            invoice={"currency": "EUR", "issued_at": "2026-11-01"},
            billing_period=OCTOBER,
        )
    fee = result(run(platform, logical_date=NOV_1)[1], "create")
    hours = result(run(consulting, logical_date=NOV_1)[1], "create")
    assert (fee["outcome"], hours["outcome"]) == ("created", "created") and fee["id"] != hours["id"]
    by_id = {invoice["id"]: invoice for invoice in live_invoices(enlivy_emulator)}
    assert by_id[fee["id"]]["peppol_project_reference"] == f"{platform.dag_id}.create"
    assert by_id[hours["id"]]["peppol_project_reference"] == f"{consulting.dag_id}.create"
    # Each finds its own invoice again on a re-run, never the other's.
    assert result(run(platform, logical_date=NOV_2)[1], "create")["id"] == fee["id"]
    again = result(run(consulting, logical_date=NOV_2)[1], "create")
    assert again["id"] == hours["id"] and again["outcome"] == "existing"
    assert len(by_id) == 2


def test_an_invoice_made_by_hand_without_a_billing_key_counts_as_the_billing(enlivy_emulator: Any) -> None:
    from enlivy_provider.client import EnlivyClient

    line = {"organization_product_id": PLATFORM, "quantity": 1, "has_billing_period": True,
            "billing_period_started_at": OCTOBER["start"], "billing_period_ended_at": OCTOBER["end"]}  # fmt: skip
    with EnlivyClient(
        enlivy_emulator.base_url, enlivy_emulator.token, organization_id=enlivy_emulator.org_id
    ) as api:
        by_hand = api.create_invoice(
            {"organization_receiver_user_id": CUSTOMERS[0], "status": "pending", "currency": "EUR",
             "payment_method": "bank_transfer", "delivery_method": "email", "line_items": [line]}
        )  # fmt: skip
    summary = result(run(create_dag("by_hand"), logical_date=NOV_1)[1], "create")
    assert summary["outcome"] == "existing" and summary["id"] == by_hand["id"]
    assert len(live_invoices(enlivy_emulator)) == 1


def _kill(emulator: Any, invoice_id: str, how: str) -> None:
    if how == "cancelled":
        emulator.set_invoice_status(invoice_id, "cancelled")
        return
    from enlivy_provider.client import EnlivyClient

    with EnlivyClient(emulator.base_url, emulator.token, organization_id=emulator.org_id) as api:
        api.delete_invoice(invoice_id)


def test_rerun_after_the_invoice_was_deleted_or_cancelled_bills_again_under_a_new_key(
    enlivy_emulator: Any,
) -> None:
    dag = create_dag("dead_rerun")
    for how in ("deleted", "cancelled"):
        first = result(run(dag, logical_date=NOV_1)[1], "create")
        _kill(enlivy_emulator, first["id"], how)
        again = result(run(dag, logical_date=NOV_1)[1], "create")  # the same run again (cleared)
        assert again["outcome"] == "created", how
        assert again["id"] != first["id"] and again["idempotency_key"] != first["idempotency_key"]
        [alive] = [i for i in live_invoices(enlivy_emulator) if i["status"] != "cancelled"]
        assert alive["id"] == again["id"]
        _kill(enlivy_emulator, alive["id"], "deleted")  # start the next round from nothing alive


def test_replayed_dead_invoice_is_billed_again_even_without_a_lookup(enlivy_emulator: Any) -> None:
    # if_exists="create": no lookup; the server replays the deleted invoice for the key, which must not be
    # reported as created.
    dag = create_dag("dead_replay", if_exists="create")
    first = result(run(dag, logical_date=NOV_1)[1], "create")
    _kill(enlivy_emulator, first["id"], "deleted")
    again = result(run(dag, logical_date=NOV_1)[1], "create")
    assert again["outcome"] == "created" and again["id"] != first["id"]
    assert [invoice["id"] for invoice in live_invoices(enlivy_emulator)] == [again["id"]]


def test_if_cancelled_fail_names_the_dead_invoice_and_writes_nothing(enlivy_emulator: Any) -> None:
    failures = Failures()
    dag = create_dag("dead_fail", if_cancelled="fail", on_failure_callback=failures, retries=2)
    first = result(run(dag, logical_date=NOV_1)[1], "create")
    _kill(enlivy_emulator, first["id"], "cancelled")
    writes = enlivy_emulator.write_count()
    states, _ = run(dag, logical_date=NOV_1)
    assert states == {"create": "failed"}  # no retries: retrying cannot change the answer
    assert len(failures.seen) == 1 and f"{first['id']}" in failures.text() and "cancelled" in failures.text()
    assert enlivy_emulator.write_count() == writes
    assert [i["id"] for i in live_invoices(enlivy_emulator) if i["status"] != "cancelled"] == []


@pytest.mark.parametrize("how", ["cancelled", "deleted"])
def test_corrected_inputs_after_the_wrong_invoice_was_cancelled_bill_again_without_a_lookup(
    enlivy_emulator: Any, how: str
) -> None:
    # The usual reason to cancel an invoice is that it was wrong: the author cancels it, corrects the inputs
    # and re-runs. With if_exists="create" (no lookup) the first generation's key now meets a different body
    # (409); the billing's invoice under that key is dead, so the billing moves to its next generation
    # instead of failing with "cancel that invoice" (which was done).
    dag_id = new_dag_id(f"corrected_{how}")
    first = result(run(create_dag("", 1, dag_id=dag_id, if_exists="create"), logical_date=NOV_1)[1], "create")
    _kill(enlivy_emulator, first["id"], how)
    states, dag_run = run(create_dag("", 2, dag_id=dag_id, if_exists="create"), logical_date=NOV_1)
    assert states == {"create": "success"}
    again = result(dag_run, "create")
    assert again["outcome"] == "created" and again["id"] != first["id"]
    assert [i["id"] for i in live_invoices(enlivy_emulator) if i["status"] != "cancelled"] == [again["id"]]


def test_without_a_replay_header_a_recent_dead_invoice_is_not_reported_as_billed(
    enlivy_emulator: Any,
) -> None:
    # A server that does not flag replays answers a repeated key with the stored invoice; cancelled a moment
    # ago, it looks like a fresh create. The writer reads it again and bills under the next key generation.
    enlivy_emulator.configure(replay_header=False)
    dag = create_dag("no_replay_header", if_exists="create")  # no lookup: the answer alone must not mislead
    first = result(run(dag, logical_date=NOV_1)[1], "create")
    _kill(enlivy_emulator, first["id"], "cancelled")
    again = result(run(dag, logical_date=NOV_1)[1], "create")
    assert again["outcome"] == "created" and again["id"] != first["id"]
    alive = [i["id"] for i in live_invoices(enlivy_emulator) if i["status"] != "cancelled"]
    assert alive == [again["id"]]


def test_changed_inputs_without_a_billing_period_say_the_invoice_was_not_looked_up(
    enlivy_emulator: Any,
) -> None:
    # An event invoice (no billing period) re-sent with other inputs under its key: the message must not
    # claim the first invoice is dead, since nothing could look it up.
    failures = Failures()

    def event_dag(quantity: int) -> Any:
        with make_dag(new_dag_id("event_changed")) as dag:
            EnlivyCreateInvoiceOperator(
                task_id="create",
                customer=CUSTOMERS[0],
                line_items=[{"product_id": PLATFORM, "quantity": quantity}],
                invoice={"currency": "EUR", "issued_at": "2026-11-01"},
                idempotency_key="order-7",
                on_failure_callback=failures,
            )
        return dag

    first = result(run(event_dag(1), logical_date=NOV_1)[1], "create")
    states, _ = run(event_dag(2), logical_date=NOV_1)
    assert states == {"create": "failed"}
    assert "was not looked up (the invoice has no billing period)" in failures.text()
    assert "not found alive" not in failures.text()
    assert [invoice["id"] for invoice in live_invoices(enlivy_emulator)] == [first["id"]]
