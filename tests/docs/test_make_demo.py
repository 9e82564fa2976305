"""``make demo`` (the README's quick start) does what the README says: it bills last month for the demo
customers, closes the month, exports, and a second run creates, e-mails and charges nothing again.

It runs ``scripts/demo.py`` (the one line of ``make demo``) with ``--dir`` in a temporary directory, so a
developer's ``.demo`` is left alone. The demo drives the 3.3 virtualenv's Airflow CLI (``airflow dags test``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 600  # three `airflow dags test` runs and a db migrate on a loaded 2-core machine

pytestmark = pytest.mark.airflow3_only(reason="`make demo` runs the Airflow 3.3 virtualenv (README)")


def _demo(directory: Path, *extra: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--dir", str(directory), *extra],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def test_make_demo_bills_closes_and_exports_once_and_a_second_run_does_nothing_again(tmp_path: Path) -> None:
    assert "demo: $(STAMP)\n\t$(BIN)/python scripts/demo.py\n" in (ROOT / "Makefile").read_text()  # what runs
    last_month = pendulum.now("Europe/Berlin").start_of("month").subtract(months=1)
    label = last_month.format("MMMM YYYY")

    first = _demo(tmp_path / "demo", "--fresh")

    assert re.search(rf"Invoices for {label} \(.*\): 6 created, 0 already existed", first), first[-3000:]
    assert f"Month-end for {label}" in first
    assert "This run: e-mailed 6 (0 sent before)" in first and "charged 1 (succeeded 1)" in first
    assert "In the emulator: 6 invoices (1 paid), 6 e-mails, 1 charges" in first
    assert "invoices.csv" in first and "invoices.jsonl" in first  # the export wrote its files

    second = _demo(tmp_path / "demo")

    assert re.search(rf"Invoices for {label} \(.*\): 0 created, 6 already existed", second), second[-3000:]
    assert "This run: e-mailed 0 (0 sent before)" in second and "charged 0 (none)" in second
    assert "In the emulator: 6 invoices (1 paid), 6 e-mails, 1 charges" in second
