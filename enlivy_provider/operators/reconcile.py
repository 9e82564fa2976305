"""Reconcile a billing run against Enlivy (docs/operators.md, "Reconciliation").

``EnlivyReconcileInvoicesOperator`` reads what a run *should* have invoiced (the bulk create operator's XCom, a
JSON or CSV file, rows from a callable), checks every row before any request, then lists the invoices issued
in the period's window page by page (``include=line_items``, soft-deleted ones too) and compares them with
:mod:`enlivy_provider.invoices.reconcile`. It writes every finding to a report file (``ObjectStoragePath``),
logs an aligned table, returns a small JSON-safe summary and fails (without retries) when a category named in
``fail_on`` has findings.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from enlivy_provider.invoices.billing_identity import check_billing_key
from enlivy_provider.invoices.billing_period import BillingPeriod, parse_billing_period, parse_date
from enlivy_provider.invoices.errors import InvoiceValidationError, ValidationIssue
from enlivy_provider.invoices.expected_index import ExpectedIndex
from enlivy_provider.invoices.reconcile import (
    DEFAULT_FAIL_ON,
    REPORT_COLUMNS,
    Finding,
    Reconciliation,
    check_fail_on,
    failed_categories,
    index_expected,
    iter_examples,
    rows_from_bulk_result,
)
from enlivy_provider.lineage import EnlivyLineageMixin, file_dataset, invoices_dataset
from enlivy_provider.text_table import format_table

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context, ObjectStoragePath

    from enlivy_provider.client import EnlivyClient
    from enlivy_provider.hooks.enlivy import EnlivyHook

# How long after a period ends its invoices may still be issued (the run dated the day after it ends, late
# runs, backfills): the default listing window is the period's first day to its last day plus this.
DEFAULT_ISSUE_GRACE_DAYS = 45
TABLE_COLUMNS = (
    ("category", "category"),
    ("customer_id", "customer"),
    ("billing_key", "billing key"),
    ("period_start", "from"),
    ("period_end", "to"),
    ("invoice_ids", "invoices"),
    ("status", "status"),
    ("currency", "currency"),
    ("expected_total", "expected"),
    ("invoiced_total", "invoiced"),
    ("difference", "difference"),
)
AMOUNT_COLUMNS = ("expected_total", "invoiced_total", "difference")


# ------------------------------------------------------------------------------------------- expected input


def load_expected_rows(source: Any) -> Iterable[Any]:
    """Rows from a list, a bulk create result (``{"created": [...], ...}``), a callable, or a file URL/path
    (``.json``: a list or a bulk result; ``.csv``: a header row and one row per billing)."""
    if callable(source):
        source = source()
    if isinstance(source, Mapping):
        if "expected" in source:
            return list(source["expected"])
        return rows_from_bulk_result(source)
    if isinstance(source, str):
        return _read_file(source)
    if isinstance(source, Iterable):
        return list(source)
    raise InvoiceValidationError(
        [
            ValidationIssue(
                "expected", f"must be rows, a bulk result, a file URL or a callable (got {source!r})"
            )
        ],
        subject="expected invoices",
    )


def _read_file(url: str) -> Iterable[Any]:
    if url.lower().endswith(".csv"):
        return _csv_rows(url)
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    with ObjectStoragePath(url).open("r", encoding="utf-8") as handle:
        text = handle.read()
    try:
        # Amounts as Decimal, never float: json's float parsing would lose the exact total.
        data = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise InvoiceValidationError(
            [ValidationIssue("expected", f"{url} is not JSON: {exc}")], subject="expected invoices"
        ) from exc
    return load_expected_rows(data)


def _csv_rows(url: str) -> Iterator[dict[str, str]]:
    """Row by row: only the parsed billings are kept, not the file's text or its row dicts."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    with ObjectStoragePath(url).open("r", encoding="utf-8", newline="") as handle:
        # Lines through readline: Airflow 2's ObjectStoragePath hands out a wrapper that cannot be iterated.
        yield from csv.DictReader(iter(handle.readline, ""))


# ----------------------------------------------------------------------------------------------- the report


class ReportWriter:
    """Findings streamed to a CSV (``.csv``) or JSON (otherwise: one array) file as they are found."""

    def __init__(self, path: ObjectStoragePath) -> None:
        self.path = path
        self.rows = 0
        self._json = not str(path).lower().endswith(".csv")
        self._handle: Any = None
        self._csv: Any = None

    def __enter__(self) -> ReportWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("w", encoding="utf-8", newline="")
        if self._json:
            self._handle.write("[")
        else:
            self._csv = csv.DictWriter(self._handle, fieldnames=REPORT_COLUMNS)
            self._csv.writeheader()
        return self

    def write(self, finding: Finding) -> None:
        if self._json:
            self._handle.write(("\n" if self.rows == 0 else ",\n") + json.dumps(finding))
        else:
            self._csv.writerow(finding)
        self.rows += 1

    def __exit__(self, *exc_info: object) -> None:
        if self._json:
            self._handle.write("\n]\n")
        self._handle.close()


# ------------------------------------------------------------------------------------------- listing Enlivy


