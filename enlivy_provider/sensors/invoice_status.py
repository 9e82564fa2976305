"""EnlivyInvoiceStatusSensor: wait until invoices reach a status (paid by default).

Poke and reschedule modes check with the hook's sync client; deferrable mode checks once, then hands the wait
to :class:`~enlivy_provider.triggers.invoice_status.EnlivyInvoiceStatusTrigger`. Both use the one rule in
:mod:`enlivy_provider.invoice_status`, so the outcome of a wait does not depend on the mode.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from enlivy_provider.client import EnlivyError
from enlivy_provider.invoice_status import (
    StatusCheck,
    checked_flag,
    classify,
    fetch_statuses,
    is_transient,
    normalize_invoice_ids,
    normalize_statuses,
    validate_status_sets,
)
from enlivy_provider.triggers.invoice_status import EnlivyInvoiceStatusTrigger, InvoiceStatusEvent

if TYPE_CHECKING:
    import jinja2
    from airflow.providers.common.compat.sdk import Context

    from enlivy_provider.hooks.enlivy import EnlivyHook

#: Extra time Airflow grants a deferred sensor beyond ``timeout``; the trigger itself fires a ``timeout``
#: event at the deadline, this only catches a trigger that never answers.
DEFERRAL_GRACE_SECONDS = 300.0
#: ``next_method`` of a deferred task the scheduler fails, and the errors it gives when the deferral timed out
#: (Airflow 3.x, then 2.x).
TRIGGER_FAIL = "__fail__"
DEFERRAL_TIMEOUT_ERRORS = ("Trigger timeout", "Trigger/execution timeout")


class EnlivyInvoiceStatusSensor(BaseSensorOperator):
    """Wait until every invoice is in one of ``target_statuses``.

    Fails at once (no retry) when an invoice is in one of ``failure_statuses``, soft-deleted or unknown to the
    API; on ``timeout`` fails (or skips with ``soft_fail``) listing the invoices still pending. The XCom is
    ``{invoice_id: status}``. Statuses are read in batches of 30 ids per list call.

    :param invoice_ids: one id, a list of ids, a list of the create operator's summaries, or the bulk
        operator's return value (its ``invoice_ids``); templated, so an XComArg works.
    :param target_statuses: statuses that count as done (default ``("paid",)``).
    :param failure_statuses: statuses that fail the task at once (default ``("cancelled",)``).
    :param enlivy_conn_id: the Enlivy connection.
    :param deferrable: wait in the triggerer instead of a worker slot
        (default: ``[operators] default_deferrable``).
    :param share_poller: deferrable mode only: True (default) lets the trigger share one poller with the other
        triggers of the same connection and ``poke_interval`` in its triggerer (docs/sensor.md); False makes
        it poll alone.
    """

    template_fields: Sequence[str] = ("invoice_ids", "target_statuses", "failure_statuses")
    template_fields_renderers = {"invoice_ids": "json"}
    ui_color = "#d8f0e8"

    def __init__(
        self,
        *,
        invoice_ids: Any,
        target_statuses: Sequence[str] | str = ("paid",),
        failure_statuses: Sequence[str] | str = ("cancelled",),
        enlivy_conn_id: str = "enlivy_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        share_poller: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.share_poller = checked_flag(share_poller, name="share_poller")  # a DAG error, at parse time
        self.invoice_ids = invoice_ids
        self.target_statuses = target_statuses
        self.failure_statuses = failure_statuses
        self.enlivy_conn_id = enlivy_conn_id
        self.deferrable = deferrable
        self._last_check: StatusCheck | None = None
        self._last_error = ""

    @cached_property
    def hook(self) -> EnlivyHook:
        from enlivy_provider.hooks.enlivy import EnlivyHook

        return EnlivyHook(enlivy_conn_id=self.enlivy_conn_id)

    # ------------------------------------------------------------------------------------ rendered arguments

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        super().render_template_fields(context, jinja_env)
        # Checked right after rendering: Airflow uploads the rendered fields next, and that upload breaks on a
        # value such as a float NaN with an error that names no argument and is retried.
        self._checked_ids()

    def _checked_ids(self) -> list[str]:
        """The invoice ids, with every argument checked; a wrong one fails the task without retries (retrying
        cannot fix a DAG's arguments), naming the argument."""
        try:
            ids = self._ids()
            self._statuses()
        except (TypeError, ValueError) as exc:
            raise AirflowFailException(str(exc)) from None
        return ids

    def _ids(self) -> list[str]:
        return normalize_invoice_ids(self.invoice_ids)

    def _statuses(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        targets = normalize_statuses(self.target_statuses, name="target_statuses")
        failures = normalize_statuses(self.failure_statuses, name="failure_statuses")
        validate_status_sets(targets, failures)
        return targets, failures

    # ------------------------------------------------------------------------------------ checking

    def check_statuses(self) -> StatusCheck | None:
        """Read the statuses once and apply the rule; None when a transient API error prevented reading."""
        ids = self._ids()
        targets, failures = self._statuses()
        try:
            client = self.hook.get_client()
        except Exception as exc:  # missing connection, bad extras: retrying will not fix it (as the trigger)
            raise AirflowFailException(
                f"Cannot use Enlivy connection {self.enlivy_conn_id!r}: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            observed = fetch_statuses(client, ids)
        except EnlivyError as exc:
            if is_transient(exc):
                self.log.warning("Could not read invoice statuses (will check again): %s", exc)
                self._last_error = f" (the last check failed: {exc})"
                return None
            raise AirflowFailException(f"Enlivy API error while checking invoice statuses: {exc}") from exc
        self._last_check, self._last_error = classify(ids, observed, targets, failures), ""
        return self._last_check

    def poke(self, context: Context) -> bool | PokeReturnValue:
        check = self.check_statuses()
        if check is None:
            return False
        if check.outcome == "failure":
            raise AirflowFailException(check.failure_message())
        if check.outcome == "success":
            self.log.info("%s", check.success_message())
            return PokeReturnValue(is_done=True, xcom_value=check.statuses)
        self.log.info("%s", check.progress_message())
        return False

    # ------------------------------------------------------------------------------------ execution

    def execute(self, context: Context) -> Any:
        ids = self._checked_ids()  # before the first request
        if not ids:
            self.log.warning("invoice_ids is empty: nothing to wait for")
            return {}
        try:
            if self.deferrable:
                return self._execute_deferrable(ids)
            return self._execute_poking(context)
        finally:
            if "hook" in self.__dict__:  # built by a check: release its HTTP session
                self.hook.close()

    def _execute_poking(self, context: Context) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            raise AirflowSensorTimeout(self._timeout_message()) from exc
        except AirflowSkipException as exc:
            # soft_fail/never_fail turned a failure (raised from the poke, kept as the cause) or a timeout
            # (no cause) into a skip with a generic text: say which invoices caused it.
            if exc.__cause__ is not None:
                raise AirflowSkipException(f"Skipped (soft_fail). {exc.__cause__}") from exc
            raise AirflowSkipException(f"Skipped (soft_fail). {self._timeout_message()}") from exc

    def _timeout_message(self) -> str:
        check = self._last_check or StatusCheck.unread(self._ids(), self._statuses()[0])
        self._log_pending(check.pending)
        return check.timeout_message() + self._last_error

    def _log_pending(self, pending: dict[str, str | None]) -> None:
        """Every pending invoice, one per line (the exception message stops after 50)."""
        lines = "".join(
            f"\n  {invoice_id}: {status or 'status not read'}" for invoice_id, status in pending.items()
        )
        self.log.error("Invoices still pending at the timeout (%d):%s", len(pending), lines)

    def _execute_deferrable(self, ids: list[str]) -> Any:
        # One synchronous check first: invoices that are already paid (or cancelled) need no triggerer.
        try:
            check = self.check_statuses()
        except AirflowFailException as exc:
            self._fail_now(exc)
        if check is not None and check.outcome == "success":
            self.log.info("%s", check.success_message())
            return check.statuses
        if check is not None and check.outcome == "failure":
            self._fail_now(AirflowFailException(check.failure_message()))
        targets, failures = self._statuses()
        self.defer(
            trigger=EnlivyInvoiceStatusTrigger(
                invoice_ids=ids,
                target_statuses=list(targets),
                failure_statuses=list(failures),
                enlivy_conn_id=self.enlivy_conn_id,
                poll_interval=self.poke_interval,
                end_time=time.time() + self.timeout,
                share_poller=self.share_poller,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFERRAL_GRACE_SECONDS),
        )

    def _fail_now(self, exc: AirflowException) -> NoReturn:
        """Raise ``exc``, or a skip when soft_fail/never_fail asks for one (outside the base class's loop)."""
        if self.soft_fail or self.never_fail:
            raise AirflowSkipException(f"Skipped (soft_fail). {exc}") from exc
        raise exc

    def execute_complete(self, context: Context, event: Any = None) -> dict[str, str | None]:
        """Resume after the trigger fired: validate its event and turn it into a result or an exception.

        ``resume_execution`` turns these exceptions into a skip when soft_fail/never_fail is set.
        """
        try:
            parsed = InvoiceStatusEvent.from_payload(event)
        except ValueError as exc:
            raise AirflowException(
                f"Invalid event from EnlivyInvoiceStatusTrigger: {exc}; event: {repr(event)[:300]}"
            ) from exc
        if parsed.status == "success":
            self.log.info("%s", parsed.message)
            return parsed.statuses
        if parsed.status == "timeout":
            self._log_pending(parsed.pending)
            raise AirflowSensorTimeout(parsed.message)
        raise AirflowFailException(parsed.message)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Resume after the trigger, or after the scheduler gave up on it (``next_method="__fail__"``).

        Handled here rather than by the base class, whose handling differs by Airflow version: Airflow 2's
        skips for soft_fail only (never_fail failed the task) and leaves a deferral timeout a generic error;
        Airflow 3's skips with a generic text. Here a deferral timeout is this sensor's timeout, naming the
        invoices, and soft_fail/never_fail skip with the same text as in poke mode, on every version.
        """
        try:
            if next_method == TRIGGER_FAIL:
                self._trigger_failed(next_kwargs or {})
            return getattr(self, next_method)(context, **(next_kwargs or {}))
        except AirflowSkipException:
            raise
        except AirflowException as exc:
            self._fail_now(exc)

    def _trigger_failed(self, next_kwargs: dict[str, Any]) -> NoReturn:
        error = next_kwargs.get("error") or "Unknown"
        error = str(getattr(error, "value", error))  # Airflow 3 sends a str enum
        if next_kwargs.get("traceback"):
            self.log.error("Trigger failed:\n%s", "\n".join(next_kwargs["traceback"]))
        if error in DEFERRAL_TIMEOUT_ERRORS:
            raise AirflowSensorTimeout(
                f"{self._timeout_message()} (the trigger did not report before the deferral timed out)"
            )
        raise AirflowException(f"The status trigger failed: {error}")
