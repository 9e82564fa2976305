"""Smoke test of the *installed wheel*, run by `make wheel-smoke` with a clean virtualenv's Python.

An editable install reads everything from the checkout, so it hides package data left out of the wheel. This
script runs from a temporary directory, imports the package from site-packages and checks what a user gets:
the data files, the provider registration Airflow reads, example DAGs that parse, a working emulator and
client. Usage: <venv>/bin/python scripts/wheel_smoke.py <dags folder>
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DATA_FILES = (
    "py.typed",
    "invoices/schemas/invoice.schema.json",
    "invoices/schemas/invoice_update.schema.json",
    "invoices/schemas/line_item.schema.json",
)


def check(condition: bool, what: str) -> None:
    print(("ok    " if condition else "FAIL  ") + what, flush=True)
    if not condition:
        raise SystemExit(1)


def main(dags_folder: Path) -> None:
    import enlivy_provider

    installed = Path(enlivy_provider.__file__).resolve()
    check(
        "site-packages" in installed.parts, f"enlivy_provider imported from the installed wheel ({installed})"
    )
    package = importlib.resources.files("enlivy_provider")
    for name in DATA_FILES:
        check(package.joinpath(name).is_file(), f"package data {name}")

    airflow = str(Path(sys.executable).parent / "airflow")
    listed = subprocess.run(
        [airflow, "providers", "list", "-o", "json"], capture_output=True, text=True, check=True
    )
    names = {provider["package_name"]: provider["version"] for provider in json.loads(listed.stdout)}
    check(
        names.get("airflow-provider-enlivy") == enlivy_provider.__version__,
        "`airflow providers list` shows it",
    )

    from enlivy_provider.operators.invoices import EnlivyCreateInvoiceOperator

    check(
        importlib.util.find_spec("openlineage") is None and hasattr(EnlivyCreateInvoiceOperator, "execute"),
        "without the [openlineage] extra the operators import (OpenLineage is not installed)",
    )

    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(dags_folder))
    check(not bag.import_errors, f"example DAGs parse ({sorted(bag.dag_ids)}; errors: {bag.import_errors})")
    check(
        {"enlivy_recurring_billing", "enlivy_event_invoice"} <= set(bag.dag_ids), "the billing DAGs are there"
    )

    from enlivy_provider.client import EnlivyClient
    from enlivy_provider.testing import invoice_payload, run_emulator

    with (
        run_emulator() as emulator,
        EnlivyClient(emulator.base_url, emulator.token, organization_id=emulator.org_id) as client,
    ):
        invoice = client.create_invoice(invoice_payload(), idempotency_key="wheel-smoke")
        check(
            invoice["total"] is not None and len(emulator.live_invoices()) == 1,
            "the emulator bills through the client",
        )


if __name__ == "__main__":
    folder = Path(sys.argv[1]).resolve()
    with tempfile.TemporaryDirectory(prefix="wheel-smoke-") as home:
        os.environ["AIRFLOW_HOME"] = home
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        os.chdir(home)  # nothing may come from the checkout
        main(folder)
