"""Fault matrix: whatever the network and the server do, each (customer, period) is invoiced exactly once.

Counted in the emulator: live invoices per (customer, billing period), POST requests, replayed keys.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pendulum
import pytest
from invoice_support import (
    CUSTOMERS,
    OCTOBER,
    PLATFORM,
    Failures,
    duplicates,
    live_invoices,
    make_dag,
    new_dag_id,
    requests_to,
    result,
    run,
)

from enlivy_provider.operators.invoices import EnlivyCreateInvoiceOperator, EnlivyCreateInvoicesOperator

INVOICES = "/organizations/*/invoices"
NOV_1 = pendulum.datetime(2026, 11, 1, tz="UTC")


def create_dag(dag_id: str, **kwargs: Any) -> Any:
    with make_dag(dag_id) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=CUSTOMERS[0],
            line_items=[{"product_id": PLATFORM, "quantity": 1}],
            invoice={"currency": "EUR"},
            billing_period=OCTOBER,
            **kwargs,
        )
    return dag


@pytest.mark.parametrize(
    ("action", "fault"),
    [
        ("drop_after_commit", {}),
        ("error", {"status": 500, "times": 2}),
        ("error", {"status": 503, "times": 2}),
        ("rate_limit", {"retry_after": 0, "times": 3}),
        ("drop_before_commit", {}),
    ],
    ids=["drop_after_commit", "500_before_commit", "503_twice", "429_burst", "drop_before_commit"],
)
@pytest.mark.parametrize("if_exists", ["skip", "create"])
def test_create_survives_a_fault_with_exactly_one_invoice(
    enlivy_emulator: Any, action: str, fault: dict[str, Any], if_exists: str
) -> None:
    enlivy_emulator.add_fault("POST", INVOICES, action, **fault)
    states, dag_run = run(create_dag(new_dag_id(f"fault_{action}"), if_exists=if_exists))
    assert states == {"create": "success"}
    # A write committed but its answer lost: the client's retry gets the server's replay, and says so.
    expected = "replayed" if action == "drop_after_commit" else "created"
    assert result(dag_run, "create")["outcome"] == expected
    assert len(live_invoices(enlivy_emulator)) == 1
    assert (
        requests_to(enlivy_emulator, "POST", "invoices") >= 2
    )  # the fault really happened and the client sent again


@pytest.mark.parametrize("if_exists", ["skip", "create"])
def test_task_retried_after_a_committed_but_lost_write_creates_no_duplicate(
    enlivy_emulator: Any, connection_extra: Any, failures: Failures, if_exists: str
) -> None:
    connection_extra(max_retries=0)  # the client gives up at once: the *task* fails and Airflow retries it
    enlivy_emulator.add_fault("POST", INVOICES, "drop_after_commit")
    retried = Failures()
    dag = create_dag(
        new_dag_id("task_retry"),
        if_exists=if_exists,
        retries=1,
        retry_delay=dt.timedelta(0),
        on_retry_callback=retried,
        on_failure_callback=failures,
    )
    states, dag_run = run(dag, logical_date=NOV_1)
    assert states == {"create": "success"}
    assert len(retried.seen) == 1 and "connection" in retried.text().lower()
    assert failures.seen == []
    summary = result(dag_run, "create")
    # skip: the retry finds the committed invoice; create: the same Idempotency-Key replays the first answer.
    assert summary["outcome"] == ("existing" if if_exists == "skip" else "replayed")
    [invoice] = live_invoices(enlivy_emulator)
    assert summary["id"] == invoice["id"]


def test_cleared_and_rerun_task_replays_its_idempotency_key(enlivy_emulator: Any) -> None:
    dag = create_dag(new_dag_id("cleared"), if_exists="create")  # no lookup: only the key protects
    first = result(run(dag, logical_date=NOV_1)[1], "create")
    second = result(run(dag, logical_date=NOV_1)[1], "create")
    assert first["id"] == second["id"]
    assert (first["outcome"], second["outcome"]) == ("created", "replayed")
    assert first["idempotency_key"] == second["idempotency_key"]
    assert len(live_invoices(enlivy_emulator)) == 1
    assert any(k["key"] == first["idempotency_key"] for k in enlivy_emulator.idempotency_keys())


def test_same_period_rerun_days_later_skips_or_fails(enlivy_emulator: Any, failures: Failures) -> None:
    dag = create_dag(new_dag_id("rerun"), billing_key="platform-fee")
    first = result(run(dag, logical_date=NOV_1)[1], "create")
    later = result(run(dag, logical_date=NOV_1.add(days=9))[1], "create")  # new run, same billing
    assert first["outcome"] == "created" and later["outcome"] == "existing"
    assert later["id"] == first["id"] and later["idempotency_key"] == first["idempotency_key"]

    # Another DAG billing the same thing (same billing key) finds it too.
    strict = create_dag(
        new_dag_id("rerun_fail"), billing_key="platform-fee", if_exists="fail", on_failure_callback=failures
    )
    states, _ = run(strict, logical_date=NOV_1.add(days=20))
    assert states == {"create": "failed"}
    assert f"already has an invoice: {first['id']}" in failures.text()
    assert len(live_invoices(enlivy_emulator)) == 1


def test_a_cancelled_invoice_does_not_count_as_billed(enlivy_emulator: Any) -> None:
    dag = create_dag(new_dag_id("cancelled"))
    first = result(run(dag, logical_date=NOV_1)[1], "create")
    enlivy_emulator.set_invoice_status(first["id"], "cancelled")
    again = result(run(dag, logical_date=NOV_1.add(days=1))[1], "create")
    assert again["outcome"] == "created" and again["id"] != first["id"]


def bulk_dag(dag_id: str, n: int, **kwargs: Any) -> Any:
    specs = [
        {"customer": CUSTOMERS[i % len(CUSTOMERS)], "key": f"k{i}", "line_items": [{"product_id": PLATFORM, "quantity": 1}],
         "billing_period": {"start": f"2026-10-{i // len(CUSTOMERS) + 1:02d}", "end": "2026-10-31"}}
        for i in range(n)
    ]  # fmt: skip
    with make_dag(dag_id) as dag:
        EnlivyCreateInvoicesOperator(
            task_id="bulk", invoices=specs, invoice_defaults={"currency": "EUR"}, max_concurrency=6, **kwargs
        )
    return dag


def test_bulk_survives_mixed_faults_with_no_duplicate_and_none_missing(enlivy_emulator: Any) -> None:
    enlivy_emulator.add_fault("POST", INVOICES, "drop_after_commit", times=3)
    enlivy_emulator.add_fault("POST", INVOICES, "error", status=500, times=3)
    enlivy_emulator.add_fault("POST", INVOICES, "rate_limit", retry_after=0, times=4)
    enlivy_emulator.add_fault("GET", INVOICES, "error", status=502, times=2)
    states, dag_run = run(bulk_dag(new_dag_id("bulk_faults"), 24))
    assert states == {"bulk": "success"}
    out = result(dag_run, "bulk")
    assert len(out["created"]) == 21 and len(out["replayed"]) == 3  # 3 answers lost after the commit
    assert out["failed"] == []
    assert len(live_invoices(enlivy_emulator)) == 24
    assert duplicates(enlivy_emulator) == 0


def test_bulk_task_failing_half_way_is_completed_by_its_retry(
    enlivy_emulator: Any, connection_extra: Any
) -> None:
    connection_extra(max_retries=0)
    enlivy_emulator.add_fault("POST", INVOICES, "error", status=503, times=5)  # 5 items fail before commit
    enlivy_emulator.add_fault("POST", INVOICES, "drop_after_commit", times=3)  # 3 commit but look failed
    retried = Failures()
    states, dag_run = run(
        bulk_dag(
            new_dag_id("bulk_retry"), 24, retries=1, retry_delay=dt.timedelta(0), on_retry_callback=retried
        ),
        logical_date=NOV_1,
    )
    assert states == {"bulk": "success"}
    assert len(retried.seen) == 1 and "8 of 24 invoices failed" in retried.text()
    out = result(dag_run, "bulk")
    assert out["failed"] == []
    assert len(out["created"]) + len(out["existing"]) == 24
    assert len(out["existing"]) == 16 + 3  # first attempt's successes and the committed-but-dropped ones
    assert len(live_invoices(enlivy_emulator)) == 24
    assert duplicates(enlivy_emulator) == 0


def test_bulk_rerun_of_the_same_period_later_creates_nothing_new(enlivy_emulator: Any) -> None:
    dag = bulk_dag(new_dag_id("bulk_rerun"), 12)
    first = result(run(dag, logical_date=NOV_1)[1], "bulk")
    writes = enlivy_emulator.write_count()
    later = result(run(dag, logical_date=NOV_1.add(days=30))[1], "bulk")
    assert len(first["created"]) == 12
    assert later["created"] == [] and len(later["existing"]) == 12
    assert sorted(later["invoice_ids"]) == sorted(first["invoice_ids"])
    assert enlivy_emulator.write_count() == writes
    assert len(live_invoices(enlivy_emulator)) == 12


def test_if_exists_finds_the_period_beyond_the_first_page(enlivy_emulator: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from enlivy_provider.client import EnlivyClient

    def period(day: int) -> dict[str, Any]:
        return {"name_lang_map": {"en": "x"}, "quantity": 1, "price": 1, "has_billing_period": True,
                "billing_period_started_at": f"2026-01-{day:02d}", "billing_period_ended_at": f"2026-01-{day:02d}"}  # fmt: skip

    base = {"organization_receiver_user_id": CUSTOMERS[0], "status": "draft", "currency": "EUR",
            "payment_method": "bank_transfer", "delivery_method": "email"}  # fmt: skip
    with EnlivyClient(
        enlivy_emulator.base_url, enlivy_emulator.token, organization_id=enlivy_emulator.org_id
    ) as api:
        oldest = api.create_invoice({**base, "line_items": [period(1)]})
        with ThreadPoolExecutor(8) as pool:  # 60 newer invoices of other periods: the oldest is on page 2
            list(
                pool.map(
                    lambda n: api.create_invoice({**base, "line_items": [period(2 + n % 27)]}), range(60)
                )
            )
    enlivy_emulator.reset_counters()
    dag = create_dag(new_dag_id("deep_lookup"))
    dag.task_dict["create"].billing_period = {"start": "2026-01-01", "end": "2026-01-01"}
    states, dag_run = run(dag)
    assert states == {"create": "success"}
    summary = result(dag_run, "create")
    assert summary["outcome"] == "existing" and summary["id"] == oldest["id"]
    assert requests_to(enlivy_emulator, "GET", "invoices") == 2  # both pages of the lookup
    assert enlivy_emulator.write_count() == 0


def test_rerun_later_finds_an_invoice_whose_lines_all_bill_another_period(enlivy_emulator: Any) -> None:
    # Billing in advance: the run's period is October, every line bills November. The lookup must look for
    # the period the lines carry; looking for October could never match and a later re-run billed twice.
    with make_dag(new_dag_id("rerun_line_period")) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=CUSTOMERS[0],
            line_items=[
                {"product_id": PLATFORM, "quantity": 1, "billing_period": {"start": "2026-11-01", "end": "2026-11-30"}}
            ],
            invoice={"currency": "EUR"},
            billing_period=OCTOBER,
        )  # fmt: skip
    first = result(run(dag, logical_date=NOV_1)[1], "create")
    later = result(run(dag, logical_date=NOV_1.add(days=9))[1], "create")  # new run, same invoice
    assert first["outcome"] == "created" and later["outcome"] == "existing"
    assert later["id"] == first["id"]
    assert len(live_invoices(enlivy_emulator)) == 1


@pytest.mark.parametrize(
    "kind",
    [{"type": "proforma"}, {"type": "reversal"}, {"direction": "inbound"}],
    ids=["proforma", "reversal", "inbound"],
)
def test_a_proforma_reversal_or_inbound_invoice_does_not_count_as_billed(
    enlivy_emulator: Any, kind: dict[str, str]
) -> None:
    # A proforma (a quote), a reversal (a credit note) or an invoice the customer sent us is not our invoice for
    # the period: skipping because of it left the period never billed.
    from enlivy_provider.client import EnlivyClient

    line = {"organization_product_id": PLATFORM, "quantity": 1, "has_billing_period": True,
            "billing_period_started_at": OCTOBER["start"], "billing_period_ended_at": OCTOBER["end"]}  # fmt: skip
    with EnlivyClient(
        enlivy_emulator.base_url, enlivy_emulator.token, organization_id=enlivy_emulator.org_id
    ) as api:
        other = api.create_invoice(
            {"organization_receiver_user_id": CUSTOMERS[0], "status": "pending", "currency": "EUR",
             "payment_method": "bank_transfer", "delivery_method": "email", "line_items": [line], **kind}
        )  # fmt: skip
    assert all(other[field] == value for field, value in kind.items())
    summary = result(run(create_dag(new_dag_id("not_billed")))[1], "create")
    assert summary["outcome"] == "created" and summary["id"] != other["id"]
    assert len(live_invoices(enlivy_emulator)) == 2
