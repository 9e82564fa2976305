"""Billing in chunks (docs/operators.md, "Billing in chunks"): a JSON Lines file of specs planned into chunks,
one mapped ``EnlivyCreateInvoicesOperator`` per chunk, a summary task adding their results up — run as real
Airflow (``dag.test()``) against the emulator over HTTP. Counts come from the emulator.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import task
from airflow_support import task_log
from invoice_support import OCTOBER, PLATFORM, Failures, make_dag, new_dag_id, result, run, run_at_once

from enlivy_provider.emulator import seed
from enlivy_provider.invoices.chunks import plan_chunks
from enlivy_provider.operators.chunks import (
    EnlivyPlanInvoiceChunksOperator,
    EnlivySummarizeInvoiceChunksOperator,
)
from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator

INVOICES = "/organizations/*/invoices"
USERS = "GET /organizations/{org}/users"
NOV_1 = pendulum.datetime(2026, 11, 1, tz="UTC")
BILLING_KEY = "usage"  # explicit: DAGs of different ids bill the same thing, as a re-planned run would
DEMO = [c.id for c in seed.DEMO_CUSTOMERS]


def bench_customer(i: int) -> str:
    return f"org_user_2qD7mZ0benchCust{i:09d}"  # enlivy_provider.emulator.seeding.extra_customer_records


def spec(customer: str, quantity: int = 1) -> dict[str, Any]:
    return {"customer": customer, "line_items": [{"product_id": PLATFORM, "quantity": quantity}]}


def write_specs(path: Path, customers: list[str], *, blank_every: int = 0) -> str:
    lines = []
    for n, customer in enumerate(customers, start=1):
        lines.append(json.dumps(spec(customer)))
        if blank_every and n % blank_every == 0:
            lines.append("")  # blank lines are allowed and keep their line numbers
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def descriptors(source: str, chunks: int) -> list[dict[str, Any]]:
    """Plan a local file the way the plan task does (the same function), for a test to hand out chunks."""
    plan, issues = plan_chunks(lambda: open(source, "rb"), source, chunks=chunks)  # noqa: SIM115
    assert not issues
    return [chunk.as_dict() for chunk in plan]


def create_partial(**kwargs: Any) -> Any:
    kwargs.setdefault("billing_key", BILLING_KEY)
    kwargs.setdefault("invoice_defaults", {"currency": "EUR", "issued_at": "2026-11-01"})
    kwargs.setdefault("billing_period", OCTOBER)
    kwargs.setdefault("progress_interval", 0)
    return EnlivyCreateInvoicesOperator.partial(task_id="create", **kwargs)


def chunked_dag(name: str, source: str, chunks: int, **create_kwargs: Any) -> Any:
    """plan -> create (mapped over the chunks) -> summary, as docs/operators.md shows it."""
    with make_dag(new_dag_id(name)) as dag:
        plan = EnlivyPlanInvoiceChunksOperator(task_id="plan", source=source, chunks=chunks)
        create = create_partial(**create_kwargs).expand(chunk=plan.output)
        EnlivySummarizeInvoiceChunksOperator(task_id="summary", results=create.output, chunks=plan.output)
    return dag


def mapped_tries(dag_run: Any, task_id: str = "create") -> dict[int, int]:
    """{map index: try number} of a mapped task in a finished run."""
    from airflow.utils.session import create_session

    with create_session() as session:
        return {
            ti.map_index: ti.try_number
            for ti in dag_run.get_task_instances(session=session)
            if ti.task_id == task_id
        }


def users_reads(emulator: Any) -> int:
    return int(emulator.counters()["routes"].get(USERS, 0))


def test_chunks_bill_every_customer_once_and_a_replan_with_other_chunks_bills_nothing(
    enlivy_emulator: Any,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    enlivy_emulator.reset(extra_customers=24)
    source = write_specs(tmp_path / "specs.jsonl", [bench_customer(i) for i in range(1, 25)], blank_every=5)
    states, dag_run = run(chunked_dag("chunks", source, 4), logical_date=NOV_1)
    assert states == {
        "plan": "success",
        **{f"create[{i}]": "success" for i in range(4)},
        "summary": "success",
    }
    plan = result(dag_run, "plan")
    assert [c["rows"] for c in plan] == [6, 6, 6, 6] and plan == descriptors(
        source, 4
    )  # same file, same plan
    for index in range(4):
        chunk = result(dag_run, "create", index)
        assert chunk["chunk"] == index and chunk["counts"]["created"] == 6 and chunk["attempt"] == 1
        assert len(json.dumps(chunk)) < 1_000  # a chunk's XCom is counts and amounts, not invoices
    summary = result(dag_run, "summary")
    assert summary["counts"] == {"created": 24, "existing": 0, "replayed": 0, "failed": 0, "invalid": 0}
    assert summary["totals"] == {"EUR": "5683.44"}  # 24 x (199.00 + 19 % VAT 37.81)
    assert summary["missing_chunks"] == [] and summary["rows"] == summary["total_rows"] == 24
    billed = enlivy_emulator.billings()
    assert billed["invoices"] == billed["billings"] == 24 and billed["duplicates"] == 0
    out = task_log(capfd, caplog)
    assert "chunk 3/4: 6/6 done (6 created, 0 existing, 0 replayed, 0 failed)" in out  # per-chunk progress
    assert "Total: 24 of 24 rows in 4 of 4 chunks: 24 created, 0 existing" in out  # the run's total

    # A later run of the same month cut into 5 chunks: every customer sits in another chunk now, and the
    # billing identity (customer, period, billing key) finds every invoice: nothing is written.
    writes = enlivy_emulator.write_count()
    states, dag_run = run(chunked_dag("chunks_replan", source, 5), logical_date=NOV_1.add(days=3))
    assert set(states.values()) == {"success"}
    assert result(dag_run, "summary")["counts"]["existing"] == 24
    assert enlivy_emulator.write_count() == writes
    assert enlivy_emulator.billings()["duplicates"] == 0


def test_chunks_given_overlapping_customers_bill_each_customer_once(
    enlivy_emulator: Any, tmp_path: Path
) -> None:
    # Two chunks of two different files share customers 2 and 3: overlap is harmless because an invoice
    # belongs to its billing, not to the chunk that makes it.
    first = descriptors(write_specs(tmp_path / "a.jsonl", DEMO[0:4]), 1)
    second = descriptors(write_specs(tmp_path / "b.jsonl", DEMO[2:6]), 1)
    with make_dag(new_dag_id("overlap")) as dag:
        create_partial().expand(chunk=first + second)
    states, dag_run = run(dag, logical_date=NOV_1)
    assert states == {"create[0]": "success", "create[1]": "success"}
    # dag.test runs the two map indexes in either order (Airflow 2 and 3 differ): whichever ran second found
    # customers 2 and 3 billed already.
    counts = [result(dag_run, "create", i)["counts"] for i in (0, 1)]
    assert sorted((c["created"], c["existing"]) for c in counts) == [(2, 2), (4, 0)]
    billed = enlivy_emulator.billings()
    assert billed["invoices"] == len(DEMO) and billed["duplicates"] == 0


def test_overlapping_chunks_racing_in_two_processes_bill_each_customer_once(
    enlivy_emulator: Any, tmp_path: Path, connection_extra: Any
) -> None:
    # The same overlap, the two chunks in separate processes at once, every existence lookup held by the
    # emulator until all 8 were asked: both chunks see no invoice for customers 2 and 3 and both create them.
    # The billing's Idempotency-Key is the same in both chunks, so Enlivy keeps one invoice each.
    connection_extra(timeout=270)  # a loaded machine may start the second process late; the barrier waits
    enlivy_emulator.add_fault("GET", INVOICES, "barrier", parties=8, delay_ms=240_000)
    chunks = [
        descriptors(write_specs(tmp_path / "a.jsonl", DEMO[0:4]), 1)[0],
        descriptors(write_specs(tmp_path / "b.jsonl", DEMO[2:6]), 1)[0],
    ]
    dags = []
    for name, chunk in zip(("race_a", "race_b"), chunks, strict=True):
        with make_dag(new_dag_id(name)) as dag:
            EnlivyCreateInvoicesOperator(
                task_id="create",
                chunk=chunk,
                billing_key=BILLING_KEY,
                invoice_defaults={"currency": "EUR", "issued_at": "2026-11-01"},
                billing_period=OCTOBER,
                max_concurrency=4,  # all four lookups of a chunk in flight at once, for the barrier
            )
        dags.append(dag)
    (states_a, out_a), (states_b, out_b) = run_at_once(
        (dags[0], {"logical_date": NOV_1}), (dags[1], {"logical_date": NOV_1})
    )
    assert states_a == states_b == {"create": "success"}
    billed = enlivy_emulator.billings()
    assert billed["invoices"] == len(DEMO) and billed["duplicates"] == 0
    both = Counter(out_a["create"]["counts"]) + Counter(out_b["create"]["counts"])
    assert (both["created"], both["replayed"], both["existing"]) == (
        6,
        2,
        0,
    )  # 2 overlapping: one replay each


def test_a_failed_chunk_is_retried_alone_and_bills_only_what_it_missed(
    enlivy_emulator: Any, tmp_path: Path, connection_extra: Any
) -> None:
    # The client does not retry (max_retries=0), so the first create's 503 fails one item of whichever chunk
    # runs first; that chunk bills the rest, fails, and Airflow retries that map index alone.
    connection_extra(max_retries=0)
    enlivy_emulator.reset(extra_customers=24)
    source = write_specs(tmp_path / "specs.jsonl", [bench_customer(i) for i in range(1, 25)])
    enlivy_emulator.add_fault("POST", INVOICES, "error", status=503, times=1)
    retried = Failures()
    dag = chunked_dag(
        "chunk_retry", source, 4, retries=1, retry_delay=dt.timedelta(0), on_retry_callback=retried
    )
    states, dag_run = run(dag, logical_date=NOV_1)
    assert set(states.values()) == {"success"}
    tries = mapped_tries(dag_run)
    [again] = [index for index, tried in tries.items() if tried == 2]
    assert sorted(tries.values()) == [1, 1, 1, 2]  # one chunk ran twice, the others once
    assert "1 of 6 invoices failed (created 5, existing 0, replayed 0)" in retried.text()
    assert result(dag_run, "create", again)["counts"] == {
        "created": 1, "existing": 5, "replayed": 0, "failed": 0, "invalid": 0  # its retry: only the missed one
    }  # fmt: skip
    summary = result(dag_run, "summary")
    assert summary["counts"]["created"] == 24 - 5 and summary["retried_chunks"] == [
        {"chunk": again, "attempt": 2}
    ]
    assert users_reads(enlivy_emulator) == 4 + 1  # customer reads: one per chunk, one more for the retry
    assert enlivy_emulator.request_count("POST", "/organizations/{org}/invoices") == 24 + 1
    billed = enlivy_emulator.billings()
    assert billed["invoices"] == 24 and billed["duplicates"] == 0


def test_a_failed_chunk_fails_the_summary_naming_it_after_the_others_billed(
    enlivy_emulator: Any, tmp_path: Path, connection_extra: Any, failures: Failures
) -> None:
    connection_extra(max_retries=0)
    enlivy_emulator.reset(extra_customers=12)
    source = write_specs(tmp_path / "specs.jsonl", [bench_customer(i) for i in range(1, 13)])
    enlivy_emulator.add_fault("POST", INVOICES, "error", status=503, times=1)
    dag = chunked_dag("chunk_fails", source, 3, on_failure_callback=failures)
    dag.task_dict["summary"].on_failure_callback = [failures]
    states, _ = run(dag, logical_date=NOV_1)
    assert sorted(states.values()).count("failed") == 2  # one chunk and the summary
    assert states["summary"] == "failed"
    summary_failure = [text for task_id, _, text in failures.seen if task_id == "summary"]
    assert summary_failure and "did not finish: their rows are not all billed" in summary_failure[0]
    assert enlivy_emulator.billings()["invoices"] == 12 - 1


def test_rate_limited_chunks_pace_under_the_limit_and_honour_retry_after(
    enlivy_emulator: Any, tmp_path: Path
) -> None:
    enlivy_emulator.reset(extra_customers=12)
    source = write_specs(tmp_path / "specs.jsonl", [bench_customer(i) for i in range(1, 13)])
    # The API's quota: 20 requests/s (bursts of 20). Two chunks share it at 10/s each, as
    # max_requests_per_second = quota / chunks running at once: the emulator never answers 429.
    enlivy_emulator.configure(rate_limit=20)
    states, _ = run(chunked_dag("chunks_paced", source, 2, max_requests_per_second=10), logical_date=NOV_1)
    assert set(states.values()) == {"success"}
    assert enlivy_emulator.counters()["rate_limited"] == 0
    # A server that refuses three creates with Retry-After: every thread of the chunk waits, nothing fails.
    enlivy_emulator.reset(extra_customers=12)  # back to no rate limit, no invoices, counters at 0
    enlivy_emulator.add_fault("POST", INVOICES, "rate_limit", retry_after=1, times=3)
    states, dag_run = run(chunked_dag("chunks_429", source, 2), logical_date=NOV_1.add(months=1))
    assert set(states.values()) == {"success"}
    assert enlivy_emulator.counters()["rate_limited"] == 3
    assert result(dag_run, "summary")["counts"]["failed"] == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"customer": "org_user_x"}\n[1, 2]\n',
            "line 2: must be a JSON object, one invoice spec (got list)",
        ),
        (
            '{"customer": "org_user_x"}\n{"customer": "org_user_x"}\n',
            "line 2: key 'org_user_x' is also on line 1",
        ),
        (
            '{"customer": "org_user_x", "line_items": [{"quantity": NaN}]}\n',
            "line 1.line_items[0].quantity: NaN",
        ),
        ('{"customer": "org_user_x", "key": 1, "key": 2}\n', "line 1.key: given twice"),
        ('{"line_items": []}\n', "line 1: needs a 'key' or a 'customer'"),
        ("\n\n", "has no invoice specs"),
        ('{"customer": "org_user_x"\n', "line 1: is not valid JSON"),
    ],
    ids=["not-an-object", "repeated-key", "nan", "json-key-twice", "no-customer", "empty", "broken-json"],
)
def test_a_bad_specs_file_fails_the_plan_naming_the_line_before_any_request(
    enlivy_emulator: Any, tmp_path: Path, failures: Failures, text: str, expected: str
) -> None:
    (tmp_path / "specs.jsonl").write_text(text, encoding="utf-8")
    dag = chunked_dag("bad_plan", str(tmp_path / "specs.jsonl"), 2, on_failure_callback=failures)
    dag.task_dict["plan"].on_failure_callback = [failures]
    dag.task_dict["plan"].retries = 2
    states, _ = run(dag, logical_date=NOV_1)
    assert states["plan"] == "failed"
    assert [kind for task_id, kind, _ in failures.seen if task_id == "plan"] == ["AirflowFailException"]
    assert expected in failures.text()
    assert enlivy_emulator.counters()["total"] == 0


def test_a_file_changed_since_the_plan_fails_its_chunk_without_writing_or_retrying(
    enlivy_emulator: Any, tmp_path: Path, failures: Failures
) -> None:
    path = tmp_path / "specs.jsonl"
    source = write_specs(path, DEMO)

    @task
    def change_the_file() -> None:  # someone re-exports the month between the plan and the chunks
        path.write_text(path.read_text().replace(DEMO[1], DEMO[0][:-1] + "9"), encoding="utf-8")

    with make_dag(new_dag_id("changed")) as dag:
        plan = EnlivyPlanInvoiceChunksOperator(task_id="plan", source=source, chunks=2)
        create = create_partial(retries=2, on_failure_callback=failures).expand(chunk=plan.output)
        plan >> change_the_file() >> create
    states, _ = run(dag, logical_date=NOV_1)
    # Chunk 1's bytes changed (customer 1 is on line 2); chunk 2's did not (the ids have one length).
    assert (states["create[0]"], states["create[1]"]) == ("failed", "success")
    assert (
        "chunk 1/2 of" in failures.text()
        and "the file changed since the chunks were planned" in failures.text()
    )
    assert [kind for _, kind, _ in failures.seen] == ["AirflowFailException"]  # not retried
    billed = sorted(invoice["organization_receiver_user_id"] for invoice in enlivy_emulator.live_invoices())
    assert billed == sorted(DEMO[3:])  # chunk 1 wrote nothing


def test_a_malformed_chunk_descriptor_fails_naming_the_field_before_any_request(
    enlivy_emulator: Any, tmp_path: Path, failures: Failures
) -> None:
    chunk = descriptors(write_specs(tmp_path / "specs.jsonl", DEMO), 1)[0]
    broken = {**chunk, "chunk": 3, "digest": "abc"}
    with make_dag(new_dag_id("bad_chunk")) as dag:
        create_partial(retries=2, on_failure_callback=failures).expand(chunk=[broken])
    states, _ = run(dag, logical_date=NOV_1)
    assert states == {"create[0]": "failed"}
    assert "chunk.digest: must be the SHA-256 hex digest of the chunk" in failures.text()
    assert [kind for _, kind, _ in failures.seen] == ["AirflowFailException"]
    assert enlivy_emulator.counters()["total"] == 0


def test_plan_is_deterministic_and_chunks_tile_the_file() -> None:
    text = "".join(
        json.dumps(spec(bench_customer(i))) + ("\n\n" if i % 7 == 0 else "\n") for i in range(1, 101)
    )
    data = text.encode()

    def opener() -> io.BytesIO:
        return io.BytesIO(data)

    for count in (1, 3, 7, 100, 130):
        plan, issues = plan_chunks(opener, "mem", chunks=count)
        again, _ = plan_chunks(opener, "mem", chunks=count)
        assert not issues and plan == again
        assert [c.start for c in plan[1:]] == [c.end for c in plan[:-1]] and plan[-1].end == len(data)
        assert sum(c.rows for c in plan) == 100 and max(c.rows for c in plan) - min(c.rows for c in plan) <= 1
    plan, _ = plan_chunks(opener, "mem", rows_per_chunk=30)
    assert [c.rows for c in plan] == [25, 25, 25, 25]  # 4 chunks are needed; rows spread evenly
