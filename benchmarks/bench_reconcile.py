"""Reconciliation of N invoices against N expected rows: memory, list calls and time per invoice.

    .venv/bin/python benchmarks/bench_reconcile.py                 # 10,000 and 100,000 (a few minutes)
    .venv/bin/python benchmarks/bench_reconcile.py --sizes 1000 5000

For each size: reset the emulator, create N October invoices with its bulk admin endpoint (billing key
``bench-{i}``, 119.00 EUR, cycling through the demo customers), write the N matching expected rows to a CSV file,
then, in a fresh subprocess: run ``EnlivyReconcileInvoicesOperator.execute`` (CSV report to a ``file://`` path),
count the emulator's list calls it made, then read the same invoices with a plain paginated
``client.list_invoices`` (same filters, nothing done with them) as the baseline of time per invoice.
Peak RSS of the child is ``VmHWM``. Goals: peak(100k) / peak(10k) <= 1.2; list calls = ceil(N / 50);
reconcile time per invoice <= 1.3 x the plain read's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PAGE_SIZE = 50
LIST_ROUTE = "GET /organizations/{org}/invoices"
PERIOD = {"billing_period_start": "2026-10-01", "billing_period_end": "2026-10-31"}


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(base_url: str, expected_csv: str, report: str) -> None:
    from enlivy_provider.hooks.enlivy import EnlivyHook
    from enlivy_provider.operators.reconcile import EnlivyReconcileInvoicesOperator, iter_period_invoices
    from enlivy_provider.testing import EmulatorHandle

    emulator = EmulatorHandle(base_url)
    operator = EnlivyReconcileInvoicesOperator(
        task_id="bench_reconcile",
        expected=f"file://{expected_csv}",
        billing_period={"start": "2026-10-01", "end": "2026-10-31"},
        reference_date="2026-11-01",
        report_path=f"file://{report}",
        fail_on=(),
        page_size=PAGE_SIZE,
    )
    client = EnlivyHook().get_client()
    client.get_organization()  # connection and session warmed up
    baseline = _proc_status_kib("VmRSS")
    before = emulator.counters()["routes"].get(LIST_ROUTE, 0)
    started = time.perf_counter()
    summary = operator.execute({})  # type: ignore[arg-type]
    reconcile_seconds = time.perf_counter() - started
    list_calls = emulator.counters()["routes"].get(LIST_ROUTE, 0) - before
    peak = _proc_status_kib("VmHWM")
    started = time.perf_counter()
    plain = sum(1 for _ in iter_period_invoices(client, *_window(summary), PAGE_SIZE))
    plain_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "read": summary["invoices_read"],
                "counts": summary["counts"],
                "list_calls": list_calls,
                "reconcile_seconds": reconcile_seconds,
                "plain_read": plain,
                "plain_seconds": plain_seconds,
                "baseline_kib": baseline,
                "peak_kib": peak,
            }
        )
    )


def _window(summary: dict[str, Any]) -> tuple[Any, Any]:
    import datetime as dt

    return dt.date.fromisoformat(summary["issued_from"]), dt.date.fromisoformat(summary["issued_to"])


def run_child(emulator: Any, expected_csv: str, report: str, airflow_home: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": airflow_home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_ENLIVY_DEFAULT": emulator.connection_json(),
    }
    command = [sys.executable, __file__, "--child", emulator.base_url, expected_csv, report]
    process = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if process.returncode != 0:
        raise SystemExit(f"reconcile child failed with exit code {process.returncode}:\n{process.stdout}")
    result: dict[str, Any] = json.loads(process.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--child", nargs=3, metavar=("BASE_URL", "EXPECTED", "REPORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from enlivy_provider.emulator import seed
    from enlivy_provider.testing import run_emulator

    customers = [c.id for c in seed.DEMO_CUSTOMERS]
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp, run_emulator(seed="demo") as emulator:
        for size in args.sizes:
            emulator.reset()
            emulator.bulk_invoices(
                size,
                customer_ids=customers,
                billing_key="bench-{i}",
                issued_at="2026-11-01",
                due_at="2026-11-15",
                **PERIOD,
            )
            expected = Path(tmp) / f"expected-{size}.csv"
            with expected.open("w", encoding="utf-8") as handle:
                handle.write("customer_id,billing_key,period_start,period_end,total,currency\n")
                for i in range(size):
                    handle.write(
                        f"{customers[i % len(customers)]},bench-{i},2026-10-01,2026-10-31,119.00,EUR\n"
                    )
            result = run_child(
                emulator, str(expected), str(Path(tmp) / f"report-{size}.csv"), str(Path(tmp) / "af")
            )
            if result["read"] != size or result["plain_read"] != size or any(result["counts"].values()):
                raise SystemExit(f"unexpected outcome at {size}: {result}")
            results[size] = result
            ratio = result["reconcile_seconds"] / result["plain_seconds"]
            print(
                f"{size:>7,} invoices: reconcile {result['reconcile_seconds']:6.1f} s "
                f"({result['reconcile_seconds'] / size * 1e6:6.0f} us/invoice), plain read "
                f"{result['plain_seconds']:6.1f} s ({result['plain_seconds'] / size * 1e6:6.0f} us/invoice), "
                f"ratio {ratio:.2f} (goal <= 1.3); list calls {result['list_calls']} "
                f"(ceil(N/{PAGE_SIZE}) = {math.ceil(size / PAGE_SIZE)}); peak RSS {result['peak_kib'] / 1024:.1f} MiB, "
                f"baseline {result['baseline_kib'] / 1024:.1f} MiB",
                flush=True,
            )
    small, large = min(results), max(results)
    if small != large:
        ratio = results[large]["peak_kib"] / results[small]["peak_kib"]
        print(f"peak RSS ratio {large:,} / {small:,}: {ratio:.3f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
