"""Invoice operators: create one invoice, update one, create many (docs/operators.md).

The operators are thin: arguments are rendered by Airflow (Jinja, ``.json``/``.json.j2`` files, XComArgs),
checked by :mod:`enlivy_provider.invoices` before any HTTP call, then written through the hook's client with a
deterministic Idempotency-Key. Bad input and 4xx answers fail the task without retries
(``AirflowFailException``); 5xx, 429 and connection errors (after the client's own retries) fail it so that
Airflow may retry.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import jinja2
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseOperator

from enlivy_provider.invoices.billing_identity import (
    Billing,
    check_billing_key,
    check_marker_field,
    default_billing_key,
)
from enlivy_provider.invoices.billing_period import BillingPeriod
from enlivy_provider.invoices.chunks import Chunk, chunk_result
from enlivy_provider.invoices.decimals import non_finite_issues
from enlivy_provider.invoices.errors import (
    InvoiceValidationError,
    ValidationIssue,
    join_path,
    raise_if_issues,
)
from enlivy_provider.invoices.idempotency import key_from_context
from enlivy_provider.invoices.lookups import (
    CustomerDirectory,
    customer_label,
    load_catalog,
    resolve_customer,
)
from enlivy_provider.invoices.payload import build_update_payload
from enlivy_provider.invoices.preview import Catalog, Preview, compute_preview
from enlivy_provider.invoices.progress import Progress
from enlivy_provider.invoices.ratelimit import RateLimiter
from enlivy_provider.invoices.specs import InvoiceSpec, parse_json_input, prepare_bulk_specs, prepare_spec
from enlivy_provider.invoices.updates import PaymentRaceError, UpdateRefusedError, update_invoice_checked
from enlivy_provider.invoices.writer import (
    IF_CANCELLED_CHOICES,
    IF_EXISTS_CHOICES,
    OUTCOMES,
    BillingConflictError,
    DeadInvoiceError,
    InvoiceExistsError,
    create_invoice_once,
    invoice_summary,
)
from enlivy_provider.lineage import EnlivyLineageMixin, invoices_dataset
from enlivy_provider.links import EnlivyInvoiceLink
from enlivy_provider.operators.chunks import load_chunk
from enlivy_provider.run_dates import RunInfo

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from enlivy_provider.client import EnlivyClient
    from enlivy_provider.hooks.enlivy import EnlivyHook

TEMPLATE_EXT = (".json", ".json.j2")
PREVIEWS_LOGGED = 20  # a bulk dry run logs this many previews in full


def _check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)} (got {value!r})")
    return value


@contextmanager
def enlivy_errors(action: str) -> Iterator[None]:
    """Map domain and API errors to Airflow's: permanent ones fail without retry, transient ones may retry."""
    from enlivy_provider.client import EnlivyAPIError, EnlivyConflictError, EnlivyError

    try:
        yield
    except (InvoiceValidationError, InvoiceExistsError, DeadInvoiceError, BillingConflictError) as exc:
        raise AirflowFailException(f"{action}: {exc}") from None
    except EnlivyConflictError as exc:
        raise AirflowFailException(
            f"{action}: {exc}. The Idempotency-Key was already used with a different body: the inputs changed "
            "since an earlier attempt of this task wrote. Check the existing invoice, or pass a new idempotency_key."
        ) from None
    except EnlivyAPIError as exc:
        if exc.retryable:
            raise AirflowException(f"{action}: {exc} (transient; the task may be retried)") from None
        raise AirflowFailException(f"{action}: {exc}") from None
    except EnlivyError as exc:  # connection errors retry; local request errors are configuration problems
        if exc.retryable:
            raise AirflowException(f"{action}: {exc} (transient; the task may be retried)") from None
        raise AirflowFailException(f"{action}: {exc}") from None


