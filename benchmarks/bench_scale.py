"""Billing 100,000 customers: chunks on N worker processes vs one bulk task, under an API rate limit.

    .venv/bin/python benchmarks/bench_scale.py                 # 100,000 customers (about an hour)
    .venv/bin/python benchmarks/bench_scale.py --quick         # 5,000 customers (about 4 minutes)
    .venv/bin/python benchmarks/bench_scale.py --customers 20000 --workers 4 --chunks 8 --rate-limit 200

The emulator runs in its own process (its CPU does not share a GIL with the clients) with ``--latency-ms``
on every request and a global token bucket of ``--rate-limit`` requests/s that answers 429 + Retry-After.
The specs (one per customer, by id, October) are written to a JSON Lines file and planned into ``--chunks``
chunks (``EnlivyPlanInvoiceChunksOperator``'s function). Then:

1. **Chunked**: ``--workers`` worker processes; each chunk runs ``EnlivyCreateInvoicesOperator(chunk=...)``
   ``.execute`` in a fresh process forked from a server that has Airflow and the provider imported, as
   Airflow's task runner does, with ``max_requests_per_second = rate limit / workers`` (the docs' rule: the
   quota divided by the chunk tasks running at once).
2. **One bulk task**: the same operator with the specs of ``--bulk-customers`` customers as a list
   (September, so other billings), the whole quota as its ``max_requests_per_second``, the same
   ``--concurrency`` threads.
3. **Re-run**: October again, cut into ``--rerun-chunks`` chunks (every customer in another chunk now):
   must create nothing. It also gives the peak RSS of a chunk task at a second chunk count.

Printed per phase: invoices/s, requests/s and that as a fraction of the rate limit (requests the emulator
answered without a 429, over rate x wall time; goal >= 0.9), 429s the emulator sent, failed invoices, and the
peak RSS (``VmHWM``) of the chunk tasks. At the end the emulator counts live invoices per billing
(customer, period, billing key): duplicates must be 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}
SEPTEMBER = {"start": "2026-09-01", "end": "2026-09-30"}
BILLING_KEY = "bench-usage"
INVOICE_DEFAULTS = {"currency": "EUR", "status": "pending", "issued_at": "2026-11-01", "due_in_days": 14}
GOAL = 0.9


def bench_customer(i: int) -> str:
    return f"org_user_2qD7mZ0benchCust{i:09d}"  # enlivy_provider.emulator.seeding.extra_customer_records


def spec(i: int) -> dict[str, Any]:
    from enlivy_provider.emulator import seed

    return {
        "customer": bench_customer(i),
        "line_items": [
            {"product_id": seed.DEMO_PRODUCTS[0].id, "quantity": 1},
            {"product_id": seed.DEMO_PRODUCTS[1].id, "quantity": f"{i % 997}.5"},
        ],
    }


def vm_hwm_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not in /proc/self/status")


def context(task_id: str, map_index: int) -> dict[str, Any]:
    """The few context entries the operator reads (a task runner gives it many more)."""
    import datetime as dt

    ti = SimpleNamespace(
        dag_id="bench_scale",
        task_id=task_id,
        map_index=map_index,
        run_id="bench",
        try_number=1,
        xcom_push=lambda key, value: None,
    )
    logical_date = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc)
    return {"ti": ti, "run_id": "bench", "logical_date": logical_date, "dag_run": None}


class _NotATaskRunner(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "outside of the Task Runner" not in record.getMessage()  # execute() is called directly here


def _quiet_logs() -> None:
    logging.basicConfig(level=logging.INFO, format="  %(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_NotATaskRunner())
    for noisy in ("urllib3", "httpx", "airflow", "airflow.sdk.bases.operator", "enlivy_provider.client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("airflow.task.operators").setLevel(logging.INFO)


def _execute(task_id: str, map_index: int, rate: float, concurrency: int, **specs: Any) -> dict[str, Any]:
    """Run the create operator's execute in this (task) process: its result, wall time and peak RSS."""
    from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator

    _quiet_logs()
    operator = EnlivyCreateInvoicesOperator(
        task_id=task_id,
        invoice_defaults=INVOICE_DEFAULTS,
        billing_key=BILLING_KEY,
        max_concurrency=concurrency,
        max_requests_per_second=rate,
        progress_interval=60.0,
        **specs,
    )
    started = time.perf_counter()
    result = operator.execute(context(task_id, map_index))  # type: ignore[arg-type]
    return {**result, "wall": time.perf_counter() - started, "peak_mib": vm_hwm_mib()}


