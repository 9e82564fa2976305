"""EnlivyExportInvoicesOperator against the emulator over HTTP: content, pages, window, re-runs, failures."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, ObjectStoragePath
from export_support import (
    emulator_invoices,
    partition_bytes,
    read_csv,
    read_jsonl,
    utc_midnight,
)

from enlivy_provider.client import EnlivyClient, EnlivyRateLimitError
from enlivy_provider.operators.export import (
    INVOICE_COLUMNS,
    DayWindow,
    EnlivyExportInvoicesOperator,
    ExportSettings,
    export_day,
)

pytestmark = pytest.mark.usefixtures("enlivy_airflow_connection")

# Two UTC days around now: invoices created by a test are in it even when the test runs across midnight.
START, END = utc_midnight(-1), utc_midnight(1)


def _export(root: Path, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("updated_from", START.isoformat())
    kwargs.setdefault("updated_to", END.isoformat())
    operator = EnlivyExportInvoicesOperator(task_id="export", destination=f"file://{root}", **kwargs)
    return cast(dict[str, Any], operator.execute({}))  # type: ignore[arg-type]


def test_partitions_hold_exactly_the_emulators_invoices_with_line_items(
    enlivy_emulator: Any,
    make_invoices: Callable[..., list[str]],
    list_calls: Callable[[], int],
    tmp_path: Path,
) -> None:
    ids = make_invoices(7)
    enlivy_emulator.reset_counters()

    summary = _export(tmp_path, page_size=3)

    expected = emulator_invoices(enlivy_emulator, START, END)
    records = read_jsonl(tmp_path)
    assert sorted(r["id"] for r in records) == sorted(expected) == sorted(ids)
    for record in records:
        assert record == expected[record["id"]]
        assert len(record["line_items"]) == 2
    assert list_calls() >= 3  # 7 invoices, 3 per page
    assert summary["invoices"] == 7 and summary["line_items"] == 14
    assert [p["date"] for p in summary["partitions"]] == [
        START.date().isoformat(),
        utc_midnight().date().isoformat(),
    ]

    rows = read_csv(tmp_path)
    assert [row["id"] for row in rows] == [r["id"] for r in records]
    for row in rows:
        invoice = expected[row["id"]]
        assert list(row) == list(INVOICE_COLUMNS)
        assert row["total"] == str(invoice["total"]) and row["tax_total"] == str(invoice["tax_total"])
        assert row["status"] == invoice["status"] and row["line_item_count"] == "2"


def test_a_rerun_replaces_the_partitions_without_duplicates(
    enlivy_emulator: Any, make_invoices: Callable[..., list[str]], client: EnlivyClient, tmp_path: Path
) -> None:
    ids = make_invoices(4, status="draft")
    _export(tmp_path, page_size=2)
    first = partition_bytes(tmp_path)

    _export(tmp_path, page_size=2)
    assert partition_bytes(tmp_path) == first  # same data, byte for byte, no leftovers

    enlivy_emulator.set_invoice_status(ids[0], "paid")
    client.delete_invoice(ids[1])
    _export(tmp_path, page_size=2)

    records = read_jsonl(tmp_path)
    assert sorted(r["id"] for r in records) == sorted(ids)  # once each; the soft-deleted one is kept
    by_id = {r["id"]: r for r in records}
    assert by_id[ids[0]]["status"] == "paid"
    assert by_id[ids[1]]["deleted_at"] is not None
    assert by_id == emulator_invoices(enlivy_emulator, START, END)
    assert all(name.endswith(("invoices.jsonl", "invoices.csv")) for name in partition_bytes(tmp_path))


def test_only_invoices_updated_in_the_window_are_exported(
    make_invoices: Callable[..., list[str]], client: EnlivyClient, tmp_path: Path
) -> None:
    earlier = make_invoices(2)
    time.sleep(1.1)  # updated_at has whole seconds
    cut = datetime.now(timezone.utc).replace(microsecond=0)
    later = make_invoices(3)
    destination = ObjectStoragePath(f"file://{tmp_path}")
    settings = ExportSettings(page_size=2)
    day = cut.date()

    after_cut = export_day(client, destination / "after", DayWindow(day, cut, utc_midnight(2)), settings)
    before_cut = export_day(client, destination / "before", DayWindow(day, utc_midnight(-2), cut), settings)

    assert [r["id"] for r in read_jsonl(tmp_path / "after")] == later
    assert [r["id"] for r in read_jsonl(tmp_path / "before")] == earlier
    assert after_cut["invoices"] == 3 and before_cut["invoices"] == 2


def test_a_day_without_updates_writes_an_empty_partition(
    make_invoices: Callable[..., list[str]], tmp_path: Path
) -> None:
    make_invoices(2)
    summary = _export(
        tmp_path, updated_from=utc_midnight(-3).isoformat(), updated_to=utc_midnight(-2).isoformat()
    )

    assert summary["invoices"] == 0
    day = tmp_path / f"date={utc_midnight(-3).date().isoformat()}"
    assert (day / "invoices.jsonl").read_bytes() == b""
    assert (day / "invoices.csv").read_text(encoding="utf-8").strip() == ",".join(INVOICE_COLUMNS)


def test_a_failure_mid_way_leaves_the_previous_partition_intact(
    enlivy_emulator: Any,
    make_invoices: Callable[..., list[str]],
    monkeypatch: pytest.MonkeyPatch,
    list_calls: Callable[[], int],
    tmp_path: Path,
) -> None:
    make_invoices(3)
    _export(tmp_path, page_size=2)
    before = partition_bytes(tmp_path)
    make_invoices(2)
    # No client retries, and a rate limit that lets exactly one request through: page 1 is read and written
    # to the temporary file, page 2 answers 429.
    monkeypatch.setenv("AIRFLOW_CONN_ENLIVY_DEFAULT", enlivy_emulator.connection_json(max_retries=0))
    enlivy_emulator.configure(rate_limit=0.1)
    enlivy_emulator.reset_counters()

    with pytest.raises(EnlivyRateLimitError):  # retryable: left to Airflow's task retries
        _export(tmp_path, page_size=2)

    assert list_calls() == 2
    assert partition_bytes(tmp_path) == before  # old content, no temporary files left behind


def test_a_refused_request_fails_the_task_without_retries(
    enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The demo token may not read the other organization: 403, which no retry can fix.
    monkeypatch.setenv(
        "AIRFLOW_CONN_ENLIVY_DEFAULT",
        enlivy_emulator.connection_json(organization_id=enlivy_emulator.other_org_id),
    )
    with pytest.raises(AirflowFailException, match=r"→ 40[34]"):
        _export(tmp_path)
    assert not list(tmp_path.rglob("invoices.*"))


def test_a_listing_that_changes_while_paged_is_read_again(
    make_invoices: Callable[..., list[str]],
    client: EnlivyClient,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An invoice leaving the listing after page 1 shifts the later pages: without a re-read one would be lost."""
    ids = make_invoices(5, status="draft")

    class DeletesAfterFirstPage:
        def __init__(self) -> None:
            self.deleted = False

        def list_invoices_page(self, **kwargs: Any) -> Any:
            page = client.list_invoices_page(**kwargs)
            if not self.deleted:
                client.delete_invoice(ids[0])  # ids[0] was on page 1
                self.deleted = True
            return page

    destination = ObjectStoragePath(f"file://{tmp_path}")
    window = DayWindow(utc_midnight().date(), START, END)
    summary = export_day(
        cast(EnlivyClient, DeletesAfterFirstPage()),
        destination,
        window,
        ExportSettings(page_size=2, include_deleted=False),
    )

    assert [r["id"] for r in read_jsonl(tmp_path)] == ids[1:]  # read once more: nothing skipped
    assert summary["invoices"] == 4
    assert "changed while it was read" in caplog.text


