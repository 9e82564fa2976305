"""1,000 deferred sensors' triggers in one event loop (one triggerer): shared poller vs polling alone.

Each trigger waits for one pending invoice, as 1,000 billing runs waiting for payment would. Both modes run
the real EnlivyInvoiceStatusTrigger in one asyncio loop against the emulator over HTTP, one after the other:

- shared: ``share_poller=True`` (the default): one poller per (connection, interval, backoff cap) reads the
  ids of every trigger in list calls of up to 30 ids. Goal: ceil(1000 / 30) = 34 list calls per interval.
- alone: ``share_poller=False``: every trigger polls for itself (the behaviour before the shared poller):
  1,000 list calls per interval.

Every trigger checks once per interval. After each trigger's first check (the start-up: measured apart,
as "CPU s, first checks"), the emulator's counters are reset and ``--rounds`` intervals are measured: the
request log says how often each invoice was asked for, so rounds = reads / triggers and list calls per
interval = calls / rounds, whatever the triggers' phases. CPU is this process's CPU time over the window
(the triggerer's side; the emulator runs in its own process) divided by the rounds. The triggers' INFO line
per check (the same in both modes) is switched off, so the figures are the polling's. A warm-up trigger
runs first: a running triggerer has the imports and the first connection lookup behind it.

    .venv/bin/python benchmarks/bench_trigger_poller.py [--triggers 1000] [--interval 10] [--rounds 3]
        [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qsl

# Airflow reads its home and logging level at import time: keep the benchmark away from ~/airflow, and
# leave out the INFO line each trigger logs per check (the same in both modes), so the figures are polling's.
# ERROR also hides the client's retry warnings: polling alone, 1,000 first checks at once time out while
# connecting and are retried (set AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING to see them).
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="enlivy-bench-"))
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")

from enlivy_provider.invoice_status import MAX_IDS_PER_CALL
from enlivy_provider.testing import EmulatorHandle, run_emulator

LIST_ROUTE = "/organizations/{org}/invoices"


@dataclass
class Result:
    mode: str
    calls_per_round: float
    cpu_per_round: float
    cpu_start: float
    wall_per_round: float


def reads_of_each_invoice(handle: EmulatorHandle) -> tuple[int, Counter[str]]:
    """(list calls, how often each invoice id was asked for) since the counters were last reset."""
    calls = handle.request_log("GET", LIST_ROUTE)
    ids = [dict(parse_qsl(call["query"])).get("ids", "").split(",") for call in calls]
    if any(len(call) > MAX_IDS_PER_CALL for call in ids):
        raise SystemExit("a list call carried more than 30 ids")
    return len(calls), Counter(invoice_id for call in ids for invoice_id in call)


async def run_triggers(
    handle: EmulatorHandle, ids: list[str], *, share: bool, interval: float, rounds: int
) -> Result:
    """Start one trigger per id; once each invoice has been read, measure ``rounds`` intervals; cancel all."""
    from enlivy_provider.triggers.invoice_status import EnlivyInvoiceStatusTrigger

    handle.reset_counters()
    started_cpu = time.process_time()
    triggers = [
        EnlivyInvoiceStatusTrigger(invoice_ids=[invoice_id], poll_interval=interval, share_poller=share)
        for invoice_id in ids
    ]
    waits = [asyncio.create_task(anext(trigger.run())) for trigger in triggers]
    # Start-up: every trigger's first check. Watched once a second (the only requests this process makes
    # besides the triggers', and none inside the measured window).
    while len((await asyncio.to_thread(reads_of_each_invoice, handle))[1]) < len(ids):
        await asyncio.sleep(1.0)
    cpu_start = time.process_time() - started_cpu
    await asyncio.to_thread(handle.reset_counters)
    window_cpu, window_wall = time.process_time(), time.perf_counter()
    await asyncio.sleep(interval * rounds)
    window_cpu, window_wall = time.process_time() - window_cpu, time.perf_counter() - window_wall
    calls, reads = await asyncio.to_thread(reads_of_each_invoice, handle)
    for wait in waits:  # as Airflow cancels triggers; each leaves its poller (or closes its own client)
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    # Each trigger checks once per interval: a round = every invoice read once. The triggers' phases differ
    # (polling alone, each started when its own first check ended), so count rounds from the reads.
    read_rounds = sum(reads.values()) / len(ids)
    mode = "shared poller (default)" if share else "alone (share_poller=False)"
    return Result(mode, calls / read_rounds, window_cpu / read_rounds, cpu_start, window_wall / read_rounds)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--triggers", type=int, default=1000, help="deferred sensors, one invoice each")
    parser.add_argument("--interval", type=float, default=10.0, help="poke_interval / poll_interval, seconds")
    parser.add_argument("--rounds", type=int, default=3, help="intervals measured after the start-up")
    parser.add_argument("--latency-ms", type=int, default=50, help="emulator latency per request")
    args = parser.parse_args()

    with run_emulator(latency_ms=args.latency_ms) as handle:
        os.environ["AIRFLOW_CONN_ENLIVY_DEFAULT"] = handle.connection_json()
        handle.bulk_invoices(args.triggers, status="pending")
        ids = [invoice["id"] for invoice in handle.invoices()]
        # Warm-up: the imports and the first connection lookup, which a running triggerer has behind it.
        asyncio.run(run_triggers(handle, ids[:1], share=True, interval=0.5, rounds=1))
        results = [
            asyncio.run(run_triggers(handle, ids, share=share, interval=args.interval, rounds=args.rounds))
            for share in (True, False)
        ]

    goal = math.ceil(args.triggers / MAX_IDS_PER_CALL)
    print(
        f"{args.triggers} triggers x 1 pending invoice in one event loop; measured over {args.rounds} x "
        f"{args.interval:g} s after every trigger's first check; emulator latency {args.latency_ms} ms"
    )
    header = ("mode", "list calls / interval", "CPU s / interval", "CPU s, first checks")
    print(f"{header[0]:<28} {header[1]:>22} {header[2]:>17} {header[3]:>20}")
    for r in results:
        print(f"{r.mode:<28} {r.calls_per_round:>22.1f} {r.cpu_per_round:>17.3f} {r.cpu_start:>20.2f}")
    shared, alone = results
    met = shared.calls_per_round <= goal
    print(
        f"goal: ceil({args.triggers}/{MAX_IDS_PER_CALL}) = {goal} list calls per interval -> "
        f"{'met' if met else 'MISSED'}; {alone.calls_per_round / shared.calls_per_round:.1f}x fewer calls and "
        f"{alone.cpu_per_round / max(shared.cpu_per_round, 1e-9):.1f}x less CPU per interval than polling alone"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
