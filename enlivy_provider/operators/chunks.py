"""Billing in chunks across workers (docs/operators.md, "Billing in chunks").

``EnlivyPlanInvoiceChunksOperator`` cuts a JSON Lines file of invoice specs into chunk descriptors;
``EnlivyCreateInvoicesOperator.partial(...).expand(chunk=plan.output)`` bills one chunk per mapped task;
``EnlivySummarizeInvoiceChunksOperator`` adds their small results up and fails when a chunk did not finish.
The rules (plan, digest, reading a chunk, adding up) are in :mod:`enlivy_provider.invoices.chunks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from enlivy_provider.invoices.chunks import (
    Chunk,
    ChunkChangedError,
    Opener,
    check_chunking,
    parse_chunk,
    plan_chunks,
    read_chunk,
    summarize_chunks,
)
from enlivy_provider.invoices.errors import InvoiceValidationError, ValidationIssue, raise_if_issues
from enlivy_provider.text_table import format_table

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


def source_opener(source: str) -> Opener:
    """Open the specs file for binary reads, wherever ``ObjectStoragePath`` reaches (file, s3, gcs, ...)."""
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    path = ObjectStoragePath(source)
    return lambda: path.open("rb")


def load_chunk(value: object) -> tuple[Chunk, list[Any], list[str]]:
    """The chunk a mapped task was given and its rows (with the ``line N`` path of each). Fails the task
    without retries — before any request — when the descriptor is malformed, a row is not JSON, the file is
    gone or it changed since it was planned: retrying cannot make any of these bill the planned rows."""
    chunk, issues = parse_chunk(value)
    if chunk is None:
        raise AirflowFailException(str(InvoiceValidationError(issues, subject="chunk")))
    try:
        rows, paths, found = read_chunk(source_opener(chunk.source), chunk)
        raise_if_issues(found, subject=f"{chunk.label} of {chunk.source}")
    except (InvoiceValidationError, ChunkChangedError) as exc:
        raise AirflowFailException(str(exc)) from None
    except FileNotFoundError:
        raise AirflowFailException(f"{chunk.label}: {chunk.source} does not exist (any more)") from None
    return chunk, rows, paths


class EnlivyPlanInvoiceChunksOperator(BaseOperator):
    """Cut a JSON Lines file of invoice specs (one bulk spec per line) into chunk descriptors, one per mapped
    create task; returns the list of descriptors (a few hundred bytes each, never the rows).

    :param source: ``ObjectStoragePath`` URL (or local path) of the file, e.g.
        ``s3://billing/{{ ds }}/invoice-specs.jsonl`` (templated).
    :param chunks: how many chunks (rows split as evenly as possible), or
    :param rows_per_chunk: how many rows at most per chunk (the chunk count follows from the file).

    Deterministic: the same file always gives the same chunks, each with the SHA-256 of its bytes, so a
    retried or re-run chunk bills the rows it was planned with or refuses. The plan reads the file twice and
    makes no API request; it fails without retries naming the line of a row that is not a JSON object, has
    neither key nor customer, or repeats another row's key.
    """

    template_fields: Sequence[str] = ("source", "chunks", "rows_per_chunk")
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        source: str,
        chunks: int | str | None = None,
        rows_per_chunk: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.chunks = chunks
        self.rows_per_chunk = rows_per_chunk

    def execute(self, context: Context) -> list[dict[str, Any]]:
        issues = check_chunking(self.chunks, self.rows_per_chunk)
        source = self.source.strip() if isinstance(self.source, str) else ""
        if not source:
            issues.append(
                ValidationIssue("source", f"must be the URL of a JSON Lines file (got {self.source!r})")
            )
        if issues:
            raise AirflowFailException(str(InvoiceValidationError(issues, subject="chunk plan")))
        try:
            plan, issues = plan_chunks(
                source_opener(source),
                source,
                chunks=None if self.chunks is None else int(self.chunks),
                rows_per_chunk=None if self.rows_per_chunk is None else int(self.rows_per_chunk),
            )
        except FileNotFoundError:
            raise AirflowFailException(f"source: {source} does not exist") from None
        if issues:
            raise AirflowFailException(
                str(InvoiceValidationError(issues, subject=f"invoice specs of {source}"))
            )
        smallest, largest = min(chunk.rows for chunk in plan), max(chunk.rows for chunk in plan)
        size = f"{smallest:,}" if smallest == largest else f"{smallest:,} to {largest:,}"
        self.log.info(
            "%s: %s invoice specs in %d chunks of %s rows", source, f"{plan[0].total_rows:,}", len(plan), size
        )
        return [chunk.as_dict() for chunk in plan]


class EnlivySummarizeInvoiceChunksOperator(BaseOperator):
    """Add the chunk results of a mapped create up, log a table per chunk and the run's totals, and fail
    (without retries) when a planned chunk reported nothing — it failed, so its invoices are not all billed.

    :param results: the mapped create task's output (``create.output``): one small result per chunk.
    :param chunks: the plan task's output, to know which chunks should have reported (optional).

    Runs whatever the chunks did (``trigger_rule="all_done"`` by default), so a failed chunk is reported next
    to the others' totals. Returns :func:`~enlivy_provider.invoices.chunks.summarize_chunks`'s dict.
    """

    template_fields: Sequence[str] = ("results", "chunks")
    ui_color = "#e8f1fb"

    def __init__(self, *, results: Any, chunks: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.results = results
        self.chunks = chunks

    def execute(self, context: Context) -> dict[str, Any]:
        results = [r for r in (self.results or []) if isinstance(r, Mapping)]
        planned = [c for c in self.chunks if isinstance(c, Mapping)] if self.chunks is not None else None
        summary = summarize_chunks(results, planned)
        rows = [
            {
                "chunk": f"{int(r['chunk']) + 1}/{r['chunks']}",
                "rows": f"{r['rows']:,}",
                **{name: f"{r['counts'][name]:,}" for name in ("created", "existing", "replayed", "failed")},
                "attempt": str(r.get("attempt", 1)),
                "seconds": f"{r.get('seconds', 0):,.1f}",
            }
            for r in sorted(results, key=lambda item: int(item["chunk"]))
        ]
        numbers = ("rows", "created", "existing", "replayed", "failed", "attempt", "seconds")
        columns = [("chunk", "chunk"), *((name, name) for name in numbers)]
        self.log.info("Chunk results:\n%s", format_table(rows, columns, right=numbers))
        counts = summary["counts"]
        amounts = ", ".join(
            f"{currency} {Decimal(amount):,.2f}" for currency, amount in summary["totals"].items()
        )
        self.log.info(
            "Total: %s of %s rows in %d of %d chunks: %s created, %s existing, %s replayed, %s failed, "
            "%s invalid; billed %s",
            f"{summary['rows']:,}",
            f"{summary['total_rows']:,}",
            summary["chunks_reported"],
            summary["chunks"],
            *(f"{counts[name]:,}" for name in ("created", "existing", "replayed", "failed", "invalid")),
            amounts or "nothing",
        )
        for retried in summary["retried_chunks"]:
            self.log.info(
                "chunk %d/%d needed %d attempts", retried["chunk"] + 1, summary["chunks"], retried["attempt"]
            )
        if summary["missing_chunks"]:
            missing = ", ".join(f"{index + 1}/{summary['chunks']}" for index in summary["missing_chunks"])
            raise AirflowFailException(
                f"chunks {missing} did not finish: their rows are not all billed (see their logs; clearing a "
                "chunk task bills only what it has not billed yet)"
            )
        return summary
