"""OpenLineage: the operators' inputs and outputs as Airflow's OpenLineage listener emits them.

A real run (``dag.test()`` in its own process, see ``lineage_run.py``) with OpenLineage's file transport;
the assertions read the events the listener wrote, not the operators' return values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from enlivy_provider.operators.export import INVOICE_COLUMNS
from enlivy_provider.testing import EmulatorHandle

RUN_TIMEOUT_S = 300
HERE = Path(__file__).parent


def run_with_lineage(tmp_path: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Run lineage_run.py with a file transport; (task states, the emitted events)."""
    events = tmp_path / "events.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "enlivy-tests",
        "PYTHONPATH": os.pathsep.join([str(HERE.parent.parent), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, str(HERE / "lineage_run.py"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("TASK_STATES ")]
    states = json.loads(line.removeprefix("TASK_STATES "))
    assert events.exists(), f"no OpenLineage event was written; stderr: {done.stderr[-3000:]}"
    return states, [json.loads(line) for line in events.read_text().splitlines() if line.strip()]


def completed(events: list[dict[str, Any]], task_id: str) -> dict[str, Any]:
    [event] = [
        e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"lineage_run.{task_id}"
    ]
    return event


def datasets(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in items]


def rows(item: dict[str, Any]) -> int:
    return int(item["outputFacets"]["outputStatistics"]["rowCount"])


def test_operators_report_invoices_and_files_as_lineage(
    enlivy_airflow_connection: EmulatorHandle, tmp_path: Path
) -> None:
    emulator = enlivy_airflow_connection
    states, events = run_with_lineage(tmp_path)
    assert set(states.values()) == {"success"}, states
    host = emulator.base_url.split("://", 1)[1].rstrip("/")
    invoices = (f"enlivy://{host}", f"organizations/{emulator.org_id}/invoices")

    for task_id, written in (("create", 1), ("update", 1), ("bulk", 2)):
        event = completed(events, task_id)
        assert datasets(event["outputs"]) == [invoices], (task_id, event["outputs"])
        assert rows(event["outputs"][0]) == written, task_id
        assert event["inputs"] == []

    reconcile = completed(events, "reconcile")
    assert datasets(reconcile["inputs"]) == [invoices]
    [report] = reconcile["outputs"]
    assert (report["namespace"], report["name"], rows(report)) == ("file", f"{tmp_path}/report.csv", 0)

    export = completed(events, "export")
    assert datasets(export["inputs"]) == [invoices]
    by_name = {d["name"]: d for d in export["outputs"]}
    [partition] = {str(Path(name).parent) for name in by_name}
    live = len(emulator.live_invoices())
    assert live == 3
    csv_file, jsonl_file = by_name[f"{partition}/invoices.csv"], by_name[f"{partition}/invoices.jsonl"]
    assert rows(csv_file) == rows(jsonl_file) == live
    fields = csv_file["facets"]["schema"]["fields"]
    assert [f["name"] for f in fields] == list(INVOICE_COLUMNS)
    assert {f["name"]: f["type"] for f in fields}["total"] == "decimal"
    assert "schema" not in jsonl_file["facets"]
    # Lineage never carries the API token.
    assert emulator.token.split("|", 1)[-1] not in json.dumps(events)


PROBE = """
import sys
from airflow.providers.common.compat.sdk import BaseOperator
before = {m for m in sys.modules if "openlineage" in m}
import %s
print(sorted(m for m in sys.modules if "openlineage" in m and m not in before))
"""


@pytest.mark.parametrize(
    "module",
    ["enlivy_provider.operators.invoices", "enlivy_provider.operators.export", "enlivy_provider.lineage"],
)
def test_importing_the_operators_imports_nothing_of_openlineage(module: str) -> None:
    """Beyond what Airflow itself loads, the operators import no OpenLineage module until the listener asks
    for their lineage (without the extra they import none at all: scripts/wheel_smoke.py)."""
    probe = subprocess.run(
        [sys.executable, "-c", PROBE % module], capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert probe.stdout.strip().splitlines()[-1] == "[]"