def test_an_invoice_updated_within_the_window_while_paged_is_neither_lost_nor_doubled(
    make_invoices: Callable[..., list[str]],
    client: EnlivyClient,
    tmp_path: Path,
) -> None:
    """A window reaching into the present: an invoice of page 1 updated mid-walk moves to the end of the
    ``updated_at`` order but stays in the window (same total), shifting the later pages by one."""
    ids = make_invoices(5, status="draft")
    time.sleep(1.05 - time.time() % 1)  # the update gets a later updated_at second than the creations

    class UpdatesAfterFirstPage:
        def __init__(self) -> None:
            self.updated = False

        def list_invoices_page(self, **kwargs: Any) -> Any:
            page = client.list_invoices_page(**kwargs)
            if not self.updated:
                client.update_invoice(ids[0], {"note_lang_map": {"en": "changed"}})  # ids[0] was on page 1
                self.updated = True
            return page

    destination = ObjectStoragePath(f"file://{tmp_path}")
    window = DayWindow(utc_midnight().date(), START, END)
    summary = export_day(
        cast(EnlivyClient, UpdatesAfterFirstPage()), destination, window, ExportSettings(page_size=2)
    )

    records = read_jsonl(tmp_path)
    assert [r["id"] for r in records] == [*ids[1:], ids[0]]  # read once more, in the new order
    assert records[-1]["note_lang_map"] == {"en": "changed"}
    assert summary["invoices"] == 5
