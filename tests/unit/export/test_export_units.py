"""The export's pure parts: window and day split, CSV row, JSON line, atomic partition writer (no network)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from enlivy_provider.operators.export import (
    INVOICE_COLUMNS,
    DayWindow,
    EnlivyExportInvoicesOperator,
    PartitionWriter,
    day_windows,
    invoice_line,
    invoice_row,
    parse_instant,
)

UTC = timezone.utc

INVOICE: dict[str, Any] = {
    "id": "org_inv_1",
    "number": "7",
    "status": "paid",
    "currency": "EUR",
    "sub_total": Decimal("190.00"),
    "discount": Decimal("0.00"),
    "tax_total": Decimal("36.10"),
    "total": Decimal("226.10"),
    "is_tax_charged": True,
    "paid_at": None,
    "note_lang_map": {"en": "Thanks"},
    "updated_at": "2026-11-24T10:00:00Z",
    "line_items": [
        {"id": "org_invli_1", "quantity": Decimal("2"), "price": Decimal("95.00"), "total": Decimal("226.10")}
    ],
}


# ------------------------------------------------------------------------------------------- window and days


def test_rendered_data_interval_strings_are_parsed_as_utc() -> None:
    assert parse_instant("2026-11-24 00:00:00+00:00", "x") == datetime(2026, 11, 24, tzinfo=UTC)
    assert parse_instant("2026-11-24T01:00:00+01:00", "x") == datetime(2026, 11, 24, tzinfo=UTC)
    assert parse_instant("2026-11-24T00:00:00Z", "x") == datetime(2026, 11, 24, tzinfo=UTC)
    assert parse_instant("2026-11-24", "x") == datetime(2026, 11, 24, tzinfo=UTC)
    assert parse_instant(date(2026, 11, 24), "x") == datetime(2026, 11, 24, tzinfo=UTC)


@pytest.mark.parametrize("value", ["None", "", None, "yesterday"])
def test_missing_or_bad_window_ends_are_refused(value: Any) -> None:
    with pytest.raises(ValueError, match="updated_from"):
        parse_instant(value, "updated_from")


def test_a_data_interval_of_one_day_is_one_partition() -> None:
    [window] = day_windows("2026-11-24 00:00:00+00:00", "2026-11-25 00:00:00+00:00")
    assert window.day == date(2026, 11, 24)
    assert window.filters == {
        "updated_at_from": "2026-11-24T00:00:00Z",
        "updated_at_to": "2026-11-25T00:00:00Z",
    }


def test_pendulum_datetimes_give_aware_windows() -> None:
    """Airflow hands out pendulum DateTimes (a timetable's interval); their days must stay comparable with
    the API's timestamps (pendulum arithmetic dropped a stdlib tzinfo: naive window ends)."""
    import pendulum

    windows = day_windows(
        pendulum.datetime(2026, 11, 24, tz="UTC"), pendulum.datetime(2026, 11, 26, tz="UTC")
    )
    assert [(w.start, w.end) for w in windows] == [
        (datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC)),
        (datetime(2026, 11, 25, tzinfo=UTC), datetime(2026, 11, 26, tzinfo=UTC)),
    ]
    assert windows[1].contains({"updated_at": "2026-11-25T13:00:00Z"})


def test_a_longer_window_is_split_into_utc_days() -> None:
    windows = day_windows("2026-02-27", "2026-03-02")
    assert [w.day for w in windows] == [date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1)]
    assert all(w.end - w.start == timedelta(days=1) for w in windows)


@pytest.mark.parametrize(
    ("start", "end"),
    [("2026-11-24T06:00:00Z", "2026-11-25T06:00:00Z"), ("2026-11-24T00:00:00+01:00", "2026-11-25")],
)
def test_windows_that_are_not_whole_utc_days_are_refused(start: str, end: str) -> None:
    with pytest.raises(ValueError, match="not a UTC midnight"):
        day_windows(start, end)


def test_an_empty_window_is_refused_with_a_hint_about_the_timetable() -> None:
    with pytest.raises(ValueError, match="CronTriggerTimetable"):
        day_windows("2026-11-24", "2026-11-24")


def test_the_window_end_is_exclusive_whatever_the_server_does() -> None:
    window = DayWindow(
        date(2026, 11, 24), datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC)
    )
    assert window.contains({"updated_at": "2026-11-24T00:00:00Z"})
    assert window.contains({"updated_at": "2026-11-24T23:59:59Z"})
    assert not window.contains({"updated_at": "2026-11-25T00:00:00Z"})
    assert not window.contains({"updated_at": "2026-11-23T23:59:59Z"})


# ---------------------------------------------------------------------------------------------- rows, lines


def test_csv_row_follows_the_fixed_columns_with_exact_amounts() -> None:
    row = dict(zip(INVOICE_COLUMNS, invoice_row(INVOICE), strict=True))
    assert row["id"] == "org_inv_1"
    assert row["total"] == "226.10"
    assert row["tax_total"] == "36.10"
    assert row["is_tax_charged"] == "true"
    assert row["paid_at"] == ""
    assert row["formatted_number"] == ""  # absent field → empty cell, same columns every time
    assert row["line_item_count"] == "1"
    assert "note_lang_map" not in row  # nested objects stay in the JSON Lines file


def test_json_line_keeps_decimal_amounts_as_exact_numbers() -> None:
    line = invoice_line(INVOICE)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert b'"total":226.10' in line.replace(b" ", b"")
    parsed = json.loads(line, parse_float=Decimal)
    assert parsed["total"] == Decimal("226.10")
    assert parsed["line_items"][0]["price"] == Decimal("95.00")


# ------------------------------------------------------------------------------------------ partition writer


