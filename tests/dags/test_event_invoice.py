"""dags/enlivy_event_invoice.py: typed params refused by Airflow itself, one invoice per event reference."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from airflow_support import REST_API_V2, run_dag, sync_dag_to_db, task_states, xcom_result
from dag_helpers import live_invoices

GLOBEX_ID = "org_user_2qD7mZ0demoCustomer000001"


def event(reference: str = "order-1001", **overrides: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "reference": reference,
        "occurred_on": "2026-11-20",
        "customer_email": "billing@globex.example",
        "currency": "EUR",
        "items": [
            {"name": "Onboarding workshop", "quantity": "1", "unit_price": "450.00", "unit": "day"},
            {"name": "Extra seats", "quantity": "3", "unit_price": "19.90"},
        ],
        "send_email": False,
        "wait_for_payment": False,
    }
    conf.update(overrides)
    return conf


@pytest.fixture
def emulator(enlivy_airflow_connection: Any) -> Any:
    return enlivy_airflow_connection


def test_same_event_twice_creates_one_invoice(event_dag: Any, emulator: Any) -> None:
    first = run_dag(event_dag, run_conf=event("order-1001"))
    second = run_dag(event_dag, run_conf=event("order-1001"))

    assert str(first.state) == "success", task_states(first)
    assert str(second.state) == "success", task_states(second)
    invoices = live_invoices(emulator)
    assert len(invoices) == 1
    assert xcom_result(first, "create_invoice")["id"] == xcom_result(second, "create_invoice")["id"]
    invoice = invoices[0]
    assert invoice["organization_receiver_user_id"] == GLOBEX_ID
    assert Decimal(str(invoice["total"])) == Decimal("509.70")  # 450.00 + 3 x 19.90, no tax class: no tax
    assert [line["name_lang_map"]["en"] for line in invoice["line_items"]] == [
        "Onboarding workshop",
        "Extra seats",
    ]


def test_same_event_redelivered_days_later_returns_the_same_invoice(event_dag: Any, emulator: Any) -> None:
    import pendulum

    first = run_dag(
        event_dag, run_conf=event("order-1005"), logical_date=pendulum.datetime(2026, 11, 20, tz="UTC")
    )
    later = run_dag(
        event_dag, run_conf=event("order-1005"), logical_date=pendulum.datetime(2026, 11, 24, tz="UTC")
    )

    assert str(later.state) == "success", task_states(later)
    assert xcom_result(first, "create_invoice")["id"] == xcom_result(later, "create_invoice")["id"]
    [invoice] = live_invoices(emulator)
    assert str(invoice["issued_at"]).startswith("2026-11-20")
    assert str(invoice["due_at"]).startswith("2026-12-04")


def test_different_events_create_different_invoices(event_dag: Any, emulator: Any) -> None:
    run_dag(event_dag, run_conf=event("order-1001"))
    run_dag(event_dag, run_conf=event("order-1002", currency="USD"))

    assert sorted(inv["currency"] for inv in live_invoices(emulator)) == ["EUR", "USD"]


def test_sends_the_invoice_once_and_waits_for_payment(event_dag: Any, emulator: Any) -> None:
    emulator.configure(auto_pay_after=0.5)

    dr = run_dag(event_dag, run_conf=event("order-2001", send_email=True, wait_for_payment=True))
    again = run_dag(event_dag, run_conf=event("order-2001", send_email=True, wait_for_payment=True))

    assert str(dr.state) == "success", task_states(dr)
    assert task_states(dr)["wait_for_payment"] == "success"
    invoice_id = xcom_result(dr, "create_invoice")["id"]
    assert xcom_result(dr, "wait_for_payment") == {invoice_id: "paid"}
    assert xcom_result(dr, "send_invoice_email") == {"invoice_id": invoice_id, "email": "sent"}
    # The re-delivered event: the same invoice, reported as replayed with its status now (paid), not e-mailed.
    second = xcom_result(again, "create_invoice")
    assert (second["id"], second["outcome"], second["status"]) == (invoice_id, "replayed", "paid")
    assert xcom_result(again, "send_invoice_email") == {"invoice_id": invoice_id, "email": "not_needed"}
    assert emulator.request_count("POST", "/organizations/{org}/invoices/{id}/email") == 1
    assert len(emulator.emails()) == 1


def test_an_email_sent_by_an_earlier_run_is_reported_as_such(event_dag: Any, emulator: Any) -> None:
    # An earlier run e-mailed the invoice (its answer lost), and the invoice is pending again when the event
    # comes back: the keyed request is replayed by the server, and the run says it did not send.
    from enlivy_provider.hooks.enlivy import EnlivyHook

    first = run_dag(event_dag, run_conf=event("order-2002"))
    invoice = xcom_result(first, "create_invoice")
    EnlivyHook().send_invoice_email(
        invoice["id"], to=["billing@globex.example"], subject=f"Invoice {invoice['formatted_number'] or invoice['id']}",
        idempotency_key="enlivy-event-invoice:order-2002:email",
    )  # fmt: skip
    EnlivyHook().update_invoice(invoice["id"], {"status": "pending"}, idempotency_key="pending-again")
    again = run_dag(event_dag, run_conf=event("order-2002", send_email=True))
    assert str(again.state) == "success", task_states(again)
    assert xcom_result(again, "send_invoice_email") == {"invoice_id": invoice["id"], "email": "already_sent"}
    assert len(emulator.emails()) == 1


def test_an_event_whose_invoice_was_cancelled_is_not_billed_again(event_dag: Any, emulator: Any) -> None:
    first = run_dag(event_dag, run_conf=event("order-2003"))
    invoice_id = xcom_result(first, "create_invoice")["id"]
    emulator.set_invoice_status(invoice_id, "cancelled")
    emulator.reset_counters()

    again = run_dag(event_dag, run_conf=event("order-2003"))
    states = task_states(again)
    assert states["create_invoice"] == "failed", states
    # One keyed create, answered with the replay of the cancelled invoice, and no retry of the task.
    assert emulator.request_count("POST", "/organizations/{org}/invoices") == 1
    assert [invoice["id"] for invoice in live_invoices(emulator)] == [invoice_id]


def test_skips_email_and_payment_wait_when_not_asked(event_dag: Any, emulator: Any) -> None:
    dr = run_dag(event_dag, run_conf=event("order-3001"))

    states = task_states(dr)
    assert states["create_invoice"] == "success"
    assert states["send_invoice_email"] == "skipped"
    assert states["wait_for_payment"] == "skipped"
    assert emulator.emails() == []


BAD_EVENTS = {
    "missing reference": {"reference": None},
    "not an email": {"customer_email": "globex"},
    "no items": {"items": []},
    "item without price": {"items": [{"name": "x", "quantity": "1"}]},
    "unknown item field": {"items": [{"name": "x", "quantity": "1", "unit_price": "1", "colour": "red"}]},
    "amount with a comma": {"items": [{"name": "x", "quantity": "1", "unit_price": "1,50"}]},
    "unknown currency": {"currency": "EURO"},
}


def bad_event(case: str) -> dict[str, Any]:
    conf = event(f"bad-{case.replace(' ', '-')}")
    conf.update(BAD_EVENTS[case])
    return {key: value for key, value in conf.items() if value is not None}


@pytest.mark.parametrize("case", sorted(BAD_EVENTS))
def test_bad_conf_is_refused_before_a_run_exists(event_dag: Any, emulator: Any, case: str) -> None:
    from airflow.providers.common.compat.sdk import ParamValidationError

    with pytest.raises(ParamValidationError):
        run_dag(event_dag, run_conf=bad_event(case))
    assert emulator.write_count() == 0


@pytest.fixture
def rest_api(event_dag: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Airflow's own REST API app (in process), with the event DAG in the metadata DB."""
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "test-only-" + "x" * 64)  # >= 64 bytes for HS512
    from airflow.api_fastapi.app import create_app

    sync_dag_to_db(event_dag)
    with TestClient(create_app(apps="core")) as client:
        yield client


@pytest.mark.airflow3_only(reason=REST_API_V2)
def test_rest_api_refuses_bad_conf_and_accepts_a_good_event(rest_api: Any) -> None:
    url = "/api/v2/dags/enlivy_event_invoice/dagRuns"

    refused = rest_api.post(url, json={"logical_date": None, "conf": bad_event("not an email")})
    accepted = rest_api.post(url, json={"logical_date": None, "conf": event("order-4001")})

    assert refused.status_code == 400, refused.text
    assert "customer_email" in refused.text
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["conf"]["reference"] == "order-4001"


def test_every_param_of_the_trigger_form_has_a_title_and_a_description(event_dag: Any) -> None:
    # The UI's trigger form shows a Param's title and description; without them it shows the raw name.
    for name in event_dag.params:
        param = event_dag.params.get_param(name)
        assert param.schema.get("title") and param.description, (
            f"{name}: {param.schema} {param.description!r}"
        )
