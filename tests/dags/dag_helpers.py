"""Constants and small helpers shared by the tests of the example DAGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DAGS_DIR = REPO / "dags"


def live_invoices(emulator: Any) -> list[dict[str, Any]]:
    """Every invoice of the demo organization that is not soft-deleted (from the emulator's admin API)."""
    return list(emulator.live_invoices())
