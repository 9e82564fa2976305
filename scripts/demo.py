"""``make demo``: bill last month with the example DAGs against a local Enlivy emulator, close it, export.

1. starts the emulator (demo seed; nobody pays unless ``--auto-pay-after`` says so) with its data in
   ``.demo/emulator.db``, so a second ``make demo`` sees the first one's invoices;
2. sets up an Airflow home in ``.demo/airflow`` (SQLite) and the ``enlivy_default`` connection
   (``AIRFLOW_CONN_ENLIVY_DEFAULT``);
3. ``airflow dags test enlivy_recurring_billing <first day of this month>``: bills last month;
4. ``airflow dags test enlivy_month_end <the 4th of this month, 06:00>``: closes last month (reconciles it,
   e-mails the invoices, charges the stored card, reminds overdue invoices);
5. ``airflow dags test enlivy_invoice_export <tomorrow>``: exports the invoices updated today;
6. prints the billing and month-end summaries, where the files are, and the number of invoices, e-mails and
   charges in the emulator (run it twice: the numbers do not change), then stops the emulator.

Task logs go to ``.demo/logs/``. ``--fresh`` deletes ``.demo`` first; ``--dir`` puts it elsewhere (the test of
``make demo`` runs it in a temporary directory).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pendulum

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
BILLING_DAG = "enlivy_recurring_billing"
MONTH_END_DAG = "enlivy_month_end"
EXPORT_DAG = "enlivy_invoice_export"
TIMEZONE = "Europe/Berlin"  # the billing DAG's time zone


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def airflow(args: list[str], env: dict[str, str], log: Path) -> float:
    """Run ``python -m airflow ...`` with its output in ``log``; exit with the log's tail when it fails."""
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        result = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        sys.exit(f"`airflow {' '.join(args)}` failed (exit {result.returncode}); full log: {log}")
    return elapsed


def airflow_env(home: Path, reports: Path, export_dir: Path, payment_wait: float) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            # Poll for payments often and give up soon: the demo customers pay only with --auto-pay-after.
            "ENLIVY_PAYMENT_POKE_SECONDS": "1",
            "ENLIVY_PAYMENT_TIMEOUT_SECONDS": f"{payment_wait:g}",
            "ENLIVY_REPORT_DIR": str(reports),
            "ENLIVY_DEMO_EXPORT_DIR": str(export_dir),
        }
    )
    return env


def outbound_counts(emulator: Any) -> dict[str, int]:
    """Invoices (and how many are paid), e-mails and charges the emulator holds."""
    from enlivy_provider.client import EnlivyClient

    invoices = emulator.live_invoices()
    with EnlivyClient(emulator.base_url, emulator.token, organization_id=emulator.org_id) as client:
        charges = sum(1 for _ in client.list_charge_logs())
    return {
        "invoices": len(invoices),
        "paid": sum(1 for invoice in invoices if invoice.get("status") == "paid"),
        "e-mails": len(emulator.emails()),
        "charges": charges,
    }


