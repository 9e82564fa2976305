"""Reconciliation of N invoices against N expected rows: memory, list calls and time per invoice.

    .venv/bin/python benchmarks/bench_reconcile.py                 # 10,000 and 100,000 (about 10 minutes)
    .venv/bin/python benchmarks/bench_reconcile.py --sizes 1000 5000 --rounds 4

For each size: reset the emulator, create N October invoices with its bulk admin endpoint (billing key
``bench-{i}``, 119.00 EUR, cycling through the demo customers), write the N matching expected rows to a CSV file,
then, in a fresh subprocess (the emulator is a process of its own, so its memory is never counted):

* time, alternating so that a machine getting busier or quieter mid-run weighs on both alike: a plain paginated
  read of the invoices (``iter_period_invoices``: the operator's own listing, same filters and page size, through
  an ``EnlivyClient`` of the same connection, nothing done with them), then ``EnlivyReconcileInvoicesOperator
  .execute`` (CSV report to a ``file://`` path), then the reconcile again, then the plain read again — that is
  one round; ``--rounds`` repeats it. The ratio is total reconcile time / total plain-read time. The CPU time of
  the reconciling process is printed next to each (the emulator's share of the wall time is not in it), and so
  is the time of checking and indexing the expected rows alone (the part done before the first request);
* the emulator's list calls of each reconcile;
* peak RSS of the reconcile: the kernel's high-water mark (``VmHWM``) is reset (``/proc/self/clear_refs``)
  right before each reconcile and read right after it, so the plain reads never count; the highest of the runs
  is printed, next to the RSS before the first one (the baseline: Python, Airflow and the provider imported).

Both sizes run exactly the same steps. Goals: peak(100k) / peak(10k) <= 1.2; list calls = ceil(N / 50);
reconcile time <= 1.3 x the plain read's.
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
WINDOW = ("2026-10-01", "2026-12-15")  # the operator's default for October: the period plus 45 days


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs sets VmHWM back to the current RSS."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
        clear_refs.write("5")


def _timed(action: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = action()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def child(base_url: str, expected_csv: str, report: str, rounds: int) -> None:
    import datetime as dt

    from airflow.sdk import ObjectStoragePath

    from enlivy_provider.hooks.enlivy import EnlivyHook
    from enlivy_provider.invoices.billing_period import BillingPeriod
    from enlivy_provider.invoices.expected_index import ExpectedIndex
    from enlivy_provider.invoices.reconcile import index_expected
    from enlivy_provider.operators.reconcile import (
        EnlivyReconcileInvoicesOperator,
        iter_period_invoices,
        load_expected_rows,
    )
    from enlivy_provider.testing import EmulatorHandle

    emulator = EmulatorHandle(base_url)
    october = {"start": "2026-10-01", "end": "2026-10-31"}
    operator = EnlivyReconcileInvoicesOperator(
        task_id="bench_reconcile",
        expected=f"file://{expected_csv}",
        billing_period=october,
        reference_date="2026-11-01",
        report_path=f"file://{report}",
        fail_on=(),
        page_size=PAGE_SIZE,
    )
    client = EnlivyHook().get_client()
    client.get_organization()  # connection and session warmed up
    ObjectStoragePath(f"file://{report}").parent.exists()  # the file system layer loaded once
    window = tuple(dt.date.fromisoformat(day) for day in WINDOW)

    def plain_read() -> int:
        return sum(1 for _ in iter_period_invoices(client, window[0], window[1], PAGE_SIZE))

    def reconcile() -> dict[str, Any]:
        before = emulator.counters()["routes"].get(LIST_ROUTE, 0)
        _reset_peak_rss()
        summary: dict[str, Any] = operator.execute({})  # type: ignore[arg-type]
        summary["peak_kib"] = _proc_status_kib("VmHWM")
        summary["list_calls"] = emulator.counters()["routes"].get(LIST_ROUTE, 0) - before
        return summary

    def index_only() -> int:
        period = BillingPeriod(dt.date(2026, 10, 1), dt.date(2026, 10, 31))
        with ExpectedIndex() as index:
            index_expected(load_expected_rows(operator.expected), index, default_period=period)
            return index.count

    baseline = _proc_status_kib("VmRSS")
    plain: list[dict[str, Any]] = []
    reconciles: list[dict[str, Any]] = []
    for round_number in range(rounds):
        order = ("plain", "reconcile") if round_number % 2 == 0 else ("reconcile", "plain")
        for step in order:
            if step == "plain":
                count, wall, cpu = _timed(plain_read)
                plain.append({"read": count, "seconds": wall, "cpu": cpu})
            else:
                summary, wall, cpu = _timed(reconcile)
                reconciles.append(
                    {
                        "read": summary["invoices_read"],
                        "counts": summary["counts"],
                        "list_calls": summary["list_calls"],
                        "peak_kib": summary["peak_kib"],
                        "window": [summary["issued_from"], summary["issued_to"]],
                        "seconds": wall,
                        "cpu": cpu,
                    }
                )
    indexed, index_seconds, _cpu = _timed(index_only)
    print(
        json.dumps(
            {"baseline_kib": baseline, "plain": plain, "reconcile": reconciles, "indexed": indexed,
             "index_seconds": index_seconds}
        )
    )  # fmt: skip


def run_child(
    emulator: Any, expected_csv: str, report: str, airflow_home: str, rounds: int
) -> dict[str, Any]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": airflow_home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_ENLIVY_DEFAULT": emulator.connection_json(),
    }
    command = [sys.executable, __file__, "--child", emulator.base_url, expected_csv, report, str(rounds)]
    process = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if process.returncode != 0:
        raise SystemExit(f"reconcile child failed with exit code {process.returncode}:\n{process.stdout}")
    result: dict[str, Any] = json.loads(process.stdout.strip().splitlines()[-1])
    return result


def _check(size: int, result: dict[str, Any]) -> None:
    runs = result["reconcile"]
    wrong = [
        run
        for run in runs
        if run["read"] != size or any(run["counts"].values()) or tuple(run["window"]) != WINDOW
    ]
    wrong += [run for run in result["plain"] if run["read"] != size]
    if wrong or result["indexed"] != size:
        raise SystemExit(f"unexpected outcome at {size}: {result}")


def _line(size: int, result: dict[str, Any]) -> str:
    runs, plain = result["reconcile"], result["plain"]
    reconcile_s = sum(run["seconds"] for run in runs) / len(runs)
    plain_s = sum(run["seconds"] for run in plain) / len(plain)
    reconcile_cpu = sum(run["cpu"] for run in runs) / len(runs)
    plain_cpu = sum(run["cpu"] for run in plain) / len(plain)
    calls = sorted({run["list_calls"] for run in runs})
    peak = max(run["peak_kib"] for run in runs) / 1024
    baseline = result["baseline_kib"] / 1024
    return (
        f"{size:>7,} invoices, {len(runs)} reconciles / {len(plain)} plain reads: "
        f"reconcile {reconcile_s:6.1f} s ({reconcile_s / size * 1e6:5.0f} us/invoice, "
        f"CPU {reconcile_cpu / size * 1e6:4.0f}), plain read {plain_s:6.1f} s "
        f"({plain_s / size * 1e6:5.0f} us/invoice, CPU {plain_cpu / size * 1e6:4.0f}), "
        f"ratio {reconcile_s / plain_s:.2f} (goal <= 1.3); indexing the expected rows alone "
        f"{result['index_seconds']:.1f} s; list calls {'/'.join(map(str, calls))} "
        f"(ceil(N/{PAGE_SIZE}) = {math.ceil(size / PAGE_SIZE)}); peak RSS {peak:.1f} MiB "
        f"(baseline {baseline:.1f}, +{peak - baseline:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--rounds", type=int, default=2, help="plain/reconcile pairs per size, order alternating (default 2)"
    )
    parser.add_argument(
        "--child", nargs=4, metavar=("BASE_URL", "EXPECTED", "REPORT", "ROUNDS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child[:3], int(args.child[3]))
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
            load_before = os.getloadavg()[0]
            result = run_child(
                emulator,
                str(expected),
                str(Path(tmp) / f"report-{size}.csv"),
                str(Path(tmp) / "af"),
                args.rounds,
            )
            _check(size, result)
            results[size] = result
            # On a shared machine, other processes' load weighs on both timings; say how busy it was.
            load = f"; load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
            print(_line(size, result) + load, flush=True)
    small, large = min(results), max(results)
    if small != large:
        peaks = {size: max(run["peak_kib"] for run in results[size]["reconcile"]) for size in (small, large)}
        print(f"peak RSS ratio {large:,} / {small:,}: {peaks[large] / peaks[small]:.3f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
