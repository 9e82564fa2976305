"""Export Enlivy invoices to JSON Lines and CSV files, one partition per UTC day (docs/etl-export.md).

``EnlivyExportInvoicesOperator`` lists the invoices *updated* during a window (``updated_at_from/_to``,
docs/enlivy-api-notes.md §6.2), with their line items, page by page, and writes each page's records straight into the
partition's files, so memory hardly grows with the number of invoices (by the hashes of their ids only):

    <destination>/date=YYYY-MM-DD/invoices.jsonl   one invoice per line, as the API returned it, incl. line_items
    <destination>/date=YYYY-MM-DD/invoices.csv     the flat invoice table (``INVOICE_COLUMNS``)

Files are written under hidden temporary names and moved over the final names only once the whole day has
been read, so a re-run replaces a partition and a failed run leaves the previous one untouched.

The destination is an Airflow ``ObjectStoragePath`` URL: ``file:///...`` or any scheme with a registered
filesystem (``s3://aws_default@bucket/prefix``, ``gs://...``). Airflow, fsspec and the client are imported
when the task runs, not when a DAG file imports this module.

Asset events: give the operator an ``AssetAlias`` (a ``DatasetAlias`` on Airflow 2) in ``outlets`` and it
records one event per file it wrote on that alias (docs/etl-export.md, "Asset events").
"""

from __future__ import annotations

import csv
import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseOperator

