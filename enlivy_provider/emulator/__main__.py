"""``python -m enlivy_provider.emulator``: run the Enlivy API emulator (uvicorn) in the foreground."""

from __future__ import annotations

import argparse
import sys

from enlivy_provider.emulator import seed as demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m enlivy_provider.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    parser.add_argument("--db", default=None, help="SQLite file; in memory when omitted")
    parser.add_argument("--seed", choices=("demo", "none"), default="demo", help="data set to start with")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every API request")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests/second before 429")
    parser.add_argument(
        "--auto-pay-after", type=float, default=None, help="pending/sent invoices become paid after N s"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import uvicorn

    from enlivy_provider.emulator.app import create_app
    from enlivy_provider.emulator.seeding import apply_seed
    from enlivy_provider.emulator.state import EmulatorConfig, EmulatorState
    from enlivy_provider.emulator.store import Store

    store = Store(args.db)
    has_data = bool(store.list_records("organization"))
    if not (args.db and has_data):  # a --db file that already holds data is kept as it is
        apply_seed(store, args.seed)
    config = EmulatorConfig(
        latency_ms=args.latency_ms, rate_limit=args.rate_limit, auto_pay_after=args.auto_pay_after
    )
    app = create_app(EmulatorState(store, config))
    base_url = f"http://{args.host}:{args.port}"
    print(f"Enlivy API emulator on {base_url}", flush=True)
    if args.seed == "demo" or has_data:
        print(f"  demo organization id: {demo.DEMO_ORG_ID}", flush=True)
        print(f"  demo API token:       {demo.DEMO_TOKEN}", flush=True)
        print(f"  login:                {demo.DEMO_LOGIN_EMAIL} / {demo.DEMO_LOGIN_PASSWORD}", flush=True)
    print(f"  admin:                {base_url}/_emulator/health", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
        proxy_headers=False,
        server_header=False,
        # Idle connections stay open 75 s (nginx's default) instead of uvicorn's 5 s. A client that reuses a
        # pooled connection at the moment the server closes it gets "connection reset"; with 5 s, a caller
        # pausing a few seconds between bursts of requests (as the tests and benchmarks do) hit that race.
        timeout_keep_alive=75,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
