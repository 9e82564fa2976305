"""``make demo``: bill last month with the example DAGs against a local Enlivy emulator, then export.

1. starts the emulator (demo seed, invoices paid automatically a few seconds after they are issued) with its
   data in ``.demo/emulator.db``, so a second ``make demo`` sees the first one's invoices;
2. sets up an Airflow home in ``.demo/airflow`` (SQLite) and the ``enlivy_default`` connection
   (``AIRFLOW_CONN_ENLIVY_DEFAULT``);
3. ``airflow dags test enlivy_recurring_billing <first day of this month>``: bills last month;
4. ``airflow dags test enlivy_invoice_export <tomorrow>``: exports the invoices updated today;
5. prints the billing summary, where the files are, and the number of invoices in the emulator
   (run it twice: the number does not change), then stops the emulator.

Task logs go to ``.demo/logs/``. ``--fresh`` deletes ``.demo`` first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pendulum

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
BILLING_DAG = "enlivy_recurring_billing"
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


def airflow_env(home: Path, reports: Path, export_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            # The demo emulator pays invoices after a few seconds: poll often, give up after two minutes.
            "ENLIVY_PAYMENT_POKE_SECONDS": "2",
            "ENLIVY_PAYMENT_TIMEOUT_SECONDS": "120",
            "ENLIVY_REPORT_DIR": str(reports),
            "ENLIVY_DEMO_EXPORT_DIR": str(export_dir),
        }
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fresh", action="store_true", help="delete .demo first (new emulator data)")
    parser.add_argument("--auto-pay-after", type=float, default=3.0, help="seconds until invoices get paid")
    args = parser.parse_args()

    from enlivy_provider.testing import run_emulator

    started = time.monotonic()
    if args.fresh and DEMO.exists():
        shutil.rmtree(DEMO)
    home, logs, reports, export_dir = DEMO / "airflow", DEMO / "logs", DEMO / "reports", DEMO / "export"
    for path in (home, logs, reports, export_dir):
        path.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home, reports, export_dir)

    # Last month in the billing DAG's time zone; a manual run bills the last whole month before its date.
    this_month = pendulum.now(TIMEZONE).start_of("month")
    last_month = this_month.subtract(months=1)
    tomorrow = pendulum.now("UTC").start_of("day").add(days=1)

    step(f"Emulator (demo seed, auto-pay after {args.auto_pay_after:g} s, data in {DEMO / 'emulator.db'})")
    with run_emulator(seed="demo", auto_pay_after=args.auto_pay_after, db=DEMO / "emulator.db") as emulator:
        env["AIRFLOW_CONN_ENLIVY_DEFAULT"] = emulator.connection_json()
        before = len(emulator.live_invoices())
        print(f"    {emulator.base_url}  ({before} invoices before this run)")

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

        after = emulator.live_invoices()
        period = f"{last_month.to_date_string()}"

    print()
    summary = reports / f"billing-summary-{period[:7]}.txt"
    if summary.exists():
        print(summary.read_text(encoding="utf-8"))
    else:
        print(f"(no summary at {summary}; see {logs / 'billing.log'})")
    print(f"Billing summary: {summary}")
    if export_ran:
        files = sorted(p for p in export_dir.rglob("*") if p.is_file())
        print(f"Export files ({export_dir}):")
        for path in files:
            print(f"    {path.relative_to(ROOT)}  ({path.stat().st_size:,} bytes)")
    paid = sum(1 for invoice in after if invoice.get("status") == "paid")
    print(
        f"Invoices in the emulator: {len(after)} ({paid} paid); before this run: {before}. "
        "Run `make demo` again: the billing run finds last month's invoices and creates none."
    )
    print(f"make demo finished in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