def describe(counts: dict[str, int]) -> str:
    return (
        f"{counts['invoices']} invoices ({counts['paid']} paid), {counts['e-mails']} e-mails, "
        f"{counts['charges']} charges"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fresh", action="store_true", help="delete .demo first (new emulator data)")
    parser.add_argument(
        "--auto-pay-after",
        type=float,
        default=None,
        help="seconds until invoices get paid (default: nobody pays; the month-end DAG then has work)",
    )
    parser.add_argument(
        "--dir", type=Path, default=DEMO, help=f"where the demo keeps its data (default {DEMO})"
    )
    args = parser.parse_args()

    from enlivy_provider.testing import run_emulator

    started = time.monotonic()
    demo = args.dir.resolve()
    if args.fresh and demo.exists():
        shutil.rmtree(demo)
    home, logs, reports, export_dir = demo / "airflow", demo / "logs", demo / "reports", demo / "export"
    for path in (home, logs, reports, export_dir):
        path.mkdir(parents=True, exist_ok=True)
    # How long the billing run waits for payments: a few seconds when nobody pays, else enough to see it.
    payment_wait = 3.0 if args.auto_pay_after is None else args.auto_pay_after + 60
    env = airflow_env(home, reports, export_dir, payment_wait)

    # Last month in the billing DAG's time zone; a manual run bills the last whole month before its date.
    this_month = pendulum.now(TIMEZONE).start_of("month")
    last_month = this_month.subtract(months=1)
    # The month-end DAG's scheduled run of this month (06:00 on the 4th, Berlin) closes last month.
    closing = this_month.add(days=3, hours=6)
    tomorrow = pendulum.now("UTC").start_of("day").add(days=1)

    paying = "nobody pays" if args.auto_pay_after is None else f"auto-pay after {args.auto_pay_after:g} s"
    step(f"Emulator (demo seed, {paying}, data in {demo / 'emulator.db'})")
    with run_emulator(seed="demo", auto_pay_after=args.auto_pay_after, db=demo / "emulator.db") as emulator:
        env["AIRFLOW_CONN_ENLIVY_DEFAULT"] = emulator.connection_json()
        before = outbound_counts(emulator)
        print(f"    {emulator.base_url}  (before this run: {describe(before)})")

        step(f"Airflow home {home} (SQLite): airflow db migrate")
        seconds = airflow(["db", "migrate"], env, logs / "db-migrate.log")
        print(f"    done in {seconds:.0f} s")

        step(
            f"airflow dags test {BILLING_DAG} {this_month.to_iso8601_string()}  (bills {last_month:MMMM YYYY})"
        )
        seconds = airflow(
            ["dags", "test", BILLING_DAG, this_month.to_iso8601_string()], env, logs / "billing.log"
        )
        print(f"    done in {seconds:.0f} s, task logs: {logs / 'billing.log'}")

        step(
            f"airflow dags test {MONTH_END_DAG} {closing.to_iso8601_string()}  (closes {last_month:MMMM YYYY})"
        )
        seconds = airflow(
            ["dags", "test", MONTH_END_DAG, closing.to_iso8601_string()], env, logs / "month-end.log"
        )
        print(f"    done in {seconds:.0f} s, task logs: {logs / 'month-end.log'}")

        export_ran = (ROOT / "dags" / f"{EXPORT_DAG}.py").exists()
        if export_ran:
            step(f"airflow dags test {EXPORT_DAG} {tomorrow.to_date_string()}  (exports today's changes)")
            seconds = airflow(
                [
                    "dags",
                    "test",
                    EXPORT_DAG,
                    tomorrow.to_iso8601_string(),
                    "--conf",
                    f'{{"destination": "file://{export_dir}"}}',
                ],
                env,
                logs / "export.log",
            )
            print(f"    done in {seconds:.0f} s, task logs: {logs / 'export.log'}")
        else:
            step(f"dags/{EXPORT_DAG}.py not found: export skipped")

        after = outbound_counts(emulator)
        month = last_month.format("YYYY-MM")

    print()
    for summary, log in (
        (reports / f"billing-summary-{month}.txt", logs / "billing.log"),
        (reports / f"month-end-summary-{month}.txt", logs / "month-end.log"),
    ):
        print(summary.read_text(encoding="utf-8") if summary.exists() else f"(no {summary}; see {log})")
        print(f"Summary: {summary}\n")
    if export_ran:
        files = sorted(p for p in export_dir.rglob("*") if p.is_file())
        print(f"Export files ({export_dir}):")
        for path in files:
            print(f"    {path}  ({path.stat().st_size:,} bytes)")
    print(f"In the emulator: {describe(after)}; before this run: {describe(before)}.")
    print(
        "Run `make demo` again: the billing run finds last month's invoices and creates none, and the "
        "month-end run e-mails, reminds and charges nothing again."
    )
    print(f"make demo finished in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
