"""Helpers of the export tests: windows, the emulator's own view of the data, partition readers."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests


def utc_midnight(days: int = 0) -> datetime:
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days)


def emulator_invoices(handle: Any, start: datetime, end: datetime) -> dict[str, dict[str, Any]]:
    """The emulator's own view (admin endpoint) of the invoices updated in [start, end), soft-deleted included."""
    response = requests.get(
        f"{handle.base_url}/_emulator/invoices", params={"organization_id": handle.org_id}, timeout=30
    )
    response.raise_for_status()
    result = {}
    for invoice in json.loads(response.content, parse_float=Decimal)["data"]:
        updated = datetime.fromisoformat(invoice["updated_at"].replace("Z", "+00:00"))
        if start <= updated < end:
            result[invoice["id"]] = invoice
    return result


def read_jsonl(root: Path) -> list[dict[str, Any]]:
    """Every record of every partition below root (partition order, then line order)."""
    records: list[dict[str, Any]] = []
    for path in sorted(root.glob("date=*/invoices.jsonl")):
        records += [json.loads(line, parse_float=Decimal) for line in path.read_bytes().splitlines()]
    return records


def read_csv(root: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted(root.glob("date=*/invoices.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            rows += list(csv.DictReader(f))
    return rows


def partition_bytes(root: Path) -> dict[str, bytes]:
    """{relative path: content} of every file below root, hidden ones included."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
