"""docs/hook.md's DAG example, run as written with dag.test() against the emulator."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from airflow_support import run_dag, task_states, xcom_result

from enlivy_provider.client import EnlivyClient
from enlivy_provider.emulator.seed import DEMO_CUSTOMERS

DOC = Path(__file__).resolve().parents[3] / "docs" / "hook.md"


def _dag_example() -> str:
    blocks = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S) if "@dag" in b]
    assert blocks, "docs/hook.md lost its DAG example"
    return blocks[0]


def test_documented_dag_sums_the_open_invoices(enlivy_airflow_connection: Any) -> None:
    handle = enlivy_airflow_connection
    with EnlivyClient(handle.base_url, handle.token, organization_id=handle.org_id) as client:
        for customer in DEMO_CUSTOMERS[:2]:
            client.create_invoice(
                {
                    "organization_receiver_user_id": customer.id,
                    "status": "pending",
                    "currency": "EUR",
                    "payment_method": "bank_transfer",
                    "delivery_method": "email",
                    "line_items": [{"name_lang_map": {"en": "Docs"}, "quantity": 1, "price": "10.05"}],
                }
            )
    namespace: dict[str, Any] = {"__name__": "docs_hook_example"}
    exec(compile(_dag_example(), str(DOC), "exec"), namespace)

    dag_run = run_dag(namespace["example_dag"])

    assert task_states(dag_run) == {"open_total": "success"}
    # (The XCom read back from the test DB turns the numeric string "20.10" into a number.)
    assert Decimal(str(xcom_result(dag_run, "open_total"))) == Decimal("20.10")
