"""The Airflow side shared by the after-invoice operators (send, charge): check the arguments before any
request, screen the invoices, act on each on a bounded thread pool, log and return one entry per invoice,
and fail the task — after pushing the result as the ``action_result`` XCom — when an invoice could not be
acted on (retryable when a retry could help: the deterministic keys make the retry act only where needed).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from enlivy_provider.invoices.actions import (
    ERROR,
    act_on_each,
    action_result,
    describe_counts,
    parse_invoice_ids,
    screen,
)
from enlivy_provider.invoices.errors import ValidationIssue, raise_if_issues
from enlivy_provider.operators.invoices import _EnlivyInvoiceOperator, enlivy_errors

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from enlivy_provider.client import EnlivyClient

RESULT_XCOM_KEY = "action_result"


def check_max_concurrency(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_concurrency must be an integer >= 1 (got {value!r})")
    return value


class EnlivyInvoiceActionOperator(_EnlivyInvoiceOperator):
    """Base of the operators acting once on each of many invoices; subclasses say what the action is."""

    action: ClassVar[str]  # "e-mail", "charge": for messages
    invoice_ids: Any
    max_concurrency: int

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cancelled: threading.Event | None = None  # created in execute: an Event cannot be deep-copied

    # -- what a subclass provides ---------------------------------------------------------------------

    def _check_arguments(self) -> list[ValidationIssue]:
        """Issues with the action's own arguments (after rendering); nothing is sent while there are any."""
        return []

    def _extra_skip_reason(self, record: Mapping[str, Any]) -> str | None:
        return None

    def _act(self, client: EnlivyClient, organization_id: str, record: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _failures(self, result: Mapping[str, Any]) -> str | None:
        """A reason to fail the task although every invoice was acted on (e.g. a declined charge), or None."""
        return None

    # -- the run --------------------------------------------------------------------------------------

    def _run(self, context: Context) -> dict[str, Any]:
        invoice_ids, issues = parse_invoice_ids(self.invoice_ids)
        issues += self._check_arguments()
        with enlivy_errors(f"task {self.task_id}"):
            raise_if_issues(issues, subject=f"{self.action} input")
            hook = self._hook(pool_maxsize=max(self.max_concurrency, 10))
            client = hook.get_client()
            organization_id = str(hook.organization_id)
            targets, skipped = screen(client, invoice_ids, self._extra_skip_reason)
            for invoice_id, reason in skipped.items():
                self.log.info("%s: not %s: %s", invoice_id, self._done_word(), reason)
            self._cancelled = threading.Event()
            entries = act_on_each(
                targets,
                lambda record: self._act(client, organization_id, record),
                max_concurrency=self.max_concurrency,
                cancelled=self._cancelled,
                on_done=self._log_entry,
            )
        result = action_result(invoice_ids, entries, skipped)
        self.log.info("%d invoice(s): %s", len(invoice_ids), describe_counts(result["counts"]))
        self._raise_on_errors(context, result)
        return result

    def on_kill(self) -> None:
        """Stop starting new invoices (those in flight finish; their keys make a re-run safe)."""
        if self._cancelled is not None:
            self._cancelled.set()

    def _done_word(self) -> str:
        return f"{self.action}d" if self.action.endswith("e") else f"{self.action}ed"

    def _log_entry(self, entry: Mapping[str, Any]) -> None:
        details = ", ".join(
            f"{name} {value}"
            for name, value in entry.items()
            if name not in ("invoice_id", "outcome") and value
        )
        log = self.log.warning if entry["outcome"] == ERROR else self.log.info
        log("%s: %s%s", entry["invoice_id"], entry["outcome"], f" ({details})" if details else "")

    def _raise_on_errors(self, context: Context, result: dict[str, Any]) -> None:
        errors = [entry for entry in result["invoices"] if entry["outcome"] == ERROR]
        failure = self._failures(result)
        if not errors and failure is None:
            return
        context["ti"].xcom_push(key=RESULT_XCOM_KEY, value=result)
        if failure is not None and not errors:
            raise AirflowFailException(f"task {self.task_id}: {failure}")
        first = errors[0]
        message = (
            f"task {self.task_id}: {len(errors)} of {len(result['invoices'])} invoice(s) could not be "
            f"{self._done_word()} ({describe_counts(result['counts'])}); first: {first['invoice_id']}: "
            f"{first['error']}" + (f"; also {failure}" if failure else "")
        )
        if any(entry["retryable"] for entry in errors):
            raise AirflowException(message + " — a retry acts only on the invoices not done yet")
        raise AirflowFailException(message)