class _EnlivyInvoiceOperator(BaseOperator, EnlivyLineageMixin):
    """Shared plumbing: template files, field-named template errors, the hook, the extra link, lineage."""

    template_ext: Sequence[str] = TEMPLATE_EXT
    operator_extra_links = (EnlivyInvoiceLink(),)
    ui_color = "#e8f1fb"
    enlivy_conn_id: str

    def render_template_fields(self, context: Context, jinja_env: jinja2.Environment | None = None) -> None:
        """Render field by field so a template error names its field and fails without retries.

        A float NaN/Infinity in a rendered field is refused here, naming its path: Airflow uploads the rendered
        fields as JSON right after this method returns, and that upload fails on such a float with an error
        that names no field and is retried.
        """
        if not jinja_env:
            jinja_env = self.get_template_env()
        seen: set[int] = set()
        issues: list[ValidationIssue] = []
        for field in self.template_fields:
            try:
                self._do_render_template_fields(self, (field,), context, jinja_env, seen)
            except jinja2.TemplateError as exc:
                kind = type(exc).__name__
                where = f" (line {exc.lineno})" if isinstance(exc, jinja2.TemplateSyntaxError) else ""
                raise AirflowFailException(f"{field}: template error{where}: {kind}: {exc}") from None
            issues += non_finite_issues(getattr(self, field, None), field)
        if issues:
            raise AirflowFailException(f"task {self.task_id}: {InvoiceValidationError(issues)}")

    def execute(self, context: Context) -> dict[str, Any]:
        self._hooks: list[EnlivyHook] = []
        try:
            return self._run(context)
        finally:
            for hook in self._hooks:  # release the pooled connections, whatever happened
                hook.close()

    def _run(self, context: Context) -> dict[str, Any]:
        raise NotImplementedError

    def _hook(self, **client_options: Any) -> EnlivyHook:
        from enlivy_provider.hooks.enlivy import EnlivyHook

        hook = EnlivyHook(self.enlivy_conn_id, client_options=client_options or None)
        self._hooks.append(hook)
        return hook


