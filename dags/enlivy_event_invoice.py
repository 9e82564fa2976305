"""One invoice per business event (an order, a signed contract), triggered from outside Airflow.

Fire it with the REST API (``POST /api/v2/dags/enlivy_event_invoice/dagRuns`` with the event in ``conf``),
the CLI (``airflow dags trigger enlivy_event_invoice --conf '{...}'``) or the UI form. Airflow validates
``conf`` against the typed params below before the run exists: a bad event is refused with HTTP 400.

* ``create_invoice`` creates the invoice with :class:`EnlivyCreateInvoiceOperator`. Its idempotency key is
  the event reference, so the same event delivered twice (a webhook retry, a double click) gives one
  invoice: the second run gets the first run's invoice back, reported as ``replayed`` with its current
  status. If that invoice was cancelled or deleted in Enlivy meanwhile, the run fails naming it rather than
  billing the event again.
* ``send_invoice_email`` e-mails it to the customer when ``send_email`` is true, at most once per event: a
  run that did not create the invoice does not e-mail an invoice already sent, and the e-mail request is keyed
  too; its result and log say whether it sent, or found it sent.
* ``wait_for_payment`` waits in the triggerer (deferrable sensor, bounded by
  ``ENLIVY_PAYMENT_TIMEOUT_SECONDS``, soft-failing) when ``wait_for_payment`` is true.

See docs/event-triggered.md, which also shows how to drive the same work from an Asset.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, Param, task

from enlivy_provider.operators.invoices import EnlivyCreateInvoiceOperator
from enlivy_provider.sensors.invoice_status import EnlivyInvoiceStatusSensor

DAG_ID = "enlivy_event_invoice"
PAYMENT_POKE_SECONDS = float(os.environ.get("ENLIVY_PAYMENT_POKE_SECONDS", "900"))
PAYMENT_TIMEOUT_SECONDS = float(os.environ.get("ENLIVY_PAYMENT_TIMEOUT_SECONDS", str(3 * 24 * 3600)))

AMOUNT = {
    # A decimal string ("19.90", preferred: exact) or a JSON number.
    "type": ["string", "number"],
    "pattern": r"^[0-9]{1,12}(\.[0-9]{1,6})?$",
}
ITEM_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 1000},
        "quantity": {**AMOUNT, "exclusiveMinimum": 0},
        "unit_price": {**AMOUNT, "minimum": 0},
        "unit": {"type": "string", "minLength": 1, "maxLength": 50},
        "product_id": {"type": "string", "pattern": "^org_prod_[A-Za-z0-9_]+$"},
        "tax_class_id": {"type": "string", "pattern": "^org_tax_[A-Za-z0-9_]+$"},
    },
    "required": ["name", "quantity", "unit_price"],
    "additionalProperties": False,
}

with DAG(
    dag_id=DAG_ID,
    description="Create (once) the invoice of one business event, e-mail it, wait for payment",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=16,
    default_args={"retries": 3, "retry_delay": pendulum.duration(seconds=30)},
    params={
        "reference": Param(
            type="string",
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{2,99}$",
            title="Event reference",
            description="Unique id of the event (order number, contract id): one invoice per reference",
        ),
        "customer_email": Param(
            type="string",
            format="email",
            pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
            title="Customer e-mail",
            description="E-mail of an existing Enlivy customer (organization user)",
        ),
        "occurred_on": Param(
            type="string",
            pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
            title="Event date",
            description="Day of the event (YYYY-MM-DD): the invoice is issued on it and due 14 days later, so "
            "the same event delivered again on a later day still yields the same invoice",
        ),
        "currency": Param(
            "EUR",
            type="string",
            enum=["EUR", "USD", "GBP", "RON", "CHF"],
            title="Currency",
            description="ISO 4217 code of the invoice",
        ),
        "items": Param(
            type="array",
            minItems=1,
            maxItems=500,
            items=ITEM_SCHEMA,
            title="Line items",
            description='What the event bills: [{"name": "...", "quantity": "1", "unit_price": "19.90", '
            '"unit": "pcs"}] (amounts as decimal strings)',
        ),
        "send_email": Param(
            False,
            type="boolean",
            title="E-mail the invoice",
            description="Send the invoice to the customer's e-mail (at most once per event)",
        ),
        "wait_for_payment": Param(
            True,
            type="boolean",
            title="Wait for payment",
            description="Wait in the triggerer (no worker slot) until the invoice is paid, or the timeout",
        ),
    },
    tags=["enlivy", "billing", "example"],
    doc_md=__doc__,
) as dag:
    create_invoice = EnlivyCreateInvoiceOperator(
        task_id="create_invoice",
        customer={"email": "{{ params.customer_email }}"},
        line_items="templates/event_line_items.json.j2",
        invoice={
            "currency": "{{ params.currency }}",
            "status": "pending",
            "payment_method": "bank_transfer",
            "delivery_method": "email",
            # Dates come from the event, not from the run: a re-delivery days later sends the same body,
            # which the idempotency key requires (a changed body under one key is refused with 409).
            "issued_at": "{{ params.occurred_on }}",
            "due_in_days": 14,
            "note": "Invoice for {{ params.reference }}",
            "peppol_sales_order_reference": "{{ params.reference }}",
        },
        # The event, not the run, identifies the invoice: a second run for the same event gets the same key.
        idempotency_key="enlivy-event-invoice:{{ params.reference }}",
        # Someone cancelled the event's invoice in Enlivy: a re-delivered event must not bill it again.
        if_cancelled="fail",
    )

    @task
    def send_invoice_email(invoice: dict[str, Any], params: dict[str, Any]) -> dict[str, str]:
        """E-mail the invoice, at most once per event; returns ``{"invoice_id", "email"}`` where ``email`` is
        ``sent``, ``already_sent`` (an earlier run sent it; the server replayed that answer) or ``not_needed``
        (this run found the invoice, already past ``pending``: e-mailed, paid...)."""
        from airflow.providers.common.compat.sdk import AirflowSkipException

        from enlivy_provider.hooks.enlivy import EnlivyHook

        if not params.get("send_email"):
            raise AirflowSkipException("send_email is false")
        name = invoice.get("formatted_number") or invoice["id"]
        if invoice["outcome"] != "created" and invoice.get("status") != "pending":
            print(f"Invoice {name} is {invoice.get('status')} (an earlier run's invoice): not e-mailed again")
            return {"invoice_id": invoice["id"], "email": "not_needed"}
        answer = EnlivyHook().send_invoice_email_answer(
            invoice["id"],
            to=[params["customer_email"]],
            subject=f"Invoice {name}",
            idempotency_key=f"enlivy-event-invoice:{params['reference']}:email",
        )
        if answer.replayed:
            print(f"Invoice {name} was already e-mailed by an earlier run: not sent again")
            return {"invoice_id": invoice["id"], "email": "already_sent"}
        print(f"Invoice {name} e-mailed to {params['customer_email']}")
        return {"invoice_id": invoice["id"], "email": "sent"}

    @task.short_circuit(trigger_rule="none_failed")
    def should_wait_for_payment(params: dict[str, Any]) -> bool:
        return bool(params.get("wait_for_payment"))

    wait_for_payment = EnlivyInvoiceStatusSensor(
        task_id="wait_for_payment",
        invoice_ids=create_invoice.output,  # the summary dict: its "id"
        target_statuses=("paid", "solved"),
        deferrable=True,
        poke_interval=PAYMENT_POKE_SECONDS,
        timeout=PAYMENT_TIMEOUT_SECONDS,
        soft_fail=True,
        retries=0,
    )

    send_invoice_email(create_invoice.output) >> should_wait_for_payment() >> wait_for_payment
