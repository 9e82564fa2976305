"""Peak memory of the invoice export at 10,000 and 100,000 invoices: constant memory means a ratio near 1.

    .venv/bin/python benchmarks/bench_export.py                 # 10,000 and 100,000 (about 2-3 minutes)
    .venv/bin/python benchmarks/bench_export.py --sizes 1000 5000

For each size: reset the emulator, create the invoices with its bulk admin endpoint, then run
``EnlivyExportInvoicesOperator.execute`` in a fresh subprocess (connection from ``AIRFLOW_CONN_ENLIVY_DEFAULT``,
output to a temporary ``file://`` destination). Each child's peak RSS is read twice: by the child from
``/proc/self/status`` (``VmHWM``) and by the kernel's accounting of that one child (``os.wait4`` →
``ru_maxrss``). The baseline is the child's RSS after importing Airflow and the provider, before exporting.
Target: peak(100k) / peak(10k) <= 1.2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

TARGET_RATIO = 1.2


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(destination: str, updated_from: str, updated_to: str) -> None:
    """Run one export in this process and print its measurements as JSON on the last line."""
    from enlivy_provider.hooks.enlivy import EnlivyHook
    from enlivy_provider.operators.export import EnlivyExportInvoicesOperator

    operator = EnlivyExportInvoicesOperator(
        task_id="bench_export", destination=destination, updated_from=updated_from, updated_to=updated_to
    )
    EnlivyHook().get_client().get_organization()  # connection, client and TLS-free session warmed up
    baseline = _proc_status_kib("VmRSS")
    started = time.perf_counter()
    summary = operator.execute({})  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    sizes = {
        fmt: sum(
            os.path.getsize(url.removeprefix("file://"))
            for p in summary["partitions"]
            for f, url in p["files"].items()
            if f == fmt
        )
        for fmt in ("jsonl", "csv")
    }
    print(
        json.dumps(
            {
                "invoices": summary["invoices"],
                "seconds": round(seconds, 1),
                "baseline_kib": baseline,
                "peak_kib": _proc_status_kib("VmHWM"),
                "bytes": sizes,
            }
        )
    )


def run_child(
    connection_json: str, destination: str, window: tuple[str, str], airflow_home: str
) -> dict[str, Any]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": airflow_home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_ENLIVY_DEFAULT": connection_json,
    }
    command = [sys.executable, __file__, "--child", destination, *window]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"export child failed with exit code {process.returncode}:\n{output}")
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result["wait4_maxrss_kib"] = usage.ru_maxrss  # KiB on Linux
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", nargs=3, metavar=("DESTINATION", "FROM", "TO"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    import requests

    from enlivy_provider.testing import run_emulator

    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    # Two days, so a run across midnight UTC still exports every invoice it created.
    window = ((today - timedelta(days=1)).isoformat(), (today + timedelta(days=1)).isoformat())
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp, run_emulator(seed="demo") as emulator:
        for size in args.sizes:
            emulator.reset()
            started = time.perf_counter()
            for offset in range(0, size, 50_000):
                response = requests.post(
                    f"{emulator.base_url}/_emulator/bulk-invoices",
                    json={"count": min(50_000, size - offset)},
                    timeout=600,
                )
                response.raise_for_status()
            created = time.perf_counter() - started
            destination = f"file://{Path(tmp) / f'export-{size}'}"
            result = run_child(emulator.connection_json(), destination, window, str(Path(tmp) / "airflow"))
            if result["invoices"] != size:
                raise SystemExit(f"exported {result['invoices']} invoices, expected {size}")
            results[size] = result
            print(
                f"{size:>7,} invoices: created in {created:5.1f} s, exported in {result['seconds']:6.1f} s; "
                f"peak RSS {result['peak_kib'] / 1024:6.1f} MiB (VmHWM), "
                f"{result['wait4_maxrss_kib'] / 1024:6.1f} MiB (wait4); "
                f"baseline before export {result['baseline_kib'] / 1024:6.1f} MiB; "
                f"files {result['bytes']['jsonl'] / 1e6:.1f} MB jsonl + {result['bytes']['csv'] / 1e6:.1f} MB csv",
                flush=True,
            )
    small, large = min(results), max(results)
    if small == large:
        return
    ratio = results[large]["peak_kib"] / results[small]["peak_kib"]
    growth_small = results[small]["peak_kib"] - results[small]["baseline_kib"]
    growth_large = results[large]["peak_kib"] - results[large]["baseline_kib"]
    print(
        f"peak RSS ratio {large:,} / {small:,} invoices: {ratio:.3f} (target <= {TARGET_RATIO}); "
        f"growth over baseline during the export: {growth_small / 1024:.1f} MiB vs {growth_large / 1024:.1f} MiB"
    )
    if ratio > TARGET_RATIO:
        raise SystemExit(f"peak RSS ratio {ratio:.3f} is above the target {TARGET_RATIO}")


if __name__ == "__main__":
    main()
