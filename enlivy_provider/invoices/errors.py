"""The one exception the billing domain raises for bad input, listing every problem found."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class ValidationIssue:
    """One problem with the input: where it is (``line_items[2].quantity``) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def prefixed(self, prefix: str) -> ValidationIssue:
        """The same issue seen from an enclosing object (``invoices[3]`` + ``currency``)."""
        if not prefix:
            return self
        if not self.path:
            return ValidationIssue(prefix, self.message)
        joiner = "" if self.path.startswith("[") else "."
        return ValidationIssue(f"{prefix}{joiner}{self.path}", self.message)


def join_path(prefix: str, key: str | int) -> str:
    """``join_path("line_items", 2)`` -> ``line_items[2]``; ``join_path("line_items[2]", "price")`` -> ``...price``."""
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


class InvoiceValidationError(ValueError):
    """The input cannot become a valid invoice. ``issues`` lists every problem, each naming its field.

    Raised before any HTTP call; the operators turn it into a task failure that is not retried.
    """

    def __init__(self, issues: Iterable[ValidationIssue], *, subject: str = "invoice input") -> None:
        self.issues: list[ValidationIssue] = sorted(set(issues), key=_issue_sort_key)
        if not self.issues:
            raise ValueError("InvoiceValidationError needs at least one issue")
        self.subject = subject
        count = len(self.issues)
        lines = "\n".join(f"  - {issue}" for issue in self.issues)
        head = subject if subject.endswith("invalid") else f"{subject} is invalid"
        super().__init__(f"{head} ({count} problem{'s' if count != 1 else ''}):\n{lines}")

    @property
    def messages(self) -> list[str]:
        return [str(issue) for issue in self.issues]


def _issue_sort_key(issue: ValidationIssue) -> tuple[list[tuple[int, int | str]], str]:
    """Sort ``line_items[10]`` after ``line_items[2]``: compare index parts as numbers."""
    parts: list[tuple[int, int | str]] = []
    for token in issue.path.replace("[", ".[").split("."):
        if token.startswith("[") and token.endswith("]") and token[1:-1].isdigit():
            parts.append((0, int(token[1:-1])))
        else:
            parts.append((1, token))
    return parts, issue.message


def raise_if_issues(issues: Iterable[ValidationIssue], *, subject: str = "invoice input") -> None:
    collected = list(issues)
    if collected:
        raise InvoiceValidationError(collected, subject=subject)


def merge_issues(
    primary: Iterable[ValidationIssue], secondary: Iterable[ValidationIssue]
) -> list[ValidationIssue]:
    """``primary`` plus those of ``secondary`` about a path ``primary`` has not already reported on.

    Used to keep a precise normalisation message (``price: must be a number (got 'abc')``) and drop the
    schema's echo of the same problem at the same path.
    """
    first = list(primary)
    seen = [issue.path for issue in first]
    merged = list(first)
    for issue in secondary:
        if not any(issue.path == p or issue.path.startswith((p + ".", p + "[")) for p in seen):
            merged.append(issue)
    return merged