from enlivy_provider.lineage import (
    EnlivyLineageMixin,
    asset_uri,
    file_dataset,
    invoices_dataset,
    typed_columns,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath

    from enlivy_provider.client import EnlivyClient
    from enlivy_provider.hooks.enlivy import EnlivyHook

log = logging.getLogger(__name__)

FORMATS = ("jsonl", "csv")
FILE_NAMES: dict[str, str] = {"jsonl": "invoices.jsonl", "csv": "invoices.csv"}

# The flat invoice table: a fixed column list, so every partition has the same schema whatever the data.
INVOICE_COLUMNS: tuple[str, ...] = (
    "id",
    "organization_id",
    "number",
    "formatted_number",
    "status",
    "type",
    "direction",
    "source",
    "currency",
    "sub_total",
    "discount",
    "tax_total",
    "total",
    "is_tax_charged",
    "payment_method",
    "delivery_method",
    "organization_receiver_user_id",
    "organization_sender_user_id",
    "organization_invoice_prefix_id",
    "organization_bank_account_id",
    "organization_invoice_id",
    "issued_at",
    "due_at",
    "paid_at",
    "finalized_at",
    "created_at",
    "updated_at",
    "deleted_at",
    "line_item_count",
)

# The CSV columns' types, as lineage reports the file's schema (the columns not named are strings).
INVOICE_COLUMN_TYPES: dict[str, str] = {
    **dict.fromkeys(("sub_total", "discount", "tax_total", "total"), "decimal"),
    **dict.fromkeys(
        ("issued_at", "due_at", "paid_at", "finalized_at", "created_at", "updated_at", "deleted_at"),
        "timestamp",
    ),
    "is_tax_charged": "boolean",
    "line_item_count": "integer",
}

# How many times a day is read again when the listing changed while it was being paged through.
MAX_READ_ATTEMPTS = 3


class EnlivyExportListingChangedError(AirflowException):
    """The invoice listing changed while it was paged through (records moved between pages); retryable."""


# ---------------------------------------------------------------------------------------------------------
# The window and its days


@dataclass(frozen=True)
class DayWindow:
    """One UTC day of the export window: the invoices with ``start <= updated_at < end`` go to ``day``."""

    day: date
    start: datetime
    end: datetime

    @property
    def filters(self) -> dict[str, str]:
        """The API's date-range pair (§6.3: sent together, ``YYYY-MM-DDTHH:MM:SSZ``)."""
        return {"updated_at_from": _iso_z(self.start), "updated_at_to": _iso_z(self.end)}

    def contains(self, invoice: Mapping[str, Any]) -> bool:
        """Whether the invoice belongs to this day (whatever the server's ``_to`` inclusiveness)."""
        updated_at = invoice.get("updated_at")
        if not updated_at:
            return True  # the server filtered it; nothing to check it against
        return self.start <= parse_instant(updated_at, "updated_at") < self.end


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(value: Any, name: str) -> datetime:
    """An aware UTC datetime from a datetime, an ISO 8601 string (``Z`` or offset) or a ``YYYY-MM-DD`` date.

    Naive values are taken as UTC. Rendered templates such as ``{{ data_interval_start }}`` arrive as strings
    like ``2026-11-24 00:00:00+00:00``.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip() and value.strip() != "None":
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = f"{text[:-1]}+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{name}: {value!r} is not an ISO 8601 date or datetime") from None
    else:
        raise ValueError(
            f"{name} is empty ({value!r}): give a date or datetime, or leave it unset (None) for the run's "
            "data interval"
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    # A plain datetime: pendulum's DateTime (what Airflow hands out) drops a stdlib tzinfo in arithmetic,
    # so ``start + timedelta(days=1)`` would be naive and no longer comparable with the API's timestamps.
    return datetime.combine(moment.date(), moment.timetz())


def day_windows(updated_from: Any, updated_to: Any) -> list[DayWindow]:
    """Split ``[updated_from, updated_to)`` into UTC days, one partition each.

    Both ends must be UTC midnights: a partition always holds a whole day, so re-running any window that
    touches a day rewrites that day completely and never replaces it with part of itself.
    """
    start = parse_instant(updated_from, "updated_from")
    end = parse_instant(updated_to, "updated_to")
    for name, moment in (("updated_from", start), ("updated_to", end)):
        if moment.time() != time(0):
            raise ValueError(
                f"{name} {moment.isoformat()} is not a UTC midnight: the export writes one partition per UTC "
                "day, so its window must cover whole days (a daily CronDataIntervalTimetable in UTC does)"
            )
    if end <= start:
        raise ValueError(
            f"empty export window {start.isoformat()} .. {end.isoformat()}: updated_to must be after "
            "updated_from (a schedule whose data interval has no length, such as CronTriggerTimetable, "
            "needs a data-interval timetable or explicit updated_from/updated_to)"
        )
    days = (end - start).days
    return [
        DayWindow(
            day=(start + timedelta(days=i)).date(),
            start=start + timedelta(days=i),
            end=start + timedelta(days=i + 1),
        )
        for i in range(days)
    ]


def partition_name(day: date) -> str:
    """Hive-style partition directory name, read as a ``date`` column by Spark, DuckDB, BigQuery, Athena."""
    return f"date={day.isoformat()}"


# ---------------------------------------------------------------------------------------------------------
# Records to lines and rows


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, Decimal)):
        return str(value)  # str(Decimal) keeps every digit: "190.00", never a float
    from enlivy_provider.client import dumps_json

    return dumps_json(value).decode("utf-8")


def invoice_row(invoice: Mapping[str, Any]) -> list[str]:
    """The invoice as a row of ``INVOICE_COLUMNS`` (missing fields are empty, amounts exact decimal text)."""
    line_items = invoice.get("line_items")
    values = {**invoice, "line_item_count": len(line_items) if isinstance(line_items, list) else None}
    return [_csv_value(values.get(column)) for column in INVOICE_COLUMNS]


def invoice_line(invoice: Mapping[str, Any]) -> bytes:
    """The invoice as one JSON Lines line; amounts stay JSON numbers written digit for digit from Decimal."""
    from enlivy_provider.client import dumps_json

    return dumps_json(invoice) + b"\n"


# ---------------------------------------------------------------------------------------------------------
# Writing one partition atomically


class PartitionWriter:
    """Writes one partition's files under temporary names; ``commit()`` moves them over the final names.

    Use as a context manager: leaving it without ``commit()`` (an error while reading the API, a kill
    signal turned into an exception) deletes the temporary files and leaves the previous partition as it was.
    Temporary names start with ``.`` so readers globbing ``date=*/invoices.*`` never see them.
    """

    def __init__(self, directory: ObjectStoragePath, formats: Sequence[str]) -> None:
        self.directory = directory
        self.formats = tuple(formats)
        self.invoices = 0
        self.line_items = 0
        token = uuid.uuid4().hex
        self._temporary = {fmt: directory / f".{FILE_NAMES[fmt]}.{token}.tmp" for fmt in self.formats}
        self._files: dict[str, Any] = {}
        self._csv: Any = None
        self._committed = False

    def __enter__(self) -> PartitionWriter:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            if "jsonl" in self.formats:
                self._files["jsonl"] = self._temporary["jsonl"].open("wb")
            if "csv" in self.formats:
                text = self._temporary["csv"].open("w", encoding="utf-8", newline="")
                self._files["csv"] = text
                self._csv = csv.writer(text)
                self._csv.writerow(INVOICE_COLUMNS)
        except BaseException:
            self._discard()
            raise
        return self

    def write(self, invoice: Mapping[str, Any]) -> None:
        if "jsonl" in self._files:
            self._files["jsonl"].write(invoice_line(invoice))
        if self._csv is not None:
            self._csv.writerow(invoice_row(invoice))
        self.invoices += 1
        line_items = invoice.get("line_items")
        self.line_items += len(line_items) if isinstance(line_items, list) else 0

    def commit(self) -> dict[str, str]:
        """Close the temporary files and move each over its final name; returns {format: final URL}."""
        self._close()
        finals: dict[str, str] = {}
        for fmt in self.formats:
            final = self.directory / FILE_NAMES[fmt]
            self._temporary[fmt].replace(final)
            finals[fmt] = str(final)
        self._committed = True
        return finals

    def __exit__(self, *exc_info: object) -> None:
        if not self._committed:
            self._discard()

    def _close(self) -> None:
        files, self._files, self._csv = self._files, {}, None
        for handle in files.values():
            handle.close()

    def _discard(self) -> None:
        try:
            self._close()
        finally:
            for path in self._temporary.values():
                try:
                    path.unlink(missing_ok=True)
                except OSError:  # best effort: a leftover hidden .tmp file is ignored by readers
                    log.warning("could not delete temporary export file %s", path, exc_info=True)


# ---------------------------------------------------------------------------------------------------------
# Reading a day from the API


def _total(meta: Mapping[str, Any]) -> int | None:
    pagination = meta.get("pagination")
    if isinstance(pagination, Mapping) and isinstance(pagination.get("total"), int):
        return int(pagination["total"])
    return None


@dataclass
class _Listing:
    """The pages of one listing, with what is needed to tell whether it held still while being read."""

    totals: set[int]
    received: int = 0
    pages: int = 0
    seen: set[int] = field(default_factory=set)  # hashes of the ids received: ~100 bytes per invoice
    repeated: bool = False

    def first_sight(self, invoice: Mapping[str, Any]) -> bool:
        """Record the invoice's id; False when this walk already received it (a hash collision, about 1 in
        10^9 for a day of 100,000 invoices, only costs a needless re-read)."""
        invoice_id = invoice.get("id")
        if not isinstance(invoice_id, str):
            return True
        key = hash(invoice_id)
        if key in self.seen:
            self.repeated = True
            return False
        self.seen.add(key)
        return True

    @property
    def consistent(self) -> bool:
        """Offset pagination skips a record when another one moves mid-walk from a page already read:
        - out of the listing (updated past the window, deleted): every page reports a total, and they (and
          the count received) agree only if none left;
        - to a later page, still in the window (updated again in a window reaching into the present, so it
          sorts last by ``updated_at``): the total stays, but that invoice is received a second time."""
        return (
            not self.repeated
            and len(self.totals) <= 1
            and all(total == self.received for total in self.totals)
        )


def iter_day(
    client: EnlivyClient, window: DayWindow, filters: Mapping[str, Any], page_size: int, listing: _Listing
) -> Iterator[dict[str, Any]]:
    """The day's invoices, one API page at a time (only one page is ever held in memory)."""
    from enlivy_provider.client.core import next_page

    page: int | None = 1
    while page is not None:
        result = client.list_invoices_page(page=page, per_page=page_size, **filters, **window.filters)
        listing.pages += 1
        listing.received += len(result.items)
        total = _total(result.meta)
        if total is not None:
            listing.totals.add(total)
        for invoice in result.items:
            if listing.first_sight(invoice) and window.contains(invoice):
                yield invoice
        page = next_page(result.meta, page)