def run_chunk(chunk: dict[str, Any], rate: float, concurrency: int) -> dict[str, Any]:
    """One chunk task (October), in its own process."""
    return _execute(
        "create_invoices", int(chunk["chunk"]), rate, concurrency, chunk=chunk, billing_period=OCTOBER
    )


def run_bulk(first: int, count: int, rate: float, concurrency: int) -> dict[str, Any]:
    """The one-bulk-task baseline (September, so other billings), in its own process."""
    invoices = [spec(i) for i in range(first, first + count)]
    result = _execute(
        "create_invoices_bulk", -1, rate, concurrency, invoices=invoices, billing_period=SEPTEMBER
    )
    # A bulk result lists the invoices per outcome; a chunk's result counts them: report counts for both.
    counts = {outcome: len(result[outcome]) for outcome in ("created", "existing", "replayed", "failed")}
    return {"counts": counts, "wall": result["wall"], "peak_mib": result["peak_mib"]}


def idle() -> float:
    """The RSS a task process starts with (forked from the server with Airflow and the provider loaded)."""
    return vm_hwm_mib()


def write_specs(path: Path, customers: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(1, customers + 1):
            handle.write(json.dumps(spec(i)) + "\n")


def measure(emulator: Any, label: str, rate: float, work: Any) -> dict[str, Any]:
    """Run ``work()`` (returns the per-task results) and read the emulator's counters around it."""
    emulator.reset_counters()
    started = time.perf_counter()
    results = work()
    wall = time.perf_counter() - started
    counters = emulator.counters()
    answered = counters["total"] - counters["rate_limited"]
    counts: dict[str, int] = {}
    for result in results:
        for name, value in result["counts"].items():
            counts[name] = counts.get(name, 0) + value
    invoices = counts.get("created", 0) + counts.get("existing", 0) + counts.get("replayed", 0)
    phase = {
        "label": label,
        "wall": wall,
        "invoices": invoices,
        "counts": counts,
        "requests": answered,
        "rate_limited": counters["rate_limited"],
        "invoices_per_s": invoices / wall,
        "requests_per_s": answered / wall,
        "fraction": answered / wall / rate,
        "peak_mib": max(result["peak_mib"] for result in results),
        "tasks": len(results),
    }
    print(
        f"{label}: {invoices:,} invoices in {wall:,.1f}s = {phase['invoices_per_s']:,.1f} invoices/s; "
        f"{answered:,} requests = {phase['requests_per_s']:,.1f}/s = {phase['fraction']:.3f} of the "
        f"{rate:g}/s limit; 429s: {counters['rate_limited']:,}; failed: {counts.get('failed', 0):,}; "
        f"counts {counts}; peak RSS of a task {phase['peak_mib']:,.1f} MiB",
        flush=True,
    )
    return phase


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument(
        "--quick", action="store_true", help="5,000 customers in 4 chunks, 2,000 in the bulk baseline"
    )
    parser.add_argument("--workers", type=int, default=4, help="worker processes running chunk tasks at once")
    parser.add_argument("--chunks", type=int, default=16)
    parser.add_argument("--rerun-chunks", type=int, default=None, help="default 4 (--quick: 8); 0 skips it")
    parser.add_argument("--bulk-customers", type=int, default=None, help="default: min(customers, 10,000)")
    parser.add_argument("--rate-limit", type=float, default=100.0, help="the emulator's requests/s")
    parser.add_argument("--latency-ms", type=int, default=100, help="added to every request by the emulator")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="threads per task (enough in flight to keep the pace)"
    )
    args = parser.parse_args()
    if args.quick:
        # Small chunks spend a larger share of their time starting (reading, validating, resolving their
        # customers): at 5,000 customers, one chunk per worker.
        args.customers, args.chunks = 5_000, args.workers
        args.rerun_chunks = 2 * args.workers if args.rerun_chunks is None else args.rerun_chunks
        args.bulk_customers = args.bulk_customers or 2_000
    if args.rerun_chunks is None:
        args.rerun_chunks = 4
    bulk_customers = args.bulk_customers if args.bulk_customers is not None else min(args.customers, 10_000)
    if args.customers + 0 > 100_000 or bulk_customers > args.customers:
        parser.error(
            "at most 100,000 customers (the emulator's extra customers), bulk-customers <= customers"
        )
    print(
        f"{args.customers:,} customers; emulator: {args.latency_ms} ms latency, {args.rate_limit:g} requests/s "
        f"(429 + Retry-After beyond); {args.workers} workers x {args.concurrency} threads, {args.chunks} chunks; "
        f"bulk baseline: {bulk_customers:,} customers",
        flush=True,
    )

    from enlivy_provider.invoices.chunks import plan_chunks
    from enlivy_provider.testing import run_emulator

    per_worker = args.rate_limit / args.workers
    with run_emulator(latency_ms=args.latency_ms, rate_limit=args.rate_limit) as emulator:
        emulator.reset(extra_customers=args.customers)
        os.environ["AIRFLOW_CONN_ENLIVY_DEFAULT"] = emulator.connection_json(timeout=120)
        # Task processes fork from a server holding Airflow and the provider, as Airflow's supervisor does:
        # their RSS is that baseline plus what the chunk itself costs.
        server = multiprocessing.get_context("forkserver")
        server.set_forkserver_preload(["airflow.sdk", "enlivy_provider.operators.invoices"])

        def pool(size: int) -> ProcessPoolExecutor:
            return ProcessPoolExecutor(max_workers=size, mp_context=server, max_tasks_per_child=1)

        with pool(1) as one:
            baseline = one.submit(idle).result()
        print(f"RSS of a task process before it does anything: {baseline:,.1f} MiB", flush=True)

        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "invoice-specs.jsonl"
            write_specs(source, args.customers)
            started = time.perf_counter()
            plan, issues = plan_chunks(lambda: source.open("rb"), str(source), chunks=args.chunks)
            assert not issues, issues
            print(
                f"plan: {args.chunks} chunks of ~{plan[0].rows:,} rows in {time.perf_counter() - started:.1f}s"
            )

            def chunked(chunks: list[Any]) -> Any:
                def work() -> list[dict[str, Any]]:
                    with pool(args.workers) as workers:
                        futures = [
                            workers.submit(run_chunk, c.as_dict(), per_worker, args.concurrency)
                            for c in chunks
                        ]
                        return [future.result() for future in futures]

                return work

            phases = [
                measure(emulator, f"chunked ({args.chunks} chunks, {args.workers} workers)", args.rate_limit,
                        chunked(plan))
            ]  # fmt: skip

            def bulk() -> list[dict[str, Any]]:
                with pool(1) as single:
                    return [
                        single.submit(run_bulk, 1, bulk_customers, args.rate_limit, args.concurrency).result()
                    ]

            phases.append(measure(emulator, "one bulk task", args.rate_limit, bulk))
            if args.rerun_chunks:
                replan, _ = plan_chunks(lambda: source.open("rb"), str(source), chunks=args.rerun_chunks)
                phases.append(
                    measure(
                        emulator, f"re-run ({args.rerun_chunks} chunks)", args.rate_limit, chunked(replan)
                    )
                )
        billed = emulator.billings()

    chunk_phase, bulk_phase = phases[0], phases[1]
    expected = args.customers + bulk_customers
    print()
    print(
        f"invoices in the emulator: {billed['invoices']:,} (expected {expected:,}); duplicates: {billed['duplicates']}"
    )
    print(
        f"chunked / one bulk task, invoices per second: {chunk_phase['invoices_per_s'] / bulk_phase['invoices_per_s']:.2f}x"
    )
    print(f"throughput / rate limit: chunked {chunk_phase['fraction']:.3f}, one bulk task {bulk_phase['fraction']:.3f} "
          f"(goal >= {GOAL})")  # fmt: skip
    rows = [f"{p['label']}: {p['peak_mib']:,.1f} MiB" for p in phases if "chunk" in p["label"]]
    print(f"peak RSS of one chunk task (baseline {baseline:,.1f} MiB): " + "; ".join(rows))
    failed = sum(p["counts"].get("failed", 0) for p in phases)
    rerun_ok = len(phases) < 3 or phases[2]["counts"].get("created", 0) == 0
    ok = (
        billed["duplicates"] == 0
        and billed["invoices"] == expected
        and failed == 0
        and chunk_phase["fraction"] >= GOAL
        and rerun_ok
    )
    print(
        f"goal: chunked >= {GOAL} of the limit, 0 failed, 0 duplicates, re-run creates 0: {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