def iter_period_invoices(
    client: EnlivyClient, issued_from: dt.date, issued_to: dt.date, page_size: int
) -> Iterator[dict[str, Any]]:
    """Invoices issued in ``[issued_from, issued_to]`` (soft-deleted too), with their lines, page by page."""
    return client.list_invoices(
        include="line_items",
        deleted=-1,
        issued_at_from=issued_from.isoformat(),
        issued_at_to=issued_to.isoformat(),
        order_by="issued_at",
        order="asc",
        per_page=page_size,
    )


def reconcile(
    invoices: Iterable[Mapping[str, Any]],
    expected: ExpectedIndex,
    *,
    reference_date: dt.date,
    emit: Callable[[Finding], None],
    examples: int,
    period: BillingPeriod | None,
    billing_key: str | None,
) -> dict[str, Any]:
    work = Reconciliation(
        expected,
        reference_date,
        emit,
        examples_per_category=examples,
        extra_periods=(period,) if period else (),
        extra_keys=(billing_key,) if billing_key else (),
    )
    for invoice in invoices:
        work.add(invoice)
    return work.finish()


# --------------------------------------------------------------------------------------------- the operator


class EnlivyReconcileInvoicesOperator(BaseOperator, EnlivyLineageMixin):
    """Compare what a billing run should have invoiced with what Enlivy holds for the period.

    :param expected: the expected billings: a list of rows ``{customer_id, billing_key, period_start,
        period_end, total, currency}``, the bulk create operator's return value, a file URL/path (``.json`` or
        ``.csv``, read through ``ObjectStoragePath``) or a callable returning either (templated).
    :param billing_key: the billing key of rows that carry none (the bulk operator's summaries do not).
    :param billing_period: the period of rows that carry none: ``{"start", "end"}`` or ``"data_interval"``;
        invoices billing it with this billing key are reported as unexpected when no row expects them.
    :param report_path: ``ObjectStoragePath`` URL of the report file (``.csv``, else JSON), templated.
    :param fail_on: categories that fail the task (:data:`~enlivy_provider.invoices.reconcile.CATEGORIES`).
    :param reference_date: the day ageing counts to; default the run's reference date (``run_dates``).
    :param issued_from: first day of the listing window (inclusive); default the earliest period's first day.
    :param issued_to: last day of the listing window (inclusive); default the latest period's last day plus
        ``DEFAULT_ISSUE_GRACE_DAYS``.
    :param examples: findings per category kept in the XCom (all of them are in the report).
    """

    template_fields: Sequence[str] = (
        "expected",
        "billing_key",
        "billing_period",
        "report_path",
        "reference_date",
        "issued_from",
        "issued_to",
    )
    template_fields_renderers = {"expected": "json", "billing_period": "json"}
    ui_color = "#fdf2e8"

    def __init__(
        self,
        *,
        expected: Any,
        report_path: str,
        billing_key: str | None = None,
        billing_period: Any = None,
        fail_on: Iterable[str] | str = DEFAULT_FAIL_ON,
        reference_date: Any = None,
        issued_from: Any = None,
        issued_to: Any = None,
        examples: int = 10,
        page_size: int = 50,
        enlivy_conn_id: str = "enlivy_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.expected = expected
        self.report_path = report_path
        self.billing_key = billing_key
        self.billing_period = billing_period
        self.fail_on = fail_on
        self.reference_date = reference_date
        self.issued_from = issued_from
        self.issued_to = issued_to
        self.examples = examples
        self.page_size = page_size
        self.enlivy_conn_id = enlivy_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        from enlivy_provider.run_dates import RunInfo

        run = RunInfo.from_context(context)
        # The expected rows go to a temporary on-disk index (expected_index.py), not into memory.
        with ExpectedIndex() as expected:
            try:
                period, key, fail_on, reference, window = self._checked(run, expected)
            except InvoiceValidationError as exc:
                raise AirflowFailException(str(exc)) from exc
            report = ObjectStoragePath(self.report_path)
            summary = self._run(expected, period, key, reference, window, report)
        summary.update(
            report=str(report),
            period=period.as_dict() if period else None,
            issued_from=window[0].isoformat(),
            issued_to=window[1].isoformat(),
        )
        self._log_summary(summary)
        failed = failed_categories(summary["counts"], fail_on)
        summary["failed_on"] = failed
        if failed:
            counts = ", ".join(f"{category}: {summary['counts'][category]}" for category in failed)
            raise AirflowFailException(
                f"reconciliation found {counts} (fail_on={list(fail_on)}); see {report}"
            )
        return summary

    def _checked(
        self, run: Any, expected: ExpectedIndex
    ) -> tuple[
        BillingPeriod | None,
        str | None,
        tuple[str, ...],
        dt.date,
        tuple[dt.date, dt.date],
    ]:
        issues: list[ValidationIssue] = []
        key, found = check_billing_key(self.billing_key)
        issues += found
        period, found = parse_billing_period(self.billing_period, data_interval=run.data_interval)
        issues += found
        fail_on, found = check_fail_on(self.fail_on)
        issues += found
        reference = run.reference_date if self.reference_date is None else parse_date(self.reference_date)
        if reference is None:
            issues.append(ValidationIssue("reference_date", f"must be a date (got {self.reference_date!r})"))
        if not 1 <= int(self.page_size) <= 50:
            issues.append(ValidationIssue("page_size", f"must be between 1 and 50 (got {self.page_size})"))
        if issues:
            raise InvoiceValidationError(issues, subject="reconciliation arguments")
        index_expected(
            load_expected_rows(self.expected), expected, default_billing_key=key, default_period=period
        )
        assert reference is not None
        return period, key, fail_on, reference, self._window(expected, period)

    def _window(self, expected: ExpectedIndex, period: BillingPeriod | None) -> tuple[dt.date, dt.date]:
        periods = [*expected.periods.values(), *([period] if period else [])]
        issues: list[ValidationIssue] = []
        low = parse_date(self.issued_from) if self.issued_from is not None else None
        high = parse_date(self.issued_to) if self.issued_to is not None else None
        for name, raw, value in (("issued_from", self.issued_from, low), ("issued_to", self.issued_to, high)):
            if raw is not None and value is None:
                issues.append(ValidationIssue(name, f"must be a date YYYY-MM-DD (got {raw!r})"))
        if (low is None or high is None) and not periods and not issues:
            issues.append(ValidationIssue("billing_period", "is required when there are no expected rows"))
        if issues:
            raise InvoiceValidationError(issues, subject="reconciliation arguments")
        low = low or min(p.start for p in periods)
        high = high or max(p.end for p in periods) + dt.timedelta(days=DEFAULT_ISSUE_GRACE_DAYS)
        return low, high

    def _run(
        self,
        expected: ExpectedIndex,
        period: BillingPeriod | None,
        key: str | None,
        reference: dt.date,
        window: tuple[dt.date, dt.date],
        report: ObjectStoragePath,
    ) -> dict[str, Any]:
        from enlivy_provider.client import EnlivyAPIError
        from enlivy_provider.hooks.enlivy import EnlivyHook

        hook = EnlivyHook(enlivy_conn_id=self.enlivy_conn_id)
        try:
            with ReportWriter(report) as writer:
                invoices = iter_period_invoices(hook.get_client(), window[0], window[1], int(self.page_size))
                summary = reconcile(
                    invoices,
                    expected,
                    reference_date=reference,
                    emit=writer.write,
                    examples=self.examples,
                    period=period,
                    billing_key=key,
                )
            summary["report_rows"] = writer.rows
            self._record_lineage(hook, report, writer.rows)
            return summary
        except EnlivyAPIError as exc:
            if exc.retryable or exc.status >= 500:
                raise
            raise AirflowFailException(f"Enlivy API refused the invoice listing: {exc}") from exc
        finally:
            hook.close()

    def _record_lineage(self, hook: EnlivyHook, report: ObjectStoragePath, rows: int) -> None:
        """Read: the period's invoices (and the expected rows' file, when given as one); written: the report.
        Noted before the ``fail_on`` check: a reconciliation failed by its findings still read and wrote them
        (OpenLineage's failure event falls back to ``get_openlineage_facets_on_complete``)."""
        inputs = [invoices_dataset(hook)]
        if isinstance(self.expected, str):
            inputs.append(file_dataset(self.expected))
        columns = dict.fromkeys(REPORT_COLUMNS, "string") if str(report).lower().endswith(".csv") else {}
        self.record_lineage(inputs, [file_dataset(str(report), rows, columns)])

    def _log_summary(self, summary: Mapping[str, Any]) -> None:
        counts = ", ".join(f"{category} {n}" for category, n in summary["counts"].items())
        self.log.info(
            "Reconciled %d expected billings against %d invoices (%d in scope): %s",
            summary["expected"],
            summary["invoices_read"],
            summary["invoices_in_scope"],
            counts,
        )
        rows = list(iter_examples(summary))
        if rows:
            table = format_table(rows, TABLE_COLUMNS, right=AMOUNT_COLUMNS, indent="  ")
            self.log.info(
                "Findings (up to %d per category; all in %s):\n%s", self.examples, summary["report"], table
            )
        totals = [{"currency": currency, **amounts} for currency, amounts in summary["totals"].items()]
        if totals:
            columns = (
                ("currency", "currency"),
                ("expected", "expected"),
                ("invoiced", "invoiced"),
                ("difference", "difference"),
            )
            self.log.info(
                "Totals per currency:\n%s",
                format_table(totals, columns, right=("expected", "invoiced", "difference"), indent="  "),
            )
        ageing = [
            {
                "bucket": name,
                "count": str(entry["count"]),
                "totals": ", ".join(f"{a} {c}" for c, a in entry["totals"].items()),
            }
            for name, entry in summary["ageing"].items()
        ]
        self.log.info(
            "Unpaid invoices by days past due on %s:\n%s",
            summary["reference_date"],
            format_table(
                ageing,
                (("bucket", "days past due"), ("count", "invoices"), ("totals", "amount")),
                right=("count",),
                indent="  ",
            ),
        )


__all__ = ["EnlivyReconcileInvoicesOperator", "ReportWriter", "load_expected_rows", "reconcile"]
