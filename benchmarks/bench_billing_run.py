"""Monthly billing of 1,000 customers at 50 ms API latency: the bulk design vs one mapped task per customer.

Both runs use the same emulator (``latency_ms=50``, reset with ``extra_customers``), the same customers and
usage files, the same invoice template and the same ``dag.test()``:

* **bulk** — dags/enlivy_recurring_billing.py as shipped: one ``EnlivyCreateInvoicesOperator`` task creates
  every invoice over a pooled client with bounded concurrency, then the deferrable sensor and the reports.
* **mapped** — a variant DAG built here: the same usage task, the same template rendered into specs, then
  ``EnlivyCreateInvoiceOperator.partial(...).expand_kwargs(specs)`` (one task instance per customer) and
  the same sensor.

A mapped task instance costs a task start plus its own requests, so 1,000 of them take many minutes; by
default the mapped variant runs for ``--mapped-customers`` (100) and the comparison is per customer, which
the output says. ``--mapped-customers 1000`` runs it at full size.

    .venv/bin/python benchmarks/bench_billing_run.py [--customers 1000] [--mapped-customers 100]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAGS_DIR = ROOT / "dags"
LATENCY_MS = 50
TARGET = 5.0
PERIOD_DAY = "2026-10-15"  # usage rows fall in October 2026
LOGICAL_DATE = "2026-11-01T00:00:00+01:00"  # a manual run on 1 Nov bills October (Europe/Berlin)


def write_inputs(workdir: Path, customers: int) -> tuple[Path, Path]:
    """A customers file (benchmark customers by id, alternating plans) and one usage row per customer."""
    import yaml

    base = yaml.safe_load((DAGS_DIR / "data" / "billing_customers.yaml").read_text())
    base["customers"] = [
        {
            "account": f"acct{i:05d}",
            "name": f"Bench Customer {i:04d}",
            "customer": f"org_user_2qD7mZ0benchCust{i:09d}",
            "plan": "growth" if i % 3 else "starter",
        }
        for i in range(1, customers + 1)
    ]
    customers_file = workdir / f"customers-{customers}.yaml"
    customers_file.write_text(yaml.safe_dump(base, sort_keys=False))
    usage_file = workdir / f"usage-{customers}.csv"
    with usage_file.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "account", "metric", "quantity"])
        for i in range(1, customers + 1):
            writer.writerow([PERIOD_DAY, f"acct{i:05d}", "api_calls", 900_000 + 1_000 * i])
    return customers_file, usage_file


def mapped_variant_dag() -> Any:
    """The same billing, but one mapped EnlivyCreateInvoiceOperator task instance per customer."""
    import importlib.util

    import billing_data  # dags/ is on sys.path (main), as Airflow puts the dags folder there
    import pendulum
    from airflow.providers.common.compat.sdk import DAG, Param, task

    from enlivy_provider.compat import CronDataIntervalTimetable
    from enlivy_provider.operators.invoices import EnlivyCreateInvoiceOperator
    from enlivy_provider.sensors.invoice_status import EnlivyInvoiceStatusSensor

    spec = importlib.util.spec_from_file_location(
        "billing_dag_module", DAGS_DIR / "enlivy_recurring_billing.py"
    )
    assert spec and spec.loader
    billing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(billing)

    with DAG(
        dag_id="bench_billing_mapped",
        schedule=CronDataIntervalTimetable("0 0 1 * *", timezone=billing_data.TIMEZONE),
        start_date=pendulum.datetime(2026, 1, 1, tz=billing_data.TIMEZONE),
        catchup=False,
        params={"customers_file": Param("", type="string"), "usage_file": Param("", type="string")},
        template_searchpath=[str(DAGS_DIR)],
    ) as dag:

        @task
        def collect_usage(params: dict[str, Any], data_interval_start: Any, data_interval_end: Any) -> dict:
            period = billing_data.billing_period(data_interval_start, data_interval_end)
            return {"period": period, "accounts": billing_data.priced_accounts(params, period)}

        @task
        def specs(**context: Any) -> list[dict[str, Any]]:
            """Render the DAG's invoice template once; one kwargs dict per customer for the mapped task."""
            template = context["dag"].get_template_env().get_template(billing_data.INVOICES_TEMPLATE)
            rendered = json.loads(template.render(**context))
            return [
                {
                    "customer": item["customer"],
                    "line_items": item["line_items"],
                    "invoice": item["invoice"],
                    "billing_period": item["billing_period"],
                }
                for item in rendered
            ]

        usage = collect_usage()
        kwargs = specs()
        usage >> kwargs
        created = EnlivyCreateInvoiceOperator.partial(
            task_id="create_invoice", if_exists="skip"
        ).expand_kwargs(kwargs)

        @task
        def invoice_ids(summaries: Any) -> list[str]:
            return [summary["id"] for summary in summaries]

        EnlivyInvoiceStatusSensor(
            task_id="wait_for_payment",
            invoice_ids=invoice_ids(created.output),
            target_statuses=billing.PAID_STATUSES,
            deferrable=True,
            poke_interval=0.5,
            timeout=600,
        )
    return dag


