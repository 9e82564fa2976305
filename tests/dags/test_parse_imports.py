"""DAG files stay light: parsing them must not load the HTTP transports (they load when a task runs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"

# What any DAG file loads anyway is left out: Airflow 2's DAG class imports requests itself.
PROBE = """
import json, runpy, sys
from airflow.providers.common.compat.sdk import DAG, Param, task
before = set(sys.modules)
for path in sys.argv[1:]:
    runpy.run_path(path)
print(json.dumps(sorted(m for m in ("requests", "enlivy_provider.client.sync", "enlivy_provider.client.aio",
                                    "enlivy_provider.hooks.enlivy") if m in set(sys.modules) - before)))
"""


def test_parsing_the_example_dags_loads_no_http_client() -> None:
    files = sorted(str(p) for p in DAGS.glob("*.py"))
    names = {Path(file).name for file in files}
    assert {
        "enlivy_recurring_billing.py",
        "enlivy_month_end.py",
        "billing_data.py",
        "month_end_rules.py",
    } <= names
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, *files],
        # Airflow puts the dags folder on sys.path (the example DAGs share dags/billing_data.py).
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(DAGS), os.environ.get("PYTHONPATH", "")])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    assert json.loads(probe.stdout.strip().splitlines()[-1]) == []