def _write_partition(directory: Any, invoices: list[dict[str, Any]]) -> dict[str, str]:
    with PartitionWriter(directory, ("jsonl", "csv")) as writer:
        for invoice in invoices:
            writer.write(invoice)
        return writer.commit()


def _local(tmp_path: Path) -> Any:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    return ObjectStoragePath(f"file://{tmp_path}") / "date=2026-11-24"


def test_commit_writes_both_files_and_no_temporary_ones(tmp_path: Path) -> None:
    directory = _local(tmp_path)
    files = _write_partition(directory, [INVOICE, {**INVOICE, "id": "org_inv_2"}])
    assert files == {
        "jsonl": f"file://{tmp_path}/date=2026-11-24/invoices.jsonl",
        "csv": f"file://{tmp_path}/date=2026-11-24/invoices.csv",
    }
    assert sorted(p.name for p in (tmp_path / "date=2026-11-24").iterdir()) == [
        "invoices.csv",
        "invoices.jsonl",
    ]
    lines = (tmp_path / "date=2026-11-24" / "invoices.jsonl").read_bytes().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["org_inv_1", "org_inv_2"]
    with (tmp_path / "date=2026-11-24" / "invoices.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(INVOICE_COLUMNS)
    assert [r["id"] for r in rows] == ["org_inv_1", "org_inv_2"]


def test_an_empty_day_still_replaces_the_partition(tmp_path: Path) -> None:
    directory = _local(tmp_path)
    _write_partition(directory, [INVOICE])
    _write_partition(directory, [])
    assert (tmp_path / "date=2026-11-24" / "invoices.jsonl").read_bytes() == b""
    header = (tmp_path / "date=2026-11-24" / "invoices.csv").read_text(encoding="utf-8")
    assert next(csv.reader(io.StringIO(header))) == list(INVOICE_COLUMNS)


def test_a_failure_before_commit_keeps_the_previous_partition_and_cleans_up(tmp_path: Path) -> None:
    directory = _local(tmp_path)
    _write_partition(directory, [INVOICE])
    before = {p.name: p.read_bytes() for p in (tmp_path / "date=2026-11-24").iterdir()}

    with (
        pytest.raises(RuntimeError, match="API went away"),
        PartitionWriter(directory, ("jsonl", "csv")) as w,
    ):
        w.write({**INVOICE, "id": "org_inv_new"})
        raise RuntimeError("API went away")

    after = {p.name: p.read_bytes() for p in (tmp_path / "date=2026-11-24").iterdir()}
    assert after == before


def test_the_writer_works_on_a_non_local_filesystem() -> None:
    from airflow.providers.common.compat.sdk import ObjectStoragePath
    from airflow_support import attach_filesystem
    from fsspec.implementations.memory import MemoryFileSystem

    attach_filesystem("memory", MemoryFileSystem())
    directory = ObjectStoragePath("memory://bucket/enlivy/date=2026-11-24")
    files = _write_partition(directory, [INVOICE])
    _write_partition(directory, [INVOICE])  # the second run replaces, never appends
    # The path's own spelling: memory://bucket/... (universal_pathlib 0.3), memory:///bucket/... (0.2, Airflow 2).
    assert files["jsonl"] == str(directory / "invoices.jsonl")
    assert files["jsonl"].endswith("//bucket/enlivy/date=2026-11-24/invoices.jsonl")
    assert sorted(p.name for p in directory.iterdir()) == ["invoices.csv", "invoices.jsonl"]
    assert len((directory / "invoices.jsonl").read_bytes().splitlines()) == 1


# ------------------------------------------------------------------------------------------ operator surface


def test_operator_defaults_to_the_run_interval_and_templates_its_window() -> None:
    op = EnlivyExportInvoicesOperator(task_id="export", destination="file:///tmp/x")
    assert (op.updated_from, op.updated_to) == (None, None)  # the run's interval, taken when it executes
    assert set(op.template_fields) == {"destination", "updated_from", "updated_to"}
    assert op.settings.formats == ("jsonl", "csv")


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"formats": ("parquet",)}, "formats"), ({"page_size": 51}, "page")]
)
def test_operator_refuses_bad_arguments_at_parse_time(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EnlivyExportInvoicesOperator(task_id="export", destination="file:///tmp/x", **kwargs)


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        (
            "file:///data/enlivy/date=2026-10-01/invoices.csv",
            "file:///data/enlivy/date=2026-10-01/invoices.csv",
        ),
        (
            "file://my_conn@/data/enlivy/date=2026-10-01/invoices.csv",
            "file:///data/enlivy/date=2026-10-01/invoices.csv",
        ),
        ("/data/enlivy/date=2026-10-01/invoices.csv", "file:///data/enlivy/date=2026-10-01/invoices.csv"),
        (
            "s3://aws_default@data-lake/enlivy/date=2026-10-01/invoices.jsonl",
            "s3://data-lake/enlivy/date=2026-10-01/invoices.jsonl",
        ),
        ("s3://AKIDEXAMPLE:s3cr3t@data-lake/enlivy/invoices.csv", "s3://data-lake/enlivy/invoices.csv"),
        ("gs://gcp_conn@bucket/x/invoices.csv", "gs://bucket/x/invoices.csv"),
    ],
)
def test_a_file_asset_uri_is_its_lineage_name_without_connection_or_credentials(url: str, uri: str) -> None:
    from airflow.providers.common.compat.sdk import Asset

    from enlivy_provider.lineage import asset_uri, file_dataset

    assert asset_uri(file_dataset(url)) == uri
    # Airflow takes the URI as it is (its own normaliser would keep a user name without a password).
    assert Asset(uri=uri).uri == uri