class EnlivyCreateInvoiceOperator(_EnlivyInvoiceOperator):
    """Create one invoice from templated line items, exactly once.

    :param customer: ``"org_user_..."`` or ``{"email": "..."}`` (looked up).
    :param line_items: list of line dicts, a ``.json``/``.json.j2`` template file, or an XComArg.
    :param invoice: other invoice fields (``currency`` required; ``status``, ``payment_method``,
        ``delivery_method``, ``issued_at``, ``due_at`` or ``due_in_days``, prefix/sender/bank account ids,
        ``note``/``note_lang_map``).
    :param billing_period: ``{"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}`` (inclusive) or ``"data_interval"``;
        fills every line's period fields and is what ``if_exists`` looks for.
    :param billing_key: what this task bills ("platform-fee"); with the customer and the period it identifies
        the billing (default ``<dag_id>.<task_id>``). Carried on the invoice; see docs/operators.md.
    :param idempotency_key: overrides the default key (the billing's when a period is known, else a hash of
        dag, task, run, map index, customer).
    :param if_exists: ``"skip"`` (return the existing invoice), ``"fail"``, or ``"create"`` (no lookup).
    :param if_cancelled: when the billing's invoice was cancelled or deleted in Enlivy: ``"bill_again"``
        (a new invoice under the next key generation, logged) or ``"fail"`` (naming the dead invoice).
    :param dry_run: render, validate, preview totals and log them; write nothing.
    :param default_locale: locale of plain ``name``/``unit``/``note`` texts.
    """

    template_fields: Sequence[str] = (
        "customer",
        "line_items",
        "invoice",
        "billing_period",
        "billing_key",
        "idempotency_key",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "customer": "json",
        "line_items": "json",
        "invoice": "json",
        "billing_period": "json",
    }

    def __init__(
        self,
        *,
        customer: Any,
        line_items: Any,
        invoice: Any = None,
        billing_period: Any = None,
        billing_key: str | None = None,
        idempotency_key: str | None = None,
        if_exists: str = "skip",
        if_cancelled: str = "bill_again",
        dry_run: bool = False,
        default_locale: str = "en",
        enlivy_conn_id: str = "enlivy_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.customer = customer
        self.line_items = line_items
        self.invoice = invoice
        self.billing_period = billing_period
        self.billing_key = billing_key
        self.idempotency_key = idempotency_key
        self.if_exists = _check_choice("if_exists", if_exists, IF_EXISTS_CHOICES)
        self.if_cancelled = _check_choice("if_cancelled", if_cancelled, IF_CANCELLED_CHOICES)
        self.is_dry_run = dry_run  # BaseOperator.dry_run() is a method
        self.default_locale = default_locale
        self.enlivy_conn_id = enlivy_conn_id

    def _run(self, context: Context) -> dict[str, Any]:
        run = RunInfo.from_context(context)
        spec, issues = prepare_spec(
            customer=self.customer,
            line_items=self.line_items,
            invoice=self.invoice,
            billing_period=self.billing_period,
            default_locale=self.default_locale,
            reference_date=run.reference_date,
            data_interval=run.data_interval,
        )
        billing_key, found = check_billing_key(self.billing_key)
        issues += found
        billing_key = billing_key or default_billing_key(self.dag_id, self.task_id)
        if spec is not None and spec.lookup_period is not None:
            issues += check_marker_field(spec.draft.fields, billing_key)
        with enlivy_errors(f"task {self.task_id}"):
            raise_if_issues(issues)
            assert spec is not None
            hook = self._hook()
            client = hook.get_client()
            customer, preview = self._resolve_and_preview(client, spec)
            customer_id, who = str(customer["id"]), customer_label(customer)
            self.log.info("%s", preview.render_text(who))
            if self.is_dry_run:
                self.log.info("dry_run: nothing written")
                return {"dry_run": True, **preview.as_dict()}
            billing = _billing(hook, customer_id, spec.lookup_period, billing_key)
            key = str(
                self.idempotency_key
                or (billing.idempotency_key() if billing else key_from_context(context, item=customer_id))
            )
            summary = create_invoice_once(
                client,
                spec.draft.payload(customer_id),
                idempotency_key=key,
                billing=billing,
                if_exists=self.if_exists,
                if_cancelled=self.if_cancelled,
                url_for=hook.invoice_url,
                warn=self.log.warning,
            )
        _warn_if_totals_differ(self.log, summary, preview)
        self.record_lineage(outputs=[invoices_dataset(hook, rows=int(summary["outcome"] == "created"))])
        self.log.info(
            "Invoice %s %s (%s) for %s (%s): total %s %s",
            summary["id"],
            summary["outcome"],
            summary["formatted_number"] or summary["number"] or "no number yet",
            who,
            customer_id,
            summary["totals"]["total"],
            summary["currency"],
        )
        return summary

    def _resolve_and_preview(self, client: EnlivyClient, spec: InvoiceSpec) -> tuple[dict[str, Any], Preview]:
        customer, issues = resolve_customer(client, spec.customer)
        catalog = load_catalog(client)
        customer_id = str(customer["id"]) if customer else "org_user_unresolved"
        preview, found = compute_preview(spec.draft.payload(customer_id), catalog)
        raise_if_issues([*issues, *found])
        assert customer is not None and preview is not None
        return customer, preview


def _billing(
    hook: EnlivyHook, customer_id: str, period: BillingPeriod | None, billing_key: str, item: str = ""
) -> Billing | None:
    """The billing a create writes, when its period is known (without a period only the run identifies it)."""
    if period is None:
        return None
    return Billing(str(hook.organization_id), customer_id, period, billing_key, item)


def _warn_if_totals_differ(log: Any, summary: Mapping[str, Any], preview: Preview) -> None:
    if summary.get("outcome") != "created":
        return
    expected = preview.totals.as_strings()
    if summary.get("totals") != expected:
        log.warning("Enlivy's totals %s differ from the preview %s", summary.get("totals"), expected)


class EnlivyUpdateInvoiceOperator(_EnlivyInvoiceOperator):
    """Partially update one invoice (status, dates, notes, line items replacement), idempotently.

    :param invoice_id: ``"org_inv_..."``, or a create operator's summary (its ``id``), e.g. an XComArg.
    :param changes: the fields to change; ``line_items`` replace the invoice's lines.
    :param expected_statuses: refuse to update unless the invoice's current status is one of these
        (an invoice already in the status ``changes`` sets counts as done: a retried task does not fail).
        Checked right before the write; an unpaid status is never written over a payment, and a payment
        landing during the update (seen in the read-back or the invoice's event trail) is restored and fails
        the task without retries (:mod:`enlivy_provider.invoices.updates`).
    :param idempotency_key: overrides the default key (hash of dag, task, run, map index, invoice id).
    """

    template_fields: Sequence[str] = ("invoice_id", "changes", "expected_statuses", "idempotency_key")
    template_fields_renderers: ClassVar[dict[str, str]] = {"changes": "json"}

    def __init__(
        self,
        *,
        invoice_id: Any,
        changes: Any,
        expected_statuses: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        default_locale: str = "en",
        enlivy_conn_id: str = "enlivy_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.invoice_id = invoice_id
        self.changes = changes
        self.expected_statuses = expected_statuses
        self.idempotency_key = idempotency_key
        self.default_locale = default_locale
        self.enlivy_conn_id = enlivy_conn_id

    def _run(self, context: Context) -> dict[str, Any]:
        run = RunInfo.from_context(context)
        invoice_id, issues = _invoice_id(self.invoice_id)
        changes, found = parse_json_input(self.changes, "changes")
        issues += found
        payload: dict[str, Any] | None = None
        if not found:
            payload, found = build_update_payload(
                changes, default_locale=self.default_locale, reference_date=run.reference_date
            )
            issues += found
        expected = _status_list(self.expected_statuses)
        with enlivy_errors(f"task {self.task_id}"):
            raise_if_issues(issues, subject="invoice update")
            assert payload is not None and invoice_id is not None
            hook = self._hook()
            client = hook.get_client()
            if "line_items" in payload:
                # Priced before the status check, so that check stays the last request before the PUT.
                currency = payload.get("currency") or client.get_invoice(invoice_id).get("currency")
                candidate = {**payload, "currency": currency, "organization_receiver_user_id": "org_user_x"}
                _, found = compute_preview(candidate, load_catalog(client), prefix="changes")
                raise_if_issues(found, subject="invoice update")
            key = str(
                self.idempotency_key or key_from_context(context, item=invoice_id, action="invoice.update")
            )
            try:
                record = update_invoice_checked(
                    client, invoice_id, payload, idempotency_key=key, expected_statuses=expected
                )
            except (UpdateRefusedError, PaymentRaceError) as exc:
                raise AirflowFailException(str(exc)) from None
        summary = invoice_summary(
            record, outcome="updated", idempotency_key=key, url=hook.invoice_url(invoice_id)
        )
        self.log.info("Invoice %s updated: %s", invoice_id, ", ".join(sorted(payload)))
        self.record_lineage(outputs=[invoices_dataset(hook, rows=1)])
        return summary


def _invoice_id(value: Any) -> tuple[str | None, list[ValidationIssue]]:
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, str) and value.strip().startswith("org_inv_"):
        return value.strip(), []
    return None, [
        ValidationIssue(
            "invoice_id", f"must be an invoice id org_inv_... or a summary with one (got {value!r})"
        )
    ]


def _label(customer: Any, index: int) -> str:
    """How an invalid bulk entry is named in the result when it has neither key nor resolved customer."""
    if isinstance(customer, str) and customer.strip():
        return customer.strip()
    if isinstance(customer, Mapping):
        found = customer.get("id") or customer.get("email")
        if isinstance(found, str) and found:
            return found
    return f"#{index}"


def _status_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(s.strip() for s in value.split(",") if s.strip())
    return tuple(str(s) for s in value)


class BulkCancelledError(Exception):
    """An item not attempted because the task was being stopped (``on_kill``)."""

    retryable = True


@dataclass
class _BulkItem:
    index: int
    key: str
    customer_id: str
    spec: InvoiceSpec
    preview: Preview
    billing: Billing | None
    customer_label: str  # name and e-mail, for the log


@dataclass
class _Outcomes:
    """What the creates of a bulk run came to. The summaries are kept for the full result only: a chunk
    returns counts and amounts, so its memory does not grow with the invoices it finished."""

    keep: bool
    summaries: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    counts: Counter[str] = dataclasses.field(default_factory=Counter)
    totals: dict[str, Decimal] = dataclasses.field(default_factory=dict)
    failures: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def add(self, index: int, summary: dict[str, Any]) -> None:
        self.counts[summary["outcome"]] += 1
        total, currency = (summary.get("totals") or {}).get("total"), summary.get("currency")
        if total is not None and currency:
            self.totals[currency] = self.totals.get(currency, Decimal(0)) + Decimal(total)
        if self.keep:
            self.summaries[index] = summary

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [self.failures[i] for i in sorted(self.failures)]

    def bulk_result(self) -> dict[str, Any]:
        ordered = [self.summaries[i] for i in sorted(self.summaries)]
        return {
            **{outcome: [s for s in ordered if s["outcome"] == outcome] for outcome in OUTCOMES},
            "failed": self.failed,
            "invoice_ids": [s["id"] for s in ordered],
        }


class EnlivyCreateInvoicesOperator(_EnlivyInvoiceOperator):
    """Create many invoices (one per spec) with bounded concurrency, exactly once each.

    :param invoices: list of specs ``{"customer", "line_items", "invoice"?, "billing_period"?, "billing_key"?,
        "key"?}``, a ``.json``/``.json.j2`` file, or an XComArg. ``key`` (default: the customer id) names the
        item in the result (and in the idempotency key); it must be unique within the list.
    :param chunk: instead of ``invoices``: one chunk descriptor of
        :class:`~enlivy_provider.operators.chunks.EnlivyPlanInvoiceChunksOperator` (``.expand(chunk=plan.output)``);
        the specs are that chunk's lines of the planned JSON Lines file, and the task returns a small chunk
        result (counts, amounts per currency, the first failures) instead of every invoice's summary.
    :param invoice_defaults: invoice fields every spec starts from (a spec's ``invoice`` overrides them).
    :param billing_period: the default period of every spec (``"data_interval"`` or ``{start, end}``).
    :param billing_key: what the specs bill (a spec's ``billing_key`` overrides it); default
        ``<dag_id>.<task_id>``. As for :class:`EnlivyCreateInvoiceOperator`.
    :param if_exists: as for :class:`EnlivyCreateInvoiceOperator`, per spec.
    :param if_cancelled: as for :class:`EnlivyCreateInvoiceOperator`, per spec.
    :param skip_invalid: create the valid specs even when some are invalid (those are reported under ``invalid``);
        the task still fails, writing nothing, when every spec is invalid;
        by default one invalid spec stops the task before anything is written.
    :param max_concurrency: parallel requests (threads sharing one pooled client).
    :param max_requests_per_second: client-side rate limit over all threads and every request of the task
        (None: no limit); a 429 holds every thread for its ``Retry-After``. Chunks running at once share the
        API quota: give each ``quota / max_active_tis_per_dagrun``.
    :param dry_run: validate and preview every spec; write nothing.
    :param progress_interval: seconds between progress log lines.
    """

    template_fields: Sequence[str] = (
        "invoices",
        "chunk",
        "invoice_defaults",
        "billing_period",
        "billing_key",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "invoices": "json",
        "chunk": "json",
        "invoice_defaults": "json",
        "billing_period": "json",
    }

    def __init__(
        self,
        *,
        invoices: Any = None,
        chunk: Any = None,
        invoice_defaults: Any = None,
        billing_period: Any = None,
        billing_key: str | None = None,
        if_exists: str = "skip",
        if_cancelled: str = "bill_again",
        skip_invalid: bool = False,
        max_concurrency: int = 8,
        max_requests_per_second: float | None = None,
        dry_run: bool = False,
        default_locale: str = "en",
        progress_interval: float = 5.0,
        enlivy_conn_id: str = "enlivy_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1 (got {max_concurrency})")
        if max_requests_per_second is not None and max_requests_per_second <= 0:
            raise ValueError(f"max_requests_per_second must be > 0 (got {max_requests_per_second})")
        if invoices is not None and chunk is not None:
            raise ValueError("give invoices or chunk, not both")
        self.invoices = invoices
        self.chunk = chunk
        self.invoice_defaults = invoice_defaults
        self.billing_period = billing_period
        self.billing_key = billing_key
        self.if_exists = _check_choice("if_exists", if_exists, IF_EXISTS_CHOICES)
        self.if_cancelled = _check_choice("if_cancelled", if_cancelled, IF_CANCELLED_CHOICES)
        self.skip_invalid = skip_invalid
        self.max_concurrency = max_concurrency
        self.max_requests_per_second = max_requests_per_second
        self.is_dry_run = dry_run  # BaseOperator.dry_run() is a method
        self.default_locale = default_locale
        self.progress_interval = progress_interval
        self._cancelled: threading.Event | None = None  # created in execute: an Event cannot be deep-copied
        self.enlivy_conn_id = enlivy_conn_id

    def _run(self, context: Context) -> dict[str, Any]:
        run = RunInfo.from_context(context)
        started = time.monotonic()
        chunk, invoices, paths = self._input()
        results, issues = prepare_bulk_specs(
            invoices,
            invoice_defaults=self.invoice_defaults,
            billing_period=self.billing_period,
            default_locale=self.default_locale,
            reference_date=run.reference_date,
            data_interval=run.data_interval,
            paths=paths,
        )
        del invoices  # a chunk's parsed rows: the specs hold what is needed from here on
        billing_key, found = check_billing_key(self.billing_key)
        issues += found
        label = chunk.label if chunk else "create invoices"
        with enlivy_errors(f"task {self.task_id}" + (f" ({label})" if chunk else "")):
            raise_if_issues(issues, subject="invoices")
            hook = self._hook(pool_maxsize=max(self.max_concurrency, 10))
            client = hook.get_client()
            # Every request of the task is paced, the customer and catalogue reads too; a 429 holds them all.
            client.throttle = RateLimiter(self.max_requests_per_second)
            items, invalid = self._check_online(
                hook, results, billing_key or default_billing_key(self.dag_id, self.task_id)
            )
            specs = len(results)
            del results  # the items carry the valid specs on
            self.log.info("%d invoice specs: %d valid, %d invalid", specs, len(items), len(invalid))
            # skip_invalid lets the valid specs through; it never makes "nothing at all could be billed"
            # a green task.
            if invalid and (not self.skip_invalid or not items):
                raise InvoiceValidationError(
                    [issue for entry in invalid for issue in entry["issues"]],
                    subject=f"{len(invalid)} of {specs} invoice specs "
                    + ("is invalid" if len(invalid) == 1 else "are invalid"),
                )
            for entry in invalid:
                self.log.warning(
                    "skip_invalid: skipping %s: %s", entry["key"], "; ".join(map(str, entry["issues"]))
                )
            invalid_out = [
                {"key": e["key"], "customer": e["customer"], "errors": [str(i) for i in e["issues"]]}
                for e in invalid
            ]
            if self.is_dry_run and chunk is not None:
                self.log.info("dry_run: nothing written")
                return self._chunk_result(context, chunk, _previewed(items), invalid_out, started)
            if self.is_dry_run:
                for item in items[:PREVIEWS_LOGGED]:
                    self.log.info("%s", item.preview.render_text(item.customer_label))
                if len(items) > PREVIEWS_LOGGED:
                    self.log.info(
                        "... and %d more previews (all in the returned XCom)", len(items) - PREVIEWS_LOGGED
                    )
                self.log.info("dry_run: nothing written")
                return {
                    "dry_run": True,
                    "previews": [{"key": item.key, **item.preview.as_dict()} for item in items],
                    "invalid": invalid_out,
                }
            outcomes = self._create_all(context, client, hook, items, label=label, keep=chunk is None)
        if chunk is not None:
            result = self._chunk_result(context, chunk, outcomes, invalid_out, started)
        else:
            result = {**outcomes.bulk_result(), "invalid": invalid_out}
        failed = outcomes.failed
        if failed:
            context["ti"].xcom_push(key="bulk_result", value=result)
            message = (
                f"{len(failed)} of {len(items)} invoices failed (created {outcomes.counts['created']}, "
                f"existing {outcomes.counts['existing']}, replayed {outcomes.counts['replayed']}); "
                f"first: {failed[0]['key']}: {failed[0]['error']}"
            )
            if chunk is not None:
                message = f"{chunk.label}: {message}"
            if any(f["retryable"] for f in failed):
                raise AirflowException(message + " — a retry creates only the missing ones")
            raise AirflowFailException(message)
        self.record_lineage(outputs=[invoices_dataset(hook, rows=outcomes.counts["created"])])
        return result

    def _input(self) -> tuple[Chunk | None, Any, list[str] | None]:
        """The specs to bill: ``invoices``, or the rows of ``chunk`` (with the file line naming each)."""
        if self.chunk is None:
            return None, self.invoices, None
        if self.invoices is not None:
            raise AirflowFailException("give invoices or chunk, not both")
        chunk, rows, paths = load_chunk(self.chunk)
        where = f"lines {paths[0].split()[-1]}..{paths[-1].split()[-1]}" if paths else "no lines"
        self.log.info(
            "%s of %s: %s, %s of %s invoice specs",
            chunk.label,
            chunk.source,
            where,
            f"{chunk.rows:,}",
            f"{chunk.total_rows:,}",
        )
        return chunk, rows, paths

    def _chunk_result(
        self,
        context: Context,
        chunk: Chunk,
        outcomes: _Outcomes,
        invalid: list[dict[str, Any]],
        started: float,
    ) -> dict[str, Any]:
        counts = {**outcomes.counts, "failed": len(outcomes.failures), "invalid": len(invalid)}
        result = chunk_result(
            chunk,
            counts=counts,
            totals=outcomes.totals,
            failed=outcomes.failed,
            invalid=invalid,
            attempt=int(getattr(context["ti"], "try_number", 1) or 1),
            seconds=time.monotonic() - started,
            dry_run=self.is_dry_run,
        )
        if self.is_dry_run:
            result["previewed"] = outcomes.counts["previewed"]
        return result

    def on_kill(self) -> None:
        """Stop starting new invoices (the ones in flight finish; their keys make a re-run safe)."""
        if self._cancelled is not None:
            self._cancelled.set()

    def _check_online(
        self, hook: EnlivyHook, results: Sequence[Any], billing_key: str
    ) -> tuple[list[_BulkItem], list[dict[str, Any]]]:
        """Resolve customers, price every spec, check keys are unique; nothing is written."""
        client = hook.get_client()
        valid = [r.spec for r in results if r.spec is not None]
        directory = (
            CustomerDirectory.fetch_for(
                client, [spec.customer for spec in valid], workers=self.max_concurrency
            )
            if valid
            else CustomerDirectory(())
        )
        catalog = load_catalog(client) if valid else Catalog()
        items: list[_BulkItem] = []
        invalid: list[dict[str, Any]] = []
        seen_keys: dict[str, str] = {}
        # if_exists allows one invoice per billing; specs of one run look up before any is created.
        seen_billings: dict[tuple[str, BillingPeriod, str], str] = {}
        for result in results:
            issues = list(result.issues)
            spec = result.spec
            where = result.path or f"invoices[{result.index}]"
            customer_id: str | None = None
            preview: Preview | None = None
            if spec is not None:
                customer_id, found = directory.resolve(spec.customer, path=spec.path)
                issues += found
                preview, found = compute_preview(
                    spec.draft.payload(customer_id or "org_user_unresolved"), catalog, prefix=spec.path
                )
                issues += found
            key = (
                (spec.key if spec else result.key) or customer_id or _label(result.raw_customer, result.index)
            )
            if spec is not None and key in seen_keys:
                issues.append(
                    ValidationIssue(
                        where,
                        f"duplicate key {key!r} (also {seen_keys[key]}); give each spec a distinct 'key'",
                    )
                )
            seen_keys.setdefault(key, where)
            period = spec.lookup_period if spec is not None else None
            what = (spec.billing_key if spec else None) or billing_key
            if spec is not None and period is not None:
                issues += check_marker_field(spec.draft.fields, what, path=join_path(spec.path, "invoice"))
            if customer_id is not None and period is not None and self.if_exists != "create":
                other = seen_billings.setdefault((customer_id, period, what), where)
                if other != where:
                    issues.append(
                        ValidationIssue(
                            where,
                            f"bills {customer_id} for {period.start} .. {period.end} like {other} "
                            f"(billing key {what!r}); if_exists={self.if_exists!r} allows one invoice per "
                            "billing: give the specs different billing_key values (or if_exists='create')",
                        )
                    )
            if issues or spec is None or customer_id is None or preview is None:
                customer = spec.customer.as_json() if spec else result.raw_customer
                invalid.append({"index": result.index, "key": key, "customer": customer, "issues": issues})
            else:
                billing = _billing(hook, customer_id, period, what, item=spec.key or "")
                items.append(
                    _BulkItem(
                        result.index, key, customer_id, spec, preview, billing, directory.label(customer_id)
                    )
                )
        return items, invalid

    def _create_all(
        self,
        context: Context,
        client: EnlivyClient,
        hook: EnlivyHook,
        items: Sequence[_BulkItem],
        *,
        label: str,
        keep: bool,
    ) -> _Outcomes:
        from enlivy_provider.client import EnlivyError

        progress = Progress(len(items), self.log.info, interval=self.progress_interval, label=label)
        outcomes = _Outcomes(keep=keep)
        started = time.monotonic()

        cancelled = self._cancelled = threading.Event()

        def create(item: _BulkItem) -> dict[str, Any]:
            if cancelled.is_set():
                raise BulkCancelledError("the task was stopped before this invoice was attempted")
            key = item.billing.idempotency_key() if item.billing else key_from_context(context, item=item.key)
            return create_invoice_once(
                client,
                item.spec.draft.payload(item.customer_id),
                idempotency_key=key,
                billing=item.billing,
                if_exists=self.if_exists,
                if_cancelled=self.if_cancelled,
                url_for=hook.invoice_url,
                warn=self.log.warning,
            )

        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="enlivy-bulk") as pool:
            futures = {pool.submit(create, item): item for item in items}
            for future in as_completed(futures):
                item = futures.pop(
                    future
                )  # a finished future (and its summary) is not kept alive by the dict
                try:
                    summary = future.result()
                except Exception as exc:  # every item is attempted; failures are reported together
                    retryable = isinstance(exc, EnlivyError | BulkCancelledError) and bool(exc.retryable)
                    failure = {
                        "key": item.key,
                        "customer": item.spec.customer.as_json(),
                        "error": f"{type(exc).__name__}: {exc}",
                        "retryable": retryable,
                    }
                    outcomes.failures[item.index] = failure
                    self.log.warning("%s (%s) failed: %s", item.customer_label, item.key, failure["error"])
                    progress.record("failed")
                    continue
                outcomes.add(item.index, summary)
                progress.record(summary["outcome"])
        self.log.info("%s (finished in %.1fs)", progress.line(), time.monotonic() - started)
        return outcomes


def _previewed(items: Sequence[_BulkItem]) -> _Outcomes:
    """A dry run's chunk result: how many specs were previewed and what they would bill per currency."""
    outcomes = _Outcomes(keep=False)
    for item in items:
        outcomes.counts["previewed"] += 1
        currency = item.preview.currency
        outcomes.totals[currency] = outcomes.totals.get(currency, Decimal(0)) + item.preview.totals.total
    return outcomes
