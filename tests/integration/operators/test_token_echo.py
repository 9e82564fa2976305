"""An Enlivy error answer that echoes the API token (whole, or only its secret after ``N|``) leaves no trace of
it in a real task run: not in the failure text, the exception Airflow gets, the task log, or XCom."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from airflow_support import all_xcoms, task_log
from invoice_support import CUSTOMERS, OCTOBER, PLATFORM, bulk_dag, make_dag, new_dag_id, run, try_numbers
from secret_support import ECHO_BODY, ECHO_HEADERS, reachable_text, secret_of

from enlivy_provider.operators.invoices import EnlivyCreateInvoiceOperator

LINE = {"product_id": PLATFORM, "quantity": 1}


class Caught:
    """on_failure_callback / on_retry_callback keeping the exception objects themselves."""

    def __init__(self) -> None:
        self.exceptions: list[BaseException] = []

    def __call__(self, context: Any) -> None:
        self.exceptions.append(context["exception"])


def create_dag(name: str, failed: Caught, **task_args: Any) -> Any:
    """One EnlivyCreateInvoiceOperator ``create`` billing October for the first demo customer."""
    with make_dag(new_dag_id(name)) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=CUSTOMERS[0],
            line_items=[LINE],
            invoice={"currency": "EUR"},
            billing_period=OCTOBER,
            on_failure_callback=failed,
            **task_args,
        )
    return dag


def all_xcom_values(dag_run: Any) -> str:
    """Every XCom of the run (any task, any key), as JSON text."""
    return json.dumps(all_xcoms(dag_run), default=str)


def assert_token_absent(token: str, *texts: str) -> None:
    for text in texts:
        assert token not in text
        assert secret_of(token) not in text


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/organizations/*/invoices", 422),  # the create itself is refused
        ("GET", "/organizations/*/users/*", 401),  # the customer lookup is refused
    ],
    ids=["create_422", "lookup_401"],
)
def test_single_create_failure_shows_no_token(
    enlivy_emulator: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    status: int,
) -> None:
    token = enlivy_emulator.token
    enlivy_emulator.add_fault(method, path, "error", status=status, body=ECHO_BODY, headers=ECHO_HEADERS)
    failed = Caught()
    states, dag_run = run(create_dag("token_echo", failed, retries=2, retry_delay=dt.timedelta(0)))
    log = task_log(capfd, caplog)

    assert states == {"create": "failed"} and try_numbers(dag_run) == {"create": 1}  # 4xx: no retry
    [exc] = failed.exceptions
    assert type(exc).__name__ == "AirflowFailException"
    text = str(exc)
    assert f"→ {status} Token *** is not allowed here (secret ***)" in text  # the echo arrived, masked
    assert "Token *** is not allowed here" in log  # the task log has the failure too
    assert_token_absent(token, text, repr(exc), reachable_text(exc), log, all_xcom_values(dag_run))
    assert enlivy_emulator.live_invoices() == []


def test_bulk_failures_in_xcom_show_no_token(
    enlivy_emulator: Any, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    token = enlivy_emulator.token
    enlivy_emulator.add_fault(
        "POST",
        "/organizations/*/invoices",
        "error",
        status=422,
        body=ECHO_BODY,
        headers=ECHO_HEADERS,
        times=2,
    )
    failed = Caught()
    specs = [{"customer": customer, "line_items": [LINE]} for customer in CUSTOMERS[:3]]
    states, dag_run = run(bulk_dag("token_echo_bulk", specs, max_concurrency=1, on_failure_callback=failed))
    log = task_log(capfd, caplog)

    assert states == {"bulk": "failed"}
    [exc] = failed.exceptions
    xcoms = all_xcom_values(dag_run)
    assert "bulk_result" in xcoms and "Token *** is not allowed here" in xcoms  # failures are in XCom, masked
    assert "2 of 3 invoices failed" in str(exc)
    assert_token_absent(token, str(exc), repr(exc), reachable_text(exc), log, xcoms)
    assert len(enlivy_emulator.live_invoices()) == 1


def test_a_connection_error_in_a_task_keeps_no_request_headers(
    enlivy_emulator: Any,
    connection_extra: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A lost connection fails the task for Airflow to retry; the exception it hands over (and its context
    chain) must not carry the request the transport failed on, with its Authorization header."""
    connection_extra(max_retries=0)
    enlivy_emulator.add_fault("GET", "/organizations/*/users/*", "drop_before_commit", times=5)
    failed = Caught()
    states, dag_run = run(create_dag("token_echo_connection", failed))
    log = task_log(capfd, caplog)

    assert states == {"create": "failed"}
    [exc] = failed.exceptions
    assert "connection error" in str(exc) and "transient" in str(exc)
    assert "connection error" in log
    assert_token_absent(enlivy_emulator.token, str(exc), reachable_text(exc), log, all_xcom_values(dag_run))
