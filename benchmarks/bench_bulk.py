"""Bulk invoice creation: ``max_concurrency=16`` vs sequential (``max_concurrency=1``), same emulator, same run.

    .venv/bin/python benchmarks/bench_bulk.py                        # 1,000 concurrent, 100 sequential, 50 ms
    .venv/bin/python benchmarks/bench_bulk.py --count 1000 --sequential-count 1000

The emulator runs with 50 ms latency on every request and 1,000+ extra invoiceable customers. Each run is
``EnlivyCreateInvoicesOperator.execute`` with a minimal task context (no scheduler; the operator code path is
the one a task runs): one invoice per customer for one billing period, ``if_exists="skip"``, so every item costs
a lookup (GET) and a create (POST).

The sequential baseline runs on a smaller sample (``--sequential-count``, default 100) because at 50 ms per
request 1,000 sequential invoices take minutes; the comparison is per invoice:

* ``ratio (end to end)``: seconds per invoice, whole ``execute`` (includes the fixed validation reads:
  customer list and catalogue);
* ``ratio (writes only)``: the same after subtracting each run's fixed part, measured by a ``dry_run`` of the
  same specs (which does exactly those reads and no writes).

Then the concurrent batch is re-run for the same period (a new run: new idempotency keys) and the emulator
is asked how many (customer, period) pairs have more than one invoice: must be 0. Target ratio: >= 10.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_RATIO = 10.0
OCTOBER = {"start": "2026-10-01", "end": "2026-10-31"}
SEPTEMBER = {"start": "2026-09-01", "end": "2026-09-30"}


def bench_customer(i: int) -> str:
    return f"org_user_2qD7mZ0benchCust{i:09d}"  # enlivy_provider.emulator.seeding.extra_customer_records


def context(run_id: str, logical_date: dt.datetime) -> dict[str, Any]:
    pushed: dict[str, Any] = {}
    ti = SimpleNamespace(
        dag_id="bench_bulk",
        task_id="create_invoices",
        map_index=-1,
        run_id=run_id,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )
    return {"ti": ti, "run_id": run_id, "logical_date": logical_date, "dag_run": None}


def execute(
    specs: list[dict[str, Any]], concurrency: int, run_id: str, *, dry_run: bool = False
) -> tuple[float, Any]:
    from enlivy_provider.operators.invoices import EnlivyCreateInvoicesOperator

    operator = EnlivyCreateInvoicesOperator(
        task_id="create_invoices",
        invoices=specs,
        invoice_defaults={"currency": "EUR", "status": "pending"},
        max_concurrency=concurrency,
        dry_run=dry_run,
        progress_interval=5.0,
    )
    # Each run is its own DAG run: its own logical date, so its own idempotency keys.
    logical_date = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc) + dt.timedelta(
        days=sum(map(ord, run_id)) % 997
    )
    started = time.perf_counter()
    result = operator.execute(context(run_id, logical_date))  # type: ignore[arg-type]
    return time.perf_counter() - started, result


def specs_for(first: int, count: int, period: dict[str, str]) -> list[dict[str, Any]]:
    from enlivy_provider.emulator import seed

    return [
        {
            "customer": bench_customer(i),
            "line_items": [
                {"product_id": seed.DEMO_PRODUCTS[0].id, "quantity": 1},
                {"product_id": seed.DEMO_PRODUCTS[1].id, "quantity": f"{i}.5"},
            ],
            "billing_period": period,
        }
        for i in range(first, first + count)
    ]


def duplicates(invoices: list[dict[str, Any]]) -> int:
    pairs: Counter[tuple[str, str, str]] = Counter()
    for invoice in invoices:
        if invoice.get("deleted_at"):
            continue
        periods = {
            (str(li.get("billing_period_started_at")), str(li.get("billing_period_ended_at")))
            for li in invoice.get("line_items") or []
            if li.get("has_billing_period")
        }
        for start, end in periods:
            pairs[(invoice["organization_receiver_user_id"], start, end)] += 1
    return sum(n - 1 for n in pairs.values() if n > 1)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000, help="invoices created with max_concurrency=16")
    parser.add_argument(
        "--sequential-count", type=int, default=100, help="invoices of the sequential baseline"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="  %(message)s")
    for noisy in ("urllib3", "httpx", "airflow", "airflow.sdk.bases.operator"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("airflow.task.operators").setLevel(logging.INFO)

    from enlivy_provider.testing import run_emulator

    with run_emulator(latency_ms=args.latency_ms) as emulator:
        emulator.reset(extra_customers=max(args.count, args.sequential_count))
        emulator.configure(latency_ms=args.latency_ms)
        os.environ["AIRFLOW_CONN_ENLIVY_DEFAULT"] = emulator.connection_json()
        concurrent_specs = specs_for(1, args.count, OCTOBER)
        sequential_specs = specs_for(1, args.sequential_count, SEPTEMBER)

        print(f"emulator latency {args.latency_ms} ms per request; {args.count} concurrent, "
              f"{args.sequential_count} sequential invoices")  # fmt: skip
        fixed_conc, _ = execute(concurrent_specs, args.concurrency, "dry-conc", dry_run=True)
        fixed_seq, _ = execute(sequential_specs, 1, "dry-seq", dry_run=True)
        print(f"validation reads (dry_run): {fixed_conc:.2f}s for {args.count}, {fixed_seq:.2f}s for "
              f"{args.sequential_count}")  # fmt: skip

        conc_s, conc = execute(concurrent_specs, args.concurrency, "run-concurrent")
        print(f"max_concurrency={args.concurrency}: {len(conc['created'])} created in {conc_s:.2f}s")
        seq_s, seq = execute(sequential_specs, 1, "run-sequential")
        print(f"max_concurrency=1: {len(seq['created'])} created in {seq_s:.2f}s")
        rerun_s, rerun = execute(concurrent_specs, args.concurrency, "run-concurrent-later")
        print(f"re-run of the same period: {len(rerun['created'])} created, {len(rerun['existing'])} already existed "
              f"in {rerun_s:.2f}s")  # fmt: skip

        invoices = emulator.invoices()
        dupes = duplicates(invoices)
        expected = args.count + args.sequential_count
        live = [i for i in invoices if not i.get("deleted_at")]

    per_conc, per_seq = conc_s / args.count, seq_s / args.sequential_count
    ratio = per_seq / per_conc
    write_conc = max(conc_s - fixed_conc, 1e-9) / args.count
    write_seq = max(seq_s - fixed_seq, 1e-9) / args.sequential_count
    write_ratio = write_seq / write_conc
    print()
    print(f"per invoice: sequential {per_seq * 1000:.1f} ms, concurrent {per_conc * 1000:.1f} ms")
    print(f"ratio (end to end, per invoice):  {ratio:.1f}x")
    print(f"ratio (writes only, per invoice): {write_ratio:.1f}x")
    if args.sequential_count != args.count:
        print(f"(sequential baseline measured on {args.sequential_count} invoices, compared per invoice)")
    print(f"invoices in the emulator: {len(live)} (expected {expected}); duplicates found: {dupes}")
    ok = (
        ratio >= TARGET_RATIO
        and dupes == 0
        and len(live) == expected
        and not conc["failed"]
        and not seq["failed"]
    )
    print(f"target >= {TARGET_RATIO:.0f}x and 0 duplicates: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
