"""Trigger serialisation and the event contract between trigger and sensor (no network)."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import pytest
from airflow.providers.common.compat.module_loading import import_string
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

from enlivy_provider.invoice_status import ObservedStatuses, classify
from enlivy_provider.sensors.invoice_status import EnlivyInvoiceStatusSensor
from enlivy_provider.triggers.invoice_status import (
    EnlivyInvoiceStatusTrigger,
    InvoiceStatusEvent,
    backoff_delay,
)


def _trigger() -> EnlivyInvoiceStatusTrigger:
    return EnlivyInvoiceStatusTrigger(
        invoice_ids=["org_inv_1", "org_inv_2"],
        target_statuses=["paid"],
        failure_statuses=["cancelled", "overdue"],
        enlivy_conn_id="enlivy_billing",
        poll_interval=5,
        end_time=1_800_000_000.5,
    )


def test_serialize_gives_json_safe_kwargs_that_rebuild_the_trigger() -> None:
    classpath, kwargs = _trigger().serialize()
    assert classpath == "enlivy_provider.triggers.invoice_status.EnlivyInvoiceStatusTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_kwargs_survive_airflows_own_serializer_as_the_task_runner_and_triggerer_use_it() -> None:
    from airflow_support import stored_trigger_kwargs

    classpath, kwargs = _trigger().serialize()
    stored = stored_trigger_kwargs(kwargs)  # DeferTask.trigger_kwargs (3.x), then the trigger table

    assert import_string(classpath)(**stored).serialize() == (classpath, kwargs)


def test_serialize_carries_no_secret_and_no_client() -> None:
    _, kwargs = _trigger().serialize()
    assert set(kwargs) == {
        "invoice_ids",
        "target_statuses",
        "failure_statuses",
        "enlivy_conn_id",
        "poll_interval",
        "end_time",
        "max_backoff",
        "share_poller",
    }


def test_trigger_normalises_and_checks_its_arguments_like_the_sensor() -> None:
    trigger = EnlivyInvoiceStatusTrigger(
        invoice_ids={"invoice_ids": ["b", "a", "b"]}, target_statuses=["PAID"], failure_statuses=[]
    )
    assert (trigger.invoice_ids, trigger.target_statuses, trigger.failure_statuses) == (
        ["b", "a"],
        ["paid"],
        [],
    )
    assert EnlivyInvoiceStatusTrigger(invoice_ids=["a"]).failure_statuses == ["cancelled"]
    with pytest.raises(ValueError, match="both in target_statuses and failure_statuses"):
        EnlivyInvoiceStatusTrigger(invoice_ids=["a"], target_statuses=["paid"], failure_statuses=["paid"])


def test_share_poller_must_be_a_bool_in_the_sensor_and_the_trigger() -> None:
    # "false" would be truthy: refused when the DAG is parsed, naming the argument.
    with pytest.raises(TypeError, match="share_poller: expected True or False, got str 'false'"):
        EnlivyInvoiceStatusSensor(task_id="wait", invoice_ids=["a"], share_poller="false")
    with pytest.raises(TypeError, match="share_poller: expected True or False, got int 0"):
        EnlivyInvoiceStatusTrigger(invoice_ids=["a"], share_poller=0)
    assert EnlivyInvoiceStatusTrigger(invoice_ids=["a"]).share_poller is True


def test_backoff_grows_and_is_capped() -> None:
    assert 0.5 <= backoff_delay(1, base=1, cap=60) <= 1
    assert 4 <= backoff_delay(4, base=1, cap=60) <= 8
    assert backoff_delay(40, base=1, cap=60) <= 60


# ---------------------------------------------------------------------------------------- event payloads


def _check(statuses: dict[str, str], ids: list[str] | None = None) -> Any:
    return classify(ids or list(statuses), ObservedStatuses(statuses=statuses), ("paid",), ("cancelled",))


def test_event_payload_round_trips_through_json() -> None:
    event = InvoiceStatusEvent.from_check(_check({"a": "paid"}), status="success", message="ok")
    payload = json.loads(json.dumps(event.to_payload()))
    assert InvoiceStatusEvent.from_payload(payload) == event


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (None, "expected a dict, got NoneType"),
        ("success", "expected a dict, got str"),
        ({"status": "done", "message": "x"}, "unknown status 'done'"),
        ({"status": "success"}, "'message' must be a string"),
        ({"status": "success", "message": "x"}, "must carry 'statuses'"),
        ({"status": "success", "message": "x", "statuses": {"a": 1}}, "'statuses' must map"),
        ({"status": "failure", "message": "x", "failures": ["a"]}, "'failures' must map"),
    ],
)
def test_malformed_payloads_are_refused_with_the_reason(payload: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        InvoiceStatusEvent.from_payload(payload)


# ---------------------------------------------------------------------------------------- execute_complete


def _sensor(**kwargs: Any) -> EnlivyInvoiceStatusSensor:
    return EnlivyInvoiceStatusSensor(task_id="wait", invoice_ids=["a", "b"], **kwargs)


def test_success_event_returns_the_status_map() -> None:
    event = InvoiceStatusEvent.from_check(_check({"a": "paid", "b": "paid"}), status="success", message="ok")
    assert _sensor().execute_complete({}, event.to_payload()) == {"a": "paid", "b": "paid"}


def test_failure_event_fails_without_retry_naming_the_invoice() -> None:
    check = _check({"a": "paid", "b": "cancelled"})
    event = InvoiceStatusEvent.from_check(check, status="failure", message=check.failure_message())
    with pytest.raises(AirflowFailException, match=r"b \(status cancelled\)"):
        _sensor().execute_complete({}, event.to_payload())


def test_timeout_event_is_a_sensor_timeout_listing_pending_invoices() -> None:
    check = _check({"a": "paid", "b": "sent_email"})
    event = InvoiceStatusEvent.from_check(check, status="timeout", message=check.timeout_message())
    with pytest.raises(AirflowSensorTimeout, match=r"b \(sent_email\)"):
        _sensor().execute_complete({}, event.to_payload())


def test_error_event_fails_without_retry() -> None:
    with pytest.raises(AirflowFailException, match="401"):
        _sensor().execute_complete({}, {"status": "error", "message": "GET /x → 401 Unauthenticated"})


def test_unknown_event_is_a_clear_error() -> None:
    with pytest.raises(
        AirflowException, match="Invalid event from EnlivyInvoiceStatusTrigger: unknown status"
    ):
        _sensor().execute_complete({}, {"status": "weird", "message": "?"})


def test_missing_event_is_a_clear_error() -> None:
    with pytest.raises(AirflowException, match=r"Invalid event.*expected a dict, got NoneType"):
        _sensor().execute_complete({}, None)


def test_soft_fail_turns_a_timeout_event_into_a_skip() -> None:
    check = _check({"a": "pending", "b": "paid"})
    event = InvoiceStatusEvent.from_check(check, status="timeout", message=check.timeout_message())
    with pytest.raises(AirflowSkipException):
        _sensor(soft_fail=True).resume_execution("execute_complete", {"event": event.to_payload()}, {})


@pytest.mark.parametrize("flag", ["soft_fail", "never_fail"])
def test_the_skip_of_a_deferred_wait_names_the_invoices_as_in_poke_mode(flag: str) -> None:
    """docs/sensor.md: with soft_fail the failure or timeout becomes a skip "with the same text"."""
    timeout = _check({"a": "pending", "b": "paid"})
    failure = _check({"a": "cancelled", "b": "paid"})
    for status, check, text in (
        ("timeout", timeout, timeout.timeout_message()),
        ("failure", failure, failure.failure_message()),
    ):
        event = InvoiceStatusEvent.from_check(check, status=status, message=text)
        with pytest.raises(AirflowSkipException, match=re.escape(text)):
            _sensor(**{flag: True}).resume_execution("execute_complete", {"event": event.to_payload()}, {})


def test_a_deferral_that_times_out_is_a_sensor_timeout_naming_the_invoices() -> None:
    """The scheduler fails a deferral that outlived timeout + grace (the trigger never fired): as the
    sensor's own timeout (no retry), naming the invoices, whatever this Airflow calls it."""
    from airflow_support import deferral_timeout_kwargs

    with pytest.raises(AirflowSensorTimeout, match=r"Timed out.*a \(status not read\).*trigger"):
        _sensor().resume_execution("__fail__", deferral_timeout_kwargs(), {})


