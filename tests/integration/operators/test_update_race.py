"""EnlivyUpdateInvoiceOperator against a customer paying at the same moment (issue 9, item 6).

The race is made certain, not hoped for: a ``delay`` fault holds the operator's request in the emulator
while a second thread (the customer) pays through the admin API as soon as the emulator has counted that
request. The customer's answer proves the order: it is the invoice as stored right after the payment, and
it does not carry the operator's change yet.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pendulum
import requests
from invoice_support import Failures, make_dag, new_dag_id, run

from enlivy_provider.invoices.updates import restore_key
from enlivy_provider.operators.invoices import EnlivyUpdateInvoiceOperator
from enlivy_provider.testing import EmulatorHandle, invoice_payload

INVOICE_ROUTE = "/organizations/{org}/invoices/{id}"
NOTE = "Reminder: this invoice is overdue"
HOLD_MS = 3000  # how long the emulator holds the request the customer pays behind
NOV_1 = pendulum.datetime(2026, 11, 1, tz="UTC")
UPDATE_KEY = "race-test-update"


def invoice_path(invoice_id: str) -> str:
    """The fault glob of this invoice only (``/invoices/*`` would also catch ``/invoices/event-trails``)."""
    return f"/organizations/*/invoices/{invoice_id}"


def seed_invoice(emulator: EmulatorHandle, **overrides: Any) -> str:
    response = requests.post(
        f"{emulator.base_url}/organizations/{emulator.org_id}/invoices",
        headers={"Authorization": f"Bearer {emulator.token}"},
        json=invoice_payload(**overrides),
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["id"])


class Customer(threading.Thread):
    """Pays ``invoice_id`` (admin set-status) once the emulator has counted ``count`` requests on
    ``method`` ``INVOICE_ROUTE``; with a delay fault on that request, the payment lands while it is held.
    ``status`` is what the payment sets (``paid`` sets ``paid_at``; ``payment_partial`` does not).

    Use as a context manager: leaving it stops the thread, so it never outlives its test."""

    def __init__(
        self, base_url: str, invoice_id: str, *, method: str, count: int, status: str = "paid"
    ) -> None:
        super().__init__(name="customer-pays", daemon=True)
        self.base_url, self.invoice_id, self.method, self.count = base_url, invoice_id, method, count
        self.status = status
        self.paid: dict[str, Any] | None = None
        self.error: str | None = None
        self._done = threading.Event()

    def __enter__(self) -> Customer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self.join()

    def run(self) -> None:
        emulator = EmulatorHandle(self.base_url)  # its own session: the test's handle stays on its thread
        try:
            # Waiting for an event the emulator reports (the request arrived), not timing the race.
            while emulator.request_count(self.method, INVOICE_ROUTE) < self.count:
                if self._done.wait(0.01):
                    self.error = f"the operator never sent {self.method} #{self.count}"
                    return
            self.paid = emulator.set_invoice_status(self.invoice_id, self.status)
        except Exception as exc:  # reported through the test's assertions
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            emulator.close()


def update_dag(invoice_id: str, failures: Failures, **kwargs: Any) -> Any:
    kwargs.setdefault("expected_statuses", ["pending", "sent_email"])
    with make_dag(new_dag_id("update_race")) as dag:
        EnlivyUpdateInvoiceOperator(
            task_id="update",
            invoice_id=invoice_id,
            changes={"status": "overdue", "note": NOTE},
            idempotency_key=UPDATE_KEY,
            retries=2,
            retry_delay=dt.timedelta(0),
            on_failure_callback=failures,
            **kwargs,
        )
    return dag


def run_while_customer_pays(
    emulator: EmulatorHandle,
    invoice_id: str,
    failures: Failures,
    *,
    method: str = "PUT",
    count: int = 1,
    status: str = "paid",
) -> tuple[dict[str, str], dict[str, Any]]:
    """Run the update DAG while the customer pays at the scripted moment; (task states, the payment's answer)."""
    with Customer(emulator.base_url, invoice_id, method=method, count=count, status=status) as customer:
        states, _ = run(update_dag(invoice_id, failures), logical_date=NOV_1)
    assert customer.error is None and customer.paid is not None, customer.error
    assert customer.paid["status"] == status
    return states, customer.paid


def assert_says(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, message


def the_invoice(emulator: EmulatorHandle) -> dict[str, Any]:
    [invoice] = emulator.live_invoices()
    return invoice


def put_keys(emulator: EmulatorHandle) -> list[str]:
    return [k["key"] for k in emulator.idempotency_keys() if k["method"] == "PUT"]


def test_payment_between_read_and_write_is_restored_and_fails_loudly(
    enlivy_emulator: EmulatorHandle, failures: Failures
) -> None:
    invoice_id = seed_invoice(enlivy_emulator)
    enlivy_emulator.add_fault("PUT", invoice_path(invoice_id), "delay", delay_ms=HOLD_MS)
    states, paid = run_while_customer_pays(enlivy_emulator, invoice_id, failures)

    # The race happened as scripted: the payment was stored before the operator's PUT was applied.
    assert paid["paid_at"] and paid["note_lang_map"] != {"en": NOTE}
    paid_at = paid["paid_at"]

    invoice = the_invoice(enlivy_emulator)
    assert (invoice["status"], invoice["paid_at"]) == ("paid", paid_at), invoice
    assert states == {"update": "failed"}
    assert [(task, kind) for task, kind, _ in failures.seen] == [("update", "AirflowFailException")]
    assert_says(
        failures.text(),
        invoice_id,
        f"was paid while this task updated it: a payment (status 'paid', paid_at '{paid_at}') landed "
        "between our read and our write",
        "status before our write: 'pending'",
        "we wrote: status 'overdue'",
        f"found after: status 'overdue', paid_at '{paid_at}'",
        f"restored: status 'paid', paid_at '{paid_at}'",
        "the other fields we wrote stay (note_lang_map)",
    )
    # The restore went out under its own key, derived from the update's.
    assert put_keys(enlivy_emulator) == [UPDATE_KEY, restore_key(UPDATE_KEY)]


def test_partial_payment_between_read_and_write_is_found_in_the_trail_and_restored(
    enlivy_emulator: EmulatorHandle, failures: Failures
) -> None:
    """A partial payment sets no paid_at: neither the PUT's answer nor the read-back shows it; the invoice's
    event trail does, and names the status to put back."""
    invoice_id = seed_invoice(enlivy_emulator)
    enlivy_emulator.add_fault("PUT", invoice_path(invoice_id), "delay", delay_ms=HOLD_MS)
    states, paid = run_while_customer_pays(enlivy_emulator, invoice_id, failures, status="payment_partial")
    assert paid["note_lang_map"] != {"en": NOTE}  # paid before our PUT was applied

    invoice = the_invoice(enlivy_emulator)
    assert (invoice["status"], invoice["paid_at"]) == ("payment_partial", None)
    assert states == {"update": "failed"}
    assert [kind for _, kind, _ in failures.seen] == ["AirflowFailException"]
    assert_says(
        failures.text(),
        "a payment (status 'payment_partial', paid_at None) landed between our read and our write",
        "found after: status 'overdue', paid_at None",
        "restored: status 'payment_partial', paid_at None",
    )
    assert put_keys(enlivy_emulator) == [UPDATE_KEY, restore_key(UPDATE_KEY)]


def test_without_a_readable_trail_paid_at_still_reveals_the_payment(
    enlivy_emulator: EmulatorHandle, failures: Failures
) -> None:
    invoice_id = seed_invoice(enlivy_emulator)
    enlivy_emulator.add_fault("GET", "/organizations/*/invoices/event-trails", "error", status=403, times=10)
    enlivy_emulator.add_fault("PUT", invoice_path(invoice_id), "delay", delay_ms=HOLD_MS)
    states, paid = run_while_customer_pays(enlivy_emulator, invoice_id, failures)
    invoice = the_invoice(enlivy_emulator)
    assert (invoice["status"], invoice["paid_at"]) == ("paid", paid["paid_at"])
    assert states == {"update": "failed"}
    assert "restored: status 'paid'" in failures.text(), failures.text()
    assert enlivy_emulator.request_count("GET", "/organizations/{org}/invoices/event-trails") == 1  # refused


def test_a_failed_restore_says_how_to_fix_it_and_a_rerun_restores_the_payment(
    enlivy_emulator: EmulatorHandle, failures: Failures
) -> None:
    invoice_id = seed_invoice(enlivy_emulator)
    enlivy_emulator.add_fault("PUT", invoice_path(invoice_id), "delay", delay_ms=HOLD_MS)  # the update, held
    enlivy_emulator.add_fault("PUT", invoice_path(invoice_id), "error", status=422)  # the restore, refused
    states, paid = run_while_customer_pays(enlivy_emulator, invoice_id, failures)
    paid_at = paid["paid_at"]
    assert states == {"update": "failed"}
    message = failures.text()
    assert "restored: FAILED (EnlivyValidationError: PUT " in message, message
    assert f"set it back by hand: PUT status 'paid', paid_at '{paid_at}'" in message, message
    invoice = the_invoice(enlivy_emulator)
    assert (invoice["status"], invoice["paid_at"]) == ("overdue", paid_at)  # exactly what the message says

    # Clearing and re-running the task (same key): the server replays the update, which proves the overwrite
    # was this task's, so the re-run puts the payment back (and still fails: nothing downstream may go on).
    rerun = Failures()
    states, _ = run(update_dag(invoice_id, rerun), logical_date=NOV_1)
    assert states == {"update": "failed"}
    assert f"restored: status 'paid', paid_at '{paid_at}'" in rerun.text(), rerun.text()
    invoice = the_invoice(enlivy_emulator)
    assert (invoice["status"], invoice["paid_at"]) == ("paid", paid_at)
    # The update, the refused restore, the update replayed, the restore.
    assert enlivy_emulator.request_count("PUT", INVOICE_ROUTE) == 4
    assert put_keys(enlivy_emulator) == [UPDATE_KEY, restore_key(UPDATE_KEY)]


def test_payment_between_write_and_read_back_fails_loudly_without_a_restore(
    enlivy_emulator: EmulatorHandle, failures: Failures
) -> None:
    invoice_id = seed_invoice(enlivy_emulator)
    # The first GET (the status check) passes at once; the second (the read-back after the PUT) is held.
    enlivy_emulator.add_fault("GET", invoice_path(invoice_id), "delay", delay_ms=0)
    enlivy_emulator.add_fault("GET", invoice_path(invoice_id), "delay", delay_ms=HOLD_MS)
    states, paid = run_while_customer_pays(enlivy_emulator, invoice_id, failures, method="GET", count=2)
    assert paid["note_lang_map"] == {"en": NOTE}  # our write was already stored, then the payment
    invoice = the_invoice(enlivy_emulator)
    assert (invoice["status"], invoice["paid_at"]) == ("paid", paid["paid_at"])
    assert states == {"update": "failed"}
    assert [kind for _, kind, _ in failures.seen] == ["AirflowFailException"]
    message = failures.text()
    assert "found after: status 'paid'" in message and "restored: nothing" in message, message
    assert put_keys(enlivy_emulator) == [UPDATE_KEY]  # nothing to restore: the payment is in place


def test_update_without_a_race_reads_back_and_succeeds(
    enlivy_emulator: EmulatorHandle, failures: Failures
) -> None:
    invoice_id = seed_invoice(enlivy_emulator)
    states, _ = run(update_dag(invoice_id, failures), logical_date=NOV_1)
    assert states == {"update": "success"}, failures.text()
    invoice = the_invoice(enlivy_emulator)
    assert (invoice["status"], invoice["paid_at"]) == ("overdue", None)
    assert enlivy_emulator.request_count("GET", INVOICE_ROUTE) == 2  # the status check and the read-back
    # The trail is read twice: its end before the update, what came after it once written.
    assert enlivy_emulator.request_count("GET", "/organizations/{org}/invoices/event-trails") == 2
    assert put_keys(enlivy_emulator) == [UPDATE_KEY]


def test_retried_update_after_a_lost_answer_is_no_false_race_alarm(
    enlivy_emulator: EmulatorHandle, connection_extra: Any, failures: Failures
) -> None:
    invoice_id = seed_invoice(enlivy_emulator)
    connection_extra(max_retries=0)  # the client gives up at once: the *task* fails and Airflow retries it
    enlivy_emulator.add_fault("PUT", invoice_path(invoice_id), "drop_after_commit")
    states, _ = run(update_dag(invoice_id, failures), logical_date=NOV_1)
    assert states == {"update": "success"}, failures.text()
    assert [kind for _, kind, _ in failures.seen] == []  # the retried attempt succeeded
    invoice = the_invoice(enlivy_emulator)
    assert (invoice["status"], invoice["paid_at"], invoice["note_lang_map"]) == (
        "overdue",
        None,
        {"en": NOTE},
    )
    assert enlivy_emulator.request_count("PUT", INVOICE_ROUTE) == 2  # the dropped one and the replayed one
    assert put_keys(enlivy_emulator) == [UPDATE_KEY]  # no restore


def test_an_invoice_already_paid_is_never_marked_unpaid(
    enlivy_emulator: EmulatorHandle, failures: Failures
) -> None:
    invoice_id = seed_invoice(enlivy_emulator)
    paid = enlivy_emulator.set_invoice_status(invoice_id, "paid")
    # No expected_statuses at all: still, an unpaid status is never written over a payment.
    states, _ = run(update_dag(invoice_id, failures, expected_statuses=None), logical_date=NOV_1)
    assert states == {"update": "failed"}
    assert [kind for _, kind, _ in failures.seen] == ["AirflowFailException"]
    assert "carries a payment (status 'paid', paid_at" in failures.text(), failures.text()
    invoice = the_invoice(enlivy_emulator)
    assert (invoice["status"], invoice["paid_at"]) == ("paid", paid["paid_at"])
    assert enlivy_emulator.request_count("PUT", INVOICE_ROUTE) == 0


def test_a_retry_after_a_lost_answer_that_overwrote_a_payment_restores_it(
    enlivy_emulator: EmulatorHandle, connection_extra: Any, failures: Failures
) -> None:
    """The first attempt's PUT is held while the customer pays, then committed (overwriting the payment) and
    its answer lost; the retried attempt finds its own status in place over the payment. The server replays
    the first answer for the same key, which proves the overwrite was this task's: the payment is restored
    and the task fails loudly instead of either refusing or passing."""
    invoice_id = seed_invoice(enlivy_emulator)
    connection_extra(max_retries=0)  # the lost answer fails the attempt: Airflow retries the task
    enlivy_emulator.add_fault("PUT", invoice_path(invoice_id), "drop_after_commit", delay_ms=HOLD_MS)
    states, paid = run_while_customer_pays(enlivy_emulator, invoice_id, failures)
    assert paid["note_lang_map"] != {"en": NOTE}  # paid before our PUT was applied
    paid_at = paid["paid_at"]

    invoice = the_invoice(enlivy_emulator)
    assert (invoice["status"], invoice["paid_at"]) == ("paid", paid_at), invoice
    assert states == {"update": "failed"}
    assert [kind for _, kind, _ in failures.seen] == ["AirflowFailException"], failures.text()
    assert_says(
        failures.seen[-1][2],
        invoice_id,
        f"a payment (status 'paid', paid_at '{paid_at}') landed between our read and our write in an earlier "
        "attempt of this task whose answer was lost",
        "status before our write: 'pending'",
        f"restored: status 'paid', paid_at '{paid_at}'",
    )
    assert put_keys(enlivy_emulator) == [UPDATE_KEY, restore_key(UPDATE_KEY)]


def test_a_retry_after_a_lost_answer_that_overwrote_a_partial_payment_restores_it(
    enlivy_emulator: EmulatorHandle, connection_extra: Any, failures: Failures
) -> None:
    """As above with a partial payment, which sets no paid_at: only the event trail shows it was overwritten."""
    invoice_id = seed_invoice(enlivy_emulator)
    connection_extra(max_retries=0)
    enlivy_emulator.add_fault("PUT", invoice_path(invoice_id), "drop_after_commit", delay_ms=HOLD_MS)
    states, _ = run_while_customer_pays(enlivy_emulator, invoice_id, failures, status="payment_partial")
    invoice = the_invoice(enlivy_emulator)
    assert (invoice["status"], invoice["paid_at"]) == ("payment_partial", None), invoice
    assert states == {"update": "failed"}
    assert_says(
        failures.seen[-1][2],
        "a payment (status 'payment_partial', paid_at None) landed between our read and our write in an "
        "earlier attempt of this task whose answer was lost",
        "restored: status 'payment_partial', paid_at None",
    )
    assert put_keys(enlivy_emulator) == [UPDATE_KEY, restore_key(UPDATE_KEY)]


def test_a_payment_overwritten_by_someone_else_is_not_restored_by_this_task(
    enlivy_emulator: EmulatorHandle, failures: Failures
) -> None:
    """Another writer set 'overdue' over a payment before the task ran: the task's key was never used, so the
    overwrite is not this task's to undo; it fails loudly naming the payment, and restores nothing."""
    invoice_id = seed_invoice(enlivy_emulator)
    paid = enlivy_emulator.set_invoice_status(invoice_id, "payment_partial")
    enlivy_emulator.set_invoice_status(invoice_id, "overdue")
    states, _ = run(update_dag(invoice_id, failures), logical_date=NOV_1)
    assert states == {"update": "failed"}
    assert [kind for _, kind, _ in failures.seen] == ["AirflowFailException"], failures.text()
    assert_says(
        failures.text(),
        f"invoice {invoice_id}: a payment (status 'payment_partial', paid_at None) had been overwritten by "
        "another write of status 'overdue' before this task ran",
        "not restored",
    )
    invoice = the_invoice(enlivy_emulator)
    assert invoice["status"] == "overdue" and paid["status"] == "payment_partial"
    assert restore_key(UPDATE_KEY) not in put_keys(enlivy_emulator)