def create_phase_seconds(dag_run: Any, task_id: str) -> float:
    """From the first start to the last end of the task's instances (all map indexes)."""
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = [ti for ti in dag_run.get_task_instances(session=session) if ti.task_id == task_id]
        return (max(ti.end_date for ti in tis) - min(ti.start_date for ti in tis)).total_seconds()


def count_invoices(emulator: Any) -> int:
    return len(emulator.live_invoices())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--mapped-customers", type=int, default=100)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-billing-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(workdir / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(workdir / "empty-dags"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{workdir / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "ENLIVY_PAYMENT_POKE_SECONDS": "0.5",
            "ENLIVY_PAYMENT_TIMEOUT_SECONDS": "600",
            "ENLIVY_REPORT_DIR": str(workdir / "reports"),
        }
    )
    (workdir / "empty-dags").mkdir()
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(DAGS_DIR))  # as Airflow does: the DAG files import dags/billing_data.py
    import pendulum
    from airflow.models import DagBag
    from airflow.utils import db
    from airflow_support import run_dag  # tests/airflow_support.py: sync the DAG to the DB, then dag.test()

    from enlivy_provider.testing import run_emulator

    db.initdb()
    logical_date = pendulum.parse(LOGICAL_DATE)
    bulk_inputs = write_inputs(workdir, args.customers)
    mapped_inputs = write_inputs(workdir, args.mapped_customers)
    bulk_dag = DagBag(dag_folder=str(DAGS_DIR / "enlivy_recurring_billing.py")).get_dag(
        "enlivy_recurring_billing"
    )
    mapped_dag = mapped_variant_dag()

    print(
        f"{os.cpu_count()} CPUs; emulator latency {LATENCY_MS} ms per request; invoices paid 0.1 s after issue"
    )
    results = {}
    with run_emulator(latency_ms=LATENCY_MS, auto_pay_after=0.1) as emulator:
        os.environ["AIRFLOW_CONN_ENLIVY_DEFAULT"] = emulator.connection_json()
        for name, dag, (customers_file, usage_file), count, create_task in (
            ("bulk", bulk_dag, bulk_inputs, args.customers, "create_invoices"),
            ("mapped", mapped_dag, mapped_inputs, args.mapped_customers, "create_invoice"),
        ):
            emulator.reset(seed="demo", extra_customers=args.customers)
            emulator.configure(latency_ms=LATENCY_MS, auto_pay_after=0.1)
            conf = {"customers_file": str(customers_file), "usage_file": str(usage_file)}
            log = workdir / f"{name}.log"
            with log.open("w") as out, contextlib.redirect_stdout(out):  # task output (1,000-row tables)
                started = time.perf_counter()
                dag_run = run_dag(dag, logical_date=logical_date, run_conf=conf)
                wall = time.perf_counter() - started
            created = count_invoices(emulator)
            assert str(dag_run.state) == "success", f"{name}: run {dag_run.state}"
            assert created == count, f"{name}: {created} invoices for {count} customers"
            results[name] = {
                "customers": count,
                "wall": wall,
                "create": create_phase_seconds(dag_run, create_task),
            }
            print(
                f"{name:>6}: {count:>5} customers, dag.test() {wall:7.1f} s ({wall / count * 1000:6.1f} ms/customer), "
                f"create phase {results[name]['create']:6.1f} s, {created} invoices"
            )

    bulk, mapped = results["bulk"], results["mapped"]
    per_customer = (mapped["wall"] / mapped["customers"]) / (bulk["wall"] / bulk["customers"])
    create_ratio = (mapped["create"] / mapped["customers"]) / (bulk["create"] / bulk["customers"])
    scaled = mapped["customers"] != bulk["customers"]
    print()
    if scaled:
        print(
            f"The mapped variant ran for {mapped['customers']} customers (not {bulk['customers']}): the ratios "
            "compare time per customer; at full size it would take about "
            f"{mapped['wall'] / mapped['customers'] * bulk['customers'] / 60:.0f} minutes."
        )
    print(f"mapped / bulk, dag.test() wall time per customer: {per_customer:.1f}x (target >= {TARGET:g}x)")
    print(f"mapped / bulk, create phase per customer:          {create_ratio:.1f}x")
    print(f"target {'met' if per_customer >= TARGET else 'NOT met'}")


if __name__ == "__main__":
    main()