@dataclass(frozen=True)
class ExportSettings:
    """What to write and how to read: formats, API page size, whether soft-deleted invoices are included."""

    formats: tuple[str, ...] = FORMATS
    page_size: int = 50
    include_deleted: bool = True

    def __post_init__(self) -> None:
        if not self.formats or any(fmt not in FORMATS for fmt in self.formats):
            raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {self.formats!r}")
        if not 1 <= self.page_size <= 50:
            raise ValueError(f"page_size must be between 1 and 50 (the API's maximum), got {self.page_size}")

    @property
    def filters(self) -> dict[str, Any]:
        """List filters besides the window. Oldest change first: a stable order keeps re-runs byte for byte the
        same, and it is the order of the window's own index (the emulator pages 100,000 invoices at a flat
        ~5 ms per page this way, against a cost growing with the offset when ordered by ``created_at``)."""
        filters: dict[str, Any] = {"include": "line_items", "order_by": "updated_at", "order": "asc"}
        if self.include_deleted:
            filters["deleted"] = -1
        return filters


def export_day(
    client: EnlivyClient, destination: ObjectStoragePath, window: DayWindow, settings: ExportSettings
) -> dict[str, Any]:
    """Export one day into ``destination/date=YYYY-MM-DD/``, replacing what was there; returns its summary.

    The day is read again (up to ``MAX_READ_ATTEMPTS`` times) when the listing changed while it was paged
    through, and the partition is only committed after a read that held still.
    """
    directory = destination / partition_name(window.day)
    for attempt in range(1, MAX_READ_ATTEMPTS + 1):
        listing = _Listing(totals=set())
        with PartitionWriter(directory, settings.formats) as writer:
            for invoice in iter_day(client, window, settings.filters, settings.page_size, listing):
                writer.write(invoice)
            if listing.consistent:
                files = writer.commit()
                log.info(
                    "Exported %d invoices (%d line items, %d pages) updated on %s to %s",
                    writer.invoices,
                    writer.line_items,
                    listing.pages,
                    window.day,
                    directory,
                )
                return {
                    "date": window.day.isoformat(),
                    "invoices": writer.invoices,
                    "line_items": writer.line_items,
                    "files": files,
                }
        log.warning(
            "The invoice listing for %s changed while it was read (totals %s, %d received); reading it "
            "again (attempt %d of %d)",
            window.day,
            sorted(listing.totals),
            listing.received,
            attempt,
            MAX_READ_ATTEMPTS,
        )
    raise EnlivyExportListingChangedError(
        f"the invoice listing for {window.day} kept changing while it was read ({MAX_READ_ATTEMPTS} attempts); "
        "the previous partition is unchanged"
    )


