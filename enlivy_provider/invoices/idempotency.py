"""Deterministic Idempotency-Keys for invoice writes.

A key is a hash of what identifies one unit of work in Airflow: the DAG, the task, the run (its logical date,
or its run_id when the run has no logical date), the map index and the item (a customer id, or a bulk spec's
``key``). So a task retried, or cleared and re-run, sends the same key and the server replays the first
answer instead of writing twice. A different run (another logical date) gets a different key; a re-run of the
same billing period in a later run is caught by the operators' ``if_exists`` lookup instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

KEY_PREFIX = "airflow-"
_VERSION = "enlivy-provider/idempotency/v1"


def idempotency_key(
    *,
    dag_id: str,
    task_id: str,
    run: str,
    map_index: int = -1,
    item: str = "",
    action: str = "invoice.create",
) -> str:
    """``airflow-`` + 40 hex characters of SHA-256 over the identifying parts (stable across processes)."""
    material = json.dumps(
        [_VERSION, action, dag_id, task_id, run, int(map_index), item],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return KEY_PREFIX + hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]


def run_identity(logical_date: dt.datetime | None, run_id: str | None) -> str:
    """The run part of a key: the logical date in UTC ISO form, else the run_id."""
    if logical_date is not None:
        if logical_date.tzinfo is not None:
            logical_date = logical_date.astimezone(dt.timezone.utc)
        return logical_date.isoformat()
    if run_id:
        return f"run_id:{run_id}"
    raise ValueError("a run needs a logical date or a run_id to derive an idempotency key")


def key_from_context(context: Mapping[str, Any], *, item: str, action: str = "invoice.create") -> str:
    """Derive the default key from an Airflow task context (``ti``, ``dag_run``/``logical_date``, ``run_id``)."""
    ti = context["ti"]
    dag_run = context.get("dag_run")
    logical_date = context.get("logical_date")
    if logical_date is None and dag_run is not None:
        logical_date = getattr(dag_run, "logical_date", None)
    run_id = context.get("run_id") or getattr(dag_run, "run_id", None) or getattr(ti, "run_id", None)
    map_index = getattr(ti, "map_index", -1)
    return idempotency_key(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run=run_identity(logical_date, run_id),
        map_index=-1 if map_index is None else map_index,
        item=item,
        action=action,
    )