@pytest.mark.parametrize("flag", ["soft_fail", "never_fail"])
def test_a_deferral_timeout_is_skipped_with_soft_fail_or_never_fail(flag: str) -> None:
    from airflow_support import deferral_timeout_kwargs

    with pytest.raises(
        AirflowSkipException, match=r"Skipped \(soft_fail\)\. Timed out.*a \(status not read\)"
    ):
        _sensor(**{flag: True}).resume_execution("__fail__", deferral_timeout_kwargs(), {})


def test_a_failed_trigger_fails_the_sensor_with_its_error_or_skips_with_never_fail() -> None:
    kwargs = {"error": "Trigger failure", "traceback": ["Traceback...", "RuntimeError: boom"]}
    with pytest.raises(AirflowException, match="Trigger failure"):
        _sensor().resume_execution("__fail__", kwargs, {})
    with pytest.raises(AirflowSkipException, match="Trigger failure"):
        _sensor(never_fail=True).resume_execution("__fail__", kwargs, {})


# ---------------------------------------------------------------------------------------- sensor arguments


def test_invoice_ids_and_statuses_are_templated() -> None:
    assert {"invoice_ids", "target_statuses", "failure_statuses"} <= set(
        EnlivyInvoiceStatusSensor.template_fields
    )


def test_defaults_wait_for_paid_and_fail_on_cancelled() -> None:
    sensor = _sensor()
    assert tuple(sensor.target_statuses) == ("paid",)
    assert tuple(sensor.failure_statuses) == ("cancelled",)
    assert sensor.enlivy_conn_id == "enlivy_default"


def test_empty_invoice_list_succeeds_without_a_request() -> None:
    sensor = EnlivyInvoiceStatusSensor(task_id="wait", invoice_ids=[], enlivy_conn_id="does_not_exist")
    assert sensor.execute({}) == {}


def test_overlapping_statuses_fail_before_any_request() -> None:
    sensor = _sensor(target_statuses=["paid"], failure_statuses=["paid"], enlivy_conn_id="does_not_exist")
    # AirflowFailException: a retry cannot fix the DAG's arguments.
    with pytest.raises(AirflowFailException, match="both in target_statuses and failure_statuses"):
        sensor.execute({})


def test_deferrable_defaults_to_the_operators_default_deferrable_setting() -> None:
    from airflow.providers.common.compat.sdk import conf

    default = inspect.signature(EnlivyInvoiceStatusSensor.__init__).parameters["deferrable"].default
    assert default is conf.getboolean("operators", "default_deferrable", fallback=False)
    assert _sensor().deferrable is default
