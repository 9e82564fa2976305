"""Chunks of a large billing run: one JSON Lines file of invoice specs cut into contiguous line ranges, each
billed by one mapped task (docs/operators.md, "Billing in chunks").

The plan is deterministic: the same file and chunk count always give the same byte ranges, and each chunk
carries the SHA-256 of its bytes, so a retry or a re-run of chunk *i* bills exactly the rows it was planned
with — or refuses, naming the chunk, when the file changed since (nothing is written then). A chunk is a
small descriptor (a URL, offsets, counts and a digest), never the rows themselves: 100,000 specs do not
travel through XCom.

What keeps chunks from billing twice is not the plan but the billing identity
(:mod:`enlivy_provider.invoices.billing_identity`): every invoice is one billing (organization, customer,
period, billing key), looked up before it is created and created under the billing's Idempotency-Key.
Two chunks that were given the same customer, a retried chunk and a re-run with another chunk count all
meet the same invoice.

Nothing here talks to Airflow or Enlivy; the operators open the file (``ObjectStoragePath``) and pass a
function returning a binary file object.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

from enlivy_provider.invoices.customer import parse_customer
from enlivy_provider.invoices.errors import ValidationIssue, join_path
from enlivy_provider.invoices.jsontext import loads_strict

Opener = Callable[[], AbstractContextManager[IO[bytes]]]
MAX_CHUNKS = 10_000  # Airflow maps at most [core] max_map_length tasks (1,024 by default) anyway
ISSUES_LISTED = 20  # a plan of a badly broken file names this many problems, then counts the rest
CHUNK_FIELDS = ("source", "chunk", "chunks", "rows", "first_line", "start", "end", "digest", "total_rows")


@dataclass(frozen=True)
class Chunk:
    """One chunk of a source file: rows ``first_line``.. in bytes ``start``..``end`` (exclusive)."""

    source: str  # ObjectStoragePath URL of the JSON Lines file
    index: int  # 0-based: the map index of the task that bills it
    count: int  # how many chunks the file was cut into
    rows: int  # invoice specs (non-blank lines) in the chunk
    first_line: int  # 1-based line number of its first byte
    start: int
    end: int
    digest: str  # SHA-256 (hex) of the bytes start..end
    total_rows: int  # specs in the whole file

    @property
    def label(self) -> str:
        return f"chunk {self.index + 1}/{self.count}"

    def as_dict(self) -> dict[str, Any]:
        """The descriptor a mapped task receives (JSON-safe, a few hundred bytes)."""
        return {
            "source": self.source,
            "chunk": self.index,
            "chunks": self.count,
            "rows": self.rows,
            "first_line": self.first_line,
            "start": self.start,
            "end": self.end,
            "digest": self.digest,
            "total_rows": self.total_rows,
        }


def parse_chunk(value: object, path: str = "chunk") -> tuple[Chunk | None, list[ValidationIssue]]:
    """A descriptor made by :func:`plan_chunks` (as a dict, or its JSON text); field-named issues otherwise."""
    if isinstance(value, str):
        try:
            value, issues = loads_strict(value, path)
        except json.JSONDecodeError as exc:
            return None, [ValidationIssue(path, f"is not a chunk descriptor ({exc.msg})")]
        if issues:
            return None, issues
    if not isinstance(value, Mapping):
        return None, [
            ValidationIssue(
                path, f"must be a chunk descriptor from the plan task (got {type(value).__name__})"
            )
        ]
    issues = [
        ValidationIssue(join_path(path, name), "unknown field of a chunk descriptor")
        for name in sorted(set(map(str, value)) - set(CHUNK_FIELDS))
    ]
    source = value.get("source")
    if not isinstance(source, str) or not source.strip():
        issues.append(ValidationIssue(join_path(path, "source"), "must be the URL of the specs file"))
    numbers: dict[str, int] = {}
    for name in ("chunk", "chunks", "rows", "first_line", "start", "end", "total_rows"):
        raw = value.get(name)
        low = 1 if name in ("chunks", "first_line") else 0
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < low:
            issues.append(
                ValidationIssue(join_path(path, name), f"must be an integer >= {low} (got {raw!r})")
            )
        else:
            numbers[name] = raw
    digest = value.get("digest")
    if not isinstance(digest, str) or len(digest) != 64:
        issues.append(
            ValidationIssue(join_path(path, "digest"), "must be the SHA-256 hex digest of the chunk")
        )
    if not issues:
        if numbers["chunk"] >= numbers["chunks"]:
            issues.append(
                ValidationIssue(join_path(path, "chunk"), f"must be below chunks ({numbers['chunks']})")
            )
        if numbers["end"] < numbers["start"]:
            issues.append(ValidationIssue(join_path(path, "end"), "must not be before start"))
        if numbers["rows"] > numbers["total_rows"]:
            issues.append(ValidationIssue(join_path(path, "rows"), "must not exceed total_rows"))
    if issues:
        return None, issues
    assert isinstance(source, str) and isinstance(digest, str)
    return Chunk(
        source=source.strip(),
        index=numbers["chunk"],
        count=numbers["chunks"],
        rows=numbers["rows"],
        first_line=numbers["first_line"],
        start=numbers["start"],
        end=numbers["end"],
        digest=digest,
        total_rows=numbers["total_rows"],
    ), []


def check_chunking(chunks: object, rows_per_chunk: object) -> list[ValidationIssue]:
    """Exactly one of ``chunks`` (how many) and ``rows_per_chunk`` (how big), a positive integer."""
    given = {name: v for name, v in (("chunks", chunks), ("rows_per_chunk", rows_per_chunk)) if v is not None}
    if len(given) != 1:
        return [ValidationIssue("chunks", "give exactly one of chunks and rows_per_chunk")]
    [(name, raw)] = given.items()
    number = _integer(raw)
    top = MAX_CHUNKS if name == "chunks" else 10**9
    if number is None or not 1 <= number <= top:
        return [ValidationIssue(name, f"must be an integer from 1 to {top:,} (got {raw!r})")]
    return []


def _integer(value: object) -> int | None:
    """An int, or the text of one (a rendered template field)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def partition_key(row: Mapping[str, Any]) -> str | None:
    """What names a spec within the file: its ``key``, else its customer (an id, or an email, lower-cased) —
    the bulk operator's own default key, so the file-wide uniqueness rule is the operator's rule."""
    key = row.get("key")
    if isinstance(key, str | int) and not isinstance(key, bool) and str(key).strip():
        return str(key).strip()
    ref, issues = parse_customer(row.get("customer"))
    if ref is None or issues:
        return None
    return ref.id or (ref.email or "").lower()