def export_invoices(
    client: EnlivyClient,
    destination: ObjectStoragePath,
    updated_from: Any,
    updated_to: Any,
    settings: ExportSettings | None = None,
) -> dict[str, Any]:
    """Export every UTC day of ``[updated_from, updated_to)``; returns the JSON-safe summary (the XCom)."""
    settings = settings or ExportSettings()
    windows = day_windows(updated_from, updated_to)
    partitions = [export_day(client, destination, window, settings) for window in windows]
    return {
        "destination": str(destination),
        "updated_from": _iso_z(windows[0].start),
        "updated_to": _iso_z(windows[-1].end),
        "invoices": sum(p["invoices"] for p in partitions),
        "line_items": sum(p["line_items"] for p in partitions),
        "partitions": partitions,
    }


# ---------------------------------------------------------------------------------------------------------
# The operator


class EnlivyExportInvoicesOperator(BaseOperator, EnlivyLineageMixin):
    """Export the invoices updated during a window (by default the run's data interval) with their line items.

    :param destination: ``ObjectStoragePath`` URL (templated) under which ``date=YYYY-MM-DD/`` partitions are
        written, e.g. ``file:///data/enlivy``, ``s3://aws_default@bucket/enlivy/invoices``.
    :param updated_from: window start (templated), a UTC midnight. Default (None): the start of the run's
        data interval, or, for a run without one (triggered without a logical date), of the last whole
        interval of the DAG's timetable before the run was triggered (:mod:`enlivy_provider.run_dates`).
    :param updated_to: window end, exclusive (templated), a UTC midnight. Default (None): that interval's end.
    :param formats: which files to write: ``"jsonl"`` (invoices with line items) and/or ``"csv"`` (flat table).
    :param page_size: invoices per API page (1..50).
    :param include_deleted: also export soft-deleted invoices (``deleted_at`` set), so deletions reach the
        warehouse; sent as ``deleted=-1``.
    :param enlivy_conn_id: the Enlivy connection.

    Asset events: for every ``AssetAlias`` in ``outlets``, one event per file written, on the asset whose URI
    is the file's URL without connection id or credentials (``file:///data/enlivy/date=2026-10-01/invoices.csv``,
    ``s3://bucket/enlivy/date=2026-10-01/invoices.jsonl``, the file's OpenLineage name), with ``extra``
    ``{"date": "YYYY-MM-DD", "rows": <invoices in the file>, "format": "jsonl"|"csv"}``. Without an alias in
    ``outlets`` the operator records none (as before). Airflow keeps the events of a successful task only.

    Returns ``{"destination", "updated_from", "updated_to", "invoices", "line_items", "partitions": [{"date",
    "invoices", "line_items", "files": {format: url}}]}``. API answers 4xx (other than 429) fail the task
    without retries; 429, 5xx, connection errors and a listing that kept changing are left to Airflow's retries.
    """

    template_fields: Sequence[str] = ("destination", "updated_from", "updated_to")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        destination: str | ObjectStoragePath,
        updated_from: Any = None,
        updated_to: Any = None,
        formats: Sequence[str] = FORMATS,
        page_size: int = 50,
        include_deleted: bool = True,
        enlivy_conn_id: str = "enlivy_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.destination = destination
        self.updated_from = updated_from
        self.updated_to = updated_to
        self.settings = ExportSettings(tuple(dict.fromkeys(formats)), page_size, include_deleted)
        self.enlivy_conn_id = enlivy_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        from enlivy_provider.client import EnlivyAPIError, EnlivyInvalidRequestError
        from enlivy_provider.hooks.enlivy import EnlivyHook

        updated_from, updated_to = self._window(context)
        try:
            day_windows(updated_from, updated_to)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        destination = ObjectStoragePath(self.destination)
        hook = EnlivyHook(enlivy_conn_id=self.enlivy_conn_id)
        try:
            summary = export_invoices(hook.get_client(), destination, updated_from, updated_to, self.settings)
            self._record_lineage(hook, summary)
            self._record_asset_events(context, summary)
            return summary
        except EnlivyInvalidRequestError as exc:
            raise AirflowFailException(str(exc)) from exc
        except EnlivyAPIError as exc:
            if exc.retryable or exc.status >= 500:
                raise
            raise AirflowFailException(f"Enlivy API refused the export: {exc}") from exc
        finally:
            hook.close()

    def _record_lineage(self, hook: EnlivyHook, summary: Mapping[str, Any]) -> None:
        """Read: the organization's invoices; written: each partition's files, with their rows (and the CSV's
        columns)."""
        csv_columns = typed_columns(INVOICE_COLUMNS, INVOICE_COLUMN_TYPES)
        outputs = [
            file_dataset(url, partition["invoices"], csv_columns if fmt == "csv" else None)
            for partition in summary["partitions"]
            for fmt, url in partition["files"].items()
        ]
        self.record_lineage([invoices_dataset(hook)], outputs)

    def _record_asset_events(self, context: Context, summary: Mapping[str, Any]) -> None:
        """One event per committed file on each asset alias in ``outlets``: a re-run that replaced a file
        records it again, so a DAG scheduled on the alias sees every new version of a partition."""
        from airflow.providers.common.compat.sdk import Asset, AssetAlias

        aliases = [outlet for outlet in self.outlets or [] if isinstance(outlet, AssetAlias)]
        if not aliases:
            return
        for partition in summary["partitions"]:
            for fmt, url in partition["files"].items():
                asset = Asset(uri=asset_uri(file_dataset(url)))
                # Both files hold one row per invoice (the CSV's header is not counted).
                extra = {"date": partition["date"], "rows": partition["invoices"], "format": fmt}
                for alias in aliases:
                    context["outlet_events"][alias].add(asset, extra=extra)

    def _window(self, context: Context) -> tuple[Any, Any]:
        """The window's ends as given, the run's interval filling in the ones left at None."""
        if self.updated_from is not None and self.updated_to is not None:
            return self.updated_from, self.updated_to
        from enlivy_provider.run_dates import run_data_interval

        interval = run_data_interval(context)
        if interval is None:
            raise AirflowFailException(
                "no export window: give updated_from and updated_to, or run the task in a DAG run "
                "(its data interval, or its timetable's last whole interval before it was triggered)"
            )
        return (
            interval[0] if self.updated_from is None else self.updated_from,
            interval[1] if self.updated_to is None else self.updated_to,
        )


__all__ = [
    "FILE_NAMES",
    "FORMATS",
    "INVOICE_COLUMNS",
    "DayWindow",
    "EnlivyExportInvoicesOperator",
    "EnlivyExportListingChangedError",
    "ExportSettings",
    "PartitionWriter",
    "day_windows",
    "export_day",
    "export_invoices",
    "invoice_line",
    "invoice_row",
    "parse_instant",
]
