"""GET throughput of EnlivyHook vs a raw requests.Session vs Airflow's HttpHook, against the emulator.

All three fetch the same invoice (GET /organizations/{org}/invoices/{id}) and decode the JSON body. They run
in interleaved rounds (order rotated every round) in one process against one emulator, so drift in machine
load hits all of them alike. Targets: EnlivyHook >= 0.90x raw Session and >= 1.10x HttpHook.

    .venv/bin/python benchmarks/bench_client.py [--rounds 7] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

# Airflow reads its home at import time: keep the benchmark away from ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="enlivy-bench-"))

import requests

from enlivy_provider.testing import run_emulator

TARGET_VS_RAW = 0.90
TARGET_VS_HTTPHOOK = 1.10


def contenders(handle: Any, invoice_id: str) -> dict[str, Callable[[], Any]]:
    from airflow.providers.http.hooks.http import HttpHook

    from enlivy_provider.hooks.enlivy import EnlivyHook

    path = f"/organizations/{handle.org_id}/invoices/{invoice_id}"
    os.environ["AIRFLOW_CONN_ENLIVY_DEFAULT"] = handle.connection_json()
    os.environ["AIRFLOW_CONN_ENLIVY_HTTP"] = json.dumps(
        {
            "conn_type": "http",
            "host": handle.base_url,
            # HttpHook sends the connection's extra as request headers.
            "extra": {"Authorization": f"Bearer {handle.token}", "Accept": "application/json"},
        }
    )

    enlivy_hook = EnlivyHook()

    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {handle.token}", "Accept": "application/json"})
    raw_url = handle.base_url + path

    http_hook = HttpHook(method="GET", http_conn_id="enlivy_http")

    return {
        "EnlivyHook": lambda: enlivy_hook.get_invoice(invoice_id),
        "requests.Session": lambda: session.get(raw_url, timeout=(10, 30)).json(),
        "HttpHook": lambda: http_hook.run(path).json(),
    }


def timed(call: Callable[[], Any], requests_per_round: int) -> float:
    started = time.perf_counter()
    for _ in range(requests_per_round):
        call()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300, help="requests per contender per round")
    args = parser.parse_args()

    with run_emulator() as handle:
        from enlivy_provider.client import EnlivyClient
        from enlivy_provider.emulator.seed import DEMO_CUSTOMERS

        with EnlivyClient(handle.base_url, handle.token, organization_id=handle.org_id) as setup:
            invoice = setup.create_invoice(
                {
                    "organization_receiver_user_id": DEMO_CUSTOMERS[0].id,
                    "status": "pending",
                    "currency": "EUR",
                    "payment_method": "bank_transfer",
                    "delivery_method": "email",
                    "line_items": [{"name_lang_map": {"en": "Benchmark"}, "quantity": 1, "price": "10.00"}],
                }
            )
        calls = contenders(handle, invoice["id"])
        for call in calls.values():  # warm up: connections, connection lookups, imports
            for _ in range(20):
                call()

        rates: dict[str, list[float]] = {name: [] for name in calls}
        names = list(calls)
        for round_number in range(args.rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                rates[name].append(args.requests / timed(calls[name], args.requests))

    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"GET one invoice, {args.rounds} interleaved rounds x {args.requests} requests, median req/s:")
    for name, value in median.items():
        spread = f"{min(rates[name]):.0f}-{max(rates[name]):.0f}"
        print(f"  {name:<17} {value:8.0f} req/s   (rounds: {spread})")
    vs_raw = median["EnlivyHook"] / median["requests.Session"]
    vs_http = median["EnlivyHook"] / median["HttpHook"]
    print(f"EnlivyHook / requests.Session = {vs_raw:.2f}x  (target >= {TARGET_VS_RAW:.2f}x)")
    print(f"EnlivyHook / HttpHook         = {vs_http:.2f}x  (target >= {TARGET_VS_HTTPHOOK:.2f}x)")
    met = vs_raw >= TARGET_VS_RAW and vs_http >= TARGET_VS_HTTPHOOK
    print("targets met" if met else "TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