def _lines(opener: Opener) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, raw line) of every line of the file; lines end at ``\\n`` only."""
    offset = 0
    with opener() as handle:
        # readline, not iteration: Airflow 2's ObjectStoragePath wraps the file in a proxy that is not iterable.
        for number, raw in enumerate(iter(handle.readline, b""), start=1):
            yield number, offset, raw
            offset += len(raw)


def _row(raw: bytes, where: str) -> tuple[Any, list[ValidationIssue]]:
    """One JSON Lines row, read as strictly as a rendered template (Decimal, no NaN, no repeated keys)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [ValidationIssue(where, f"is not UTF-8 text ({exc.reason} at byte {exc.start})")]
    try:
        value, issues = loads_strict(text, where)
    except json.JSONDecodeError as exc:
        return None, [ValidationIssue(where, f"is not valid JSON ({exc.msg} at column {exc.colno})")]
    if issues:
        return None, issues
    if not isinstance(value, dict):
        return None, [
            ValidationIssue(where, f"must be a JSON object, one invoice spec (got {type(value).__name__})")
        ]
    return value, []


def line_path(number: int) -> str:
    """How issues name a row of the file: ``line 17``."""
    return f"line {number}"


def plan_chunks(
    opener: Opener, source: str, *, chunks: int | None = None, rows_per_chunk: int | None = None
) -> tuple[list[Chunk], list[ValidationIssue]]:
    """Cut the file into contiguous chunks of (nearly) equal row counts: ``chunks`` of them, or as many as
    ``rows_per_chunk`` rows need. Two passes over the file: rows and keys, then each chunk's digest.

    Refused (issues name the line): a line that is not one JSON object, a row whose key or customer cannot
    name it, two rows with one key (the bulk operator's uniqueness rule, over the whole file), no rows at all.
    Every row is otherwise checked by its chunk before that chunk writes anything.
    """
    issues: list[ValidationIssue] = []
    unlisted = 0
    starts: list[int] = []  # byte offset of each row
    lines: list[int] = []  # line number of each row
    first_seen: dict[str, int] = {}
    size = line_count = 0
    for number, offset, raw in _lines(opener):
        size, line_count = offset + len(raw), number
        if not raw.strip():
            continue
        row, found = _row(raw, line_path(number))
        if not found and row is not None:
            key = partition_key(row)
            if key is None:
                found = [
                    ValidationIssue(
                        line_path(number),
                        "needs a 'key' or a 'customer' (an org_user_ id, an email, {'id'} or {'email'})",
                    )
                ]
            elif key in first_seen:
                found = [
                    ValidationIssue(
                        line_path(number),
                        f"key {key!r} is also on line {first_seen[key]}; give each spec a distinct 'key'",
                    )
                ]
            else:
                first_seen[key] = number
        if found:
            room = ISSUES_LISTED - len(issues)
            issues += found[: max(room, 0)]
            unlisted += max(len(found) - max(room, 0), 0)
        starts.append(offset)
        lines.append(number)
    if unlisted:
        issues.append(ValidationIssue("source", f"{unlisted} more problems not listed"))
    if not starts and not issues:
        issues.append(ValidationIssue("source", f"{source} has no invoice specs (no non-blank lines)"))
    if issues:
        return [], issues
    total = len(starts)
    count = chunks if chunks is not None else -(-total // (rows_per_chunk or total))
    # Chunk i holds rows total*i//count .. total*(i+1)//count - 1; its bytes run from the end of chunk i-1 to
    # the first byte of chunk i+1's first row, so the ranges tile the file (blank lines included).
    firsts = [index * total // count for index in range(count + 1)]
    ends = [starts[first] if first < total else size for first in firsts[1:]]
    bounds = []
    for index in range(count):
        first = firsts[index]
        start = 0 if index == 0 else ends[index - 1]
        line = 1 if index == 0 else (lines[first] if first < total else line_count + 1)
        bounds.append((firsts[index + 1] - first, line, start, ends[index]))
    digests = _digests(opener, [(start, end) for _, _, start, end in bounds])
    return [
        Chunk(source, index, count, rows, line, start, end, digest, total)
        for index, ((rows, line, start, end), digest) in enumerate(zip(bounds, digests, strict=True))
    ], []


def _digests(opener: Opener, ranges: Sequence[tuple[int, int]]) -> list[str]:
    """SHA-256 of each byte range, in one sequential read (the ranges are contiguous and ordered)."""
    hashes = [hashlib.sha256() for _ in ranges]
    position = 0
    current = 0
    with opener() as handle:
        while True:
            block = handle.read(1 << 20)
            if not block:
                break
            view = memoryview(block)
            while view and current < len(ranges):
                start, end = ranges[current]
                if position >= end:
                    current += 1
                    continue
                take = min(len(view), end - position)
                if position >= start:
                    hashes[current].update(view[:take])
                view, position = view[take:], position + take
            if current >= len(ranges):
                break
    return [h.hexdigest() for h in hashes]


class ChunkChangedError(ValueError):
    """The source file is not what the chunk was planned from: nothing of the chunk is billed."""


def read_chunk(opener: Opener, chunk: Chunk) -> tuple[list[Any], list[str], list[ValidationIssue]]:
    """The chunk's rows (parsed strictly), the path naming each (``line 17``) and the issues of rows that are
    not one JSON object — read from the chunk's own bytes only.

    Raises :class:`ChunkChangedError` when those bytes are not the ones planned (the digest or the row count
    differs): a retry or re-run then refuses instead of billing a different set of customers.
    """
    with opener() as handle:
        handle.seek(chunk.start)
        data = handle.read(chunk.end - chunk.start)
    if hashlib.sha256(data).hexdigest() != chunk.digest:
        raise ChunkChangedError(
            f"{chunk.label} of {chunk.source}: the file changed since the chunks were planned (bytes "
            f"{chunk.start}..{chunk.end} no longer have the planned SHA-256 {chunk.digest[:12]}...); nothing "
            "was billed from it. Plan again: clear the plan task together with its downstream chunk tasks"
        )
    rows: list[Any] = []
    paths: list[str] = []
    issues: list[ValidationIssue] = []
    for number, raw in enumerate(data.split(b"\n"), start=chunk.first_line):
        if raw.strip():
            row, found = _row(raw, line_path(number))
            rows.append(row)
            paths.append(line_path(number))
            issues += found
    if len(rows) != chunk.rows:
        raise ChunkChangedError(
            f"{chunk.label} of {chunk.source}: {len(rows)} rows in its bytes, {chunk.rows} planned"
        )
    return rows, paths, issues


# ------------------------------------------------------------------------------------------ chunk results

OUTCOME_COUNTS = ("created", "existing", "replayed", "failed", "invalid")
EXAMPLES_KEPT = 20  # failures / invalid specs a chunk result lists in full (the rest are counted)


def chunk_result(
    chunk: Chunk,
    *,
    counts: Mapping[str, int],
    totals: Mapping[str, Decimal],
    failed: Sequence[Mapping[str, Any]],
    invalid: Sequence[Mapping[str, Any]],
    attempt: int,
    seconds: float,
    dry_run: bool = False,
) -> dict[str, Any]:
    """What a chunk task returns: counts, amounts per currency (strings), a few examples — a small XCom."""
    return {
        "chunk": chunk.index,
        "chunks": chunk.count,
        "source": chunk.source,
        "rows": chunk.rows,
        "total_rows": chunk.total_rows,
        "counts": {name: int(counts.get(name, 0)) for name in OUTCOME_COUNTS},
        "totals": {currency: str(amount) for currency, amount in sorted(totals.items())},
        "failed": list(failed[:EXAMPLES_KEPT]),
        "invalid": list(invalid[:EXAMPLES_KEPT]),
        "attempt": attempt,
        "seconds": round(seconds, 3),
        "dry_run": dry_run,
    }


def summarize_chunks(
    results: Sequence[Mapping[str, Any]], planned: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Add the chunk results up: counts, rows, amounts per currency; which planned chunks reported nothing
    (they failed), which needed more than one attempt. JSON-safe."""
    counts = dict.fromkeys(OUTCOME_COUNTS, 0)
    totals: dict[str, Decimal] = {}
    rows = 0
    reported: set[int] = set()
    retried: list[dict[str, int]] = []
    failed: list[Any] = []
    for result in results:
        reported.add(int(result["chunk"]))
        rows += int(result.get("rows", 0))
        for name in OUTCOME_COUNTS:
            counts[name] += int((result.get("counts") or {}).get(name, 0))
        for currency, amount in (result.get("totals") or {}).items():
            totals[currency] = totals.get(currency, Decimal(0)) + Decimal(str(amount))
        if int(result.get("attempt", 1)) > 1:
            retried.append({"chunk": int(result["chunk"]), "attempt": int(result["attempt"])})
        failed += list(result.get("failed") or [])[: max(EXAMPLES_KEPT - len(failed), 0)]
    planned_indexes = {int(c["chunk"]) for c in planned} if planned is not None else set(reported)
    total_rows = int(planned[0]["total_rows"]) if planned else rows
    return {
        "chunks": len(planned_indexes),
        "chunks_reported": len(reported),
        "missing_chunks": sorted(planned_indexes - reported),
        "rows": rows,
        "total_rows": total_rows,
        "counts": counts,
        "totals": {currency: str(amount) for currency, amount in sorted(totals.items())},
        "retried_chunks": sorted(retried, key=lambda item: item["chunk"]),
        "failed": failed,
    }
