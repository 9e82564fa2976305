"""EnlivyInvoiceStatusSensor in poke mode against the emulator over HTTP (real BaseSensorOperator loop)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

from enlivy_provider.client import EnlivyClient
from enlivy_provider.emulator.seed import OTHER_CUSTOMER_ID
from enlivy_provider.sensors.invoice_status import EnlivyInvoiceStatusSensor

pytestmark = pytest.mark.usefixtures("enlivy_airflow_connection")


def _sensor(invoice_ids: Any, **kwargs: Any) -> EnlivyInvoiceStatusSensor:
    kwargs.setdefault("poke_interval", 0.1)
    kwargs.setdefault("timeout", 15)
    kwargs.setdefault("deferrable", False)
    return EnlivyInvoiceStatusSensor(task_id="wait_for_payment", invoice_ids=invoice_ids, **kwargs)


def test_succeeds_once_the_invoices_are_marked_paid(
    make_invoices: Callable[..., list[str]], pay_later: Callable[..., None]
) -> None:
    ids = make_invoices(3)
    pay_later(ids, after=0.4)

    result = _sensor(ids).execute({})

    assert result == dict.fromkeys(ids, "paid")


def test_accepts_the_bulk_operator_output_and_summaries(make_invoices: Callable[..., list[str]]) -> None:
    ids = make_invoices(2, status="paid")

    assert _sensor({"created": [], "invoice_ids": ids}).execute({}) == dict.fromkeys(ids, "paid")
    assert _sensor([{"id": i, "status": "paid"} for i in ids]).execute({}) == dict.fromkeys(ids, "paid")


def test_several_target_statuses(make_invoices: Callable[..., list[str]], enlivy_emulator: Any) -> None:
    ids = make_invoices(2)
    enlivy_emulator.set_invoice_status(ids[0], "paid")
    enlivy_emulator.set_invoice_status(ids[1], "solved")

    result = _sensor(ids, target_statuses=["paid", "solved"]).execute({})

    assert result == {ids[0]: "paid", ids[1]: "solved"}


def test_failure_status_fails_at_once_naming_the_invoice(
    make_invoices: Callable[..., list[str]], enlivy_emulator: Any, invoice_list_calls: Callable[[], int]
) -> None:
    ids = make_invoices(3)
    enlivy_emulator.set_invoice_status(ids[1], "cancelled")
    enlivy_emulator.reset_counters()

    with pytest.raises(AirflowFailException, match=rf"1 of 3 invoice\(s\).*{ids[1]} \(status cancelled\)"):
        _sensor(ids).execute({})
    assert invoice_list_calls() == 1  # no second poke


def test_custom_failure_status(make_invoices: Callable[..., list[str]], enlivy_emulator: Any) -> None:
    ids = make_invoices(1)
    enlivy_emulator.set_invoice_status(ids[0], "overdue")

    with pytest.raises(AirflowFailException, match="status overdue"):
        _sensor(ids, failure_statuses=["cancelled", "overdue"]).execute({})


def test_missing_invoice_fails_at_once(make_invoices: Callable[..., list[str]]) -> None:
    ids = make_invoices(1, status="paid")
    missing = "org_inv_doesNotExist000000000001"

    with pytest.raises(AirflowFailException, match=rf"{missing} \(not found\)"):
        _sensor([*ids, missing]).execute({})


def test_invoice_of_another_organization_counts_as_missing(
    enlivy_emulator: Any, new_invoice_payload: Callable[..., dict[str, Any]]
) -> None:
    with EnlivyClient(
        enlivy_emulator.base_url, enlivy_emulator.other_token, organization_id=enlivy_emulator.other_org_id
    ) as other:
        foreign = other.create_invoice(new_invoice_payload(0, "paid", customer_id=OTHER_CUSTOMER_ID))["id"]

    with pytest.raises(AirflowFailException, match=rf"{foreign} \(not found\)"):
        _sensor([foreign]).execute({})


def test_deleted_invoice_fails_as_deleted(
    make_invoices: Callable[..., list[str]], client: EnlivyClient
) -> None:
    ids = make_invoices(2, status="paid")
    client.delete_invoice(ids[0])

    with pytest.raises(AirflowFailException, match=rf"{ids[0]} \(deleted \(status paid\)\)"):
        _sensor(ids).execute({})


def test_timeout_lists_the_pending_invoices_and_their_statuses(
    make_invoices: Callable[..., list[str]], enlivy_emulator: Any
) -> None:
    ids = make_invoices(3, status="draft")
    enlivy_emulator.set_invoice_status(ids[0], "paid")
    enlivy_emulator.set_invoice_status(ids[2], "sent_email")

    with pytest.raises(AirflowSensorTimeout) as raised:
        _sensor(ids, timeout=0.3).execute({})

    message = str(raised.value)
    assert "2 of 3 invoice(s) still pending" in message
    assert f"{ids[1]} (draft)" in message and f"{ids[2]} (sent_email)" in message
    assert ids[0] not in message


def test_soft_fail_skips_on_timeout_with_the_pending_list(make_invoices: Callable[..., list[str]]) -> None:
    ids = make_invoices(1)

    with pytest.raises(AirflowSkipException, match=rf"{ids[0]} \(pending\)"):
        _sensor(ids, timeout=0.3, soft_fail=True).execute({})


def test_soft_fail_skips_on_a_failure_status(
    make_invoices: Callable[..., list[str]], enlivy_emulator: Any
) -> None:
    ids = make_invoices(1)
    enlivy_emulator.set_invoice_status(ids[0], "cancelled")

    with pytest.raises(AirflowSkipException, match="status cancelled"):
        _sensor(ids, soft_fail=True).execute({})


def test_transient_errors_do_not_end_the_wait(
    make_invoices: Callable[..., list[str]],
    enlivy_emulator: Any,
    invoice_list_calls: Callable[[], int],
    no_retry_conn_id: str,
) -> None:
    ids = make_invoices(1, status="paid")
    enlivy_emulator.add_fault("GET", "/organizations/*/invoices", "error", status=503, times=2)
    enlivy_emulator.reset_counters()

    assert _sensor(ids, enlivy_conn_id=no_retry_conn_id).execute({}) == {ids[0]: "paid"}
    assert invoice_list_calls() == 3


def test_api_down_until_the_timeout_says_why(
    make_invoices: Callable[..., list[str]], enlivy_emulator: Any, no_retry_conn_id: str
) -> None:
    ids = make_invoices(1)
    enlivy_emulator.add_fault("GET", "/organizations/*/invoices", "error", status=503, times=1000)

    with pytest.raises(AirflowSensorTimeout, match=rf"{ids[0]} \(status not read\).*503"):
        _sensor(ids, enlivy_conn_id=no_retry_conn_id, timeout=0.5).execute({})


def test_bad_token_fails_without_retry_and_without_leaking_it(
    make_invoices: Callable[..., list[str]],
    bad_token_conn_id: str,
    bad_token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = make_invoices(1)

    with pytest.raises(AirflowFailException, match="401") as raised:
        _sensor(ids, enlivy_conn_id=bad_token_conn_id).execute({})

    assert bad_token not in str(raised.value)
    assert bad_token not in caplog.text


def test_soft_fail_skips_on_a_bad_token_saying_why(
    make_invoices: Callable[..., list[str]], bad_token_conn_id: str
) -> None:
    ids = make_invoices(1)

    with pytest.raises(AirflowSkipException, match="401"):
        _sensor(ids, enlivy_conn_id=bad_token_conn_id, soft_fail=True).execute({})


@pytest.mark.parametrize("deferrable", [False, True])
def test_unusable_connection_fails_without_retry_in_every_mode(
    enlivy_emulator: Any, monkeypatch: pytest.MonkeyPatch, deferrable: bool
) -> None:
    """As the trigger's error event does: a missing connection or bad extras will not fix themselves."""
    monkeypatch.setenv("AIRFLOW_CONN_ENLIVY_BAD_EXTRA", enlivy_emulator.connection_json(auth="oauth"))

    for conn_id, reason in (("no_such_connection", "isn't defined"), ("enlivy_bad_extra", "'auth'")):
        sensor = _sensor(["org_inv_x"], enlivy_conn_id=conn_id, deferrable=deferrable)
        with pytest.raises(
            AirflowFailException, match=rf"Cannot use Enlivy connection '{conn_id}'.*{reason}"
        ):
            sensor.execute({})
        with pytest.raises(AirflowSkipException, match=rf"'{conn_id}'"):
            _sensor(["org_inv_x"], enlivy_conn_id=conn_id, deferrable=deferrable, soft_fail=True).execute({})
