"""EnlivyCreateInvoiceOperator: how its inputs reach it (Jinja, native rendering, files, XCom, email lookup)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import task
from airflow_support import extra_link
from invoice_support import (
    CONSULTING,
    CUSTOMERS,
    OCTOBER,
    PLATFORM,
    VAT19,
    make_dag,
    new_dag_id,
    result,
    run,
)

from enlivy_provider.emulator import seed
from enlivy_provider.links import EnlivyInvoiceLink
from enlivy_provider.operators.invoices import EnlivyCreateInvoiceOperator


def stored_lines(enlivy_emulator: Any, invoice_id: str) -> list[dict[str, Any]]:
    [invoice] = [i for i in enlivy_emulator.invoices() if i["id"] == invoice_id]
    return sorted(invoice["line_items"], key=lambda li: li["order"])


def test_jinja_in_nested_dicts_and_lists_renders_to_decimals(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("jinja"), params={"hours": "7.5", "rate": "95.10", "who": CUSTOMERS[1]}) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer="{{ params.who }}",
            line_items=[
                {
                    "name": "Consulting {{ params.hours }} h",
                    "quantity": "{{ params.hours }}",
                    "price": "{{ params.rate }}",
                    "billing_period": {"start": "{{ '2026-10-01' }}", "end": "2026-10-{{ 30 + 1 }}"},
                    "invoice_schema_map": {"peppol_billing_unit_code": "{{ 'HUR' }}"},
                }
            ],
            invoice={"currency": "{{ 'EUR' }}", "note_lang_map": {"en": "Run {{ run_id }}", "de": "Lauf"}},
        )
    states, dag_run = run(dag)
    assert states == {"create": "success"}
    summary = result(dag_run, "create")
    [line] = stored_lines(enlivy_emulator, summary["id"])
    assert Decimal(str(line["quantity"])) == Decimal("7.5")
    assert Decimal(str(line["price"])) == Decimal("95.10")
    assert line["name_lang_map"] == {"en": "Consulting 7.5 h"}
    assert (line["billing_period_started_at"], line["billing_period_ended_at"]) == (
        "2026-10-01",
        "2026-10-31",
    )
    assert summary["totals"] == {
        "sub_total": "713.25",
        "discount": "0.00",
        "tax_total": "0.00",
        "total": "713.25",
    }


def test_native_rendering_keeps_numbers_and_lists(enlivy_emulator: Any) -> None:
    params = {"lines": [{"product_id": CONSULTING, "quantity": 2.5, "price": 95.1}], "qty": 3}
    with make_dag(new_dag_id("native"), params=params, render_template_as_native_obj=True) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=CUSTOMERS[0],
            line_items="{{ params.lines + [{'product_id': '" + PLATFORM + "', 'quantity': params.qty}] }}",
            invoice={"currency": "EUR"},
        )
    states, dag_run = run(dag)
    assert states == {"create": "success"}
    lines = stored_lines(enlivy_emulator, result(dag_run, "create")["id"])
    # The float 95.1 travels as str(95.1), never as Decimal(95.1) = 95.09999999999999431565811391...
    assert Decimal(str(lines[0]["price"])) == Decimal("95.10")
    assert Decimal(str(lines[0]["quantity"])) == Decimal("2.5")
    assert Decimal(str(lines[1]["quantity"])) == Decimal(3)


def test_line_items_from_a_json_j2_template_file(enlivy_emulator: Any, tmp_path: Path) -> None:
    (tmp_path / "lines.json.j2").write_text(
        json.dumps(
            [
                {"product_id": PLATFORM, "quantity": 1},
                {"name": "Support {{ params.tier }}", "quantity": "{{ params.hours }}", "price": 12.10},
            ]
        )
    )
    (tmp_path / "invoice.json").write_text(json.dumps({"currency": "EUR", "due_in_days": 14}))
    with make_dag(
        new_dag_id("files"), template_searchpath=[str(tmp_path)], params={"tier": "gold", "hours": 3}
    ) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create", customer=CUSTOMERS[2], line_items="lines.json.j2", invoice="invoice.json"
        )
    states, dag_run = run(dag)
    assert states == {"create": "success"}
    summary = result(dag_run, "create")
    lines = stored_lines(enlivy_emulator, summary["id"])
    assert lines[1]["name_lang_map"] == {"en": "Support gold"}
    assert Decimal(str(lines[1]["price"])) == Decimal("12.10")
    assert summary["totals"]["total"] == str(Decimal("236.81") + Decimal("36.30"))


def test_line_items_and_customer_from_xcom(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("xcom")) as dag:

        @task
        def usage() -> list[dict[str, Any]]:
            return [{"product_id": seed.DEMO_PRODUCTS[1].id, "quantity": "1234.5", "tax_class_id": VAT19}]

        @task
        def who() -> dict[str, str]:
            return {"email": "finance@umbrella.example"}

        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=who(),
            line_items=usage(),
            invoice={"currency": "EUR"},
            billing_period=OCTOBER,
        )
    states, dag_run = run(dag)
    assert states == {"usage": "success", "who": "success", "create": "success"}
    summary = result(dag_run, "create")
    assert summary["customer_id"] == seed.DEMO_CUSTOMERS[2].id
    assert summary["totals"] == {
        "sub_total": "555.53",
        "discount": "0.00",
        "tax_total": "105.55",
        "total": "661.08",
    }


def test_customer_by_email(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("email")) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer={"email": "AP@initech.example"},
            line_items=[{"name": "x", "quantity": 1, "price": 1}],
            invoice={"currency": "USD"},
        )
    states, dag_run = run(dag)
    assert states == {"create": "success"}
    assert result(dag_run, "create")["customer_id"] == seed.DEMO_CUSTOMERS[1].id


def test_dry_run_previews_and_writes_nothing(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("dry")) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create",
            customer=CUSTOMERS[0],
            line_items=[{"product_id": PLATFORM, "quantity": 2, "discount": "18"}],
            invoice={"currency": "EUR"},
            billing_period=OCTOBER,
            dry_run=True,
        )
    states, dag_run = run(dag)
    assert states == {"create": "success"}
    preview = result(dag_run, "create")
    assert preview["dry_run"] is True
    assert preview["totals"] == {
        "sub_total": "398.00",
        "discount": "18.00",
        "tax_total": "72.20",
        "total": "452.20",
    }
    assert preview["lines"][0]["billing_period"] == ["2026-10-01", "2026-10-31"]
    assert enlivy_emulator.write_count() == 0


def test_summary_url_and_extra_link_come_from_app_url(enlivy_emulator: Any, connection_extra: Any) -> None:
    connection_extra(app_url="https://app.example/o/{organization_id}/invoices/{invoice_id}")
    with make_dag(new_dag_id("link")) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create", customer=CUSTOMERS[0], line_items=[{"product_id": PLATFORM, "quantity": 1}],
            invoice={"currency": "EUR"},
        )  # fmt: skip
    states, dag_run = run(dag)
    assert states == {"create": "success"}
    summary = result(dag_run, "create")
    assert summary["url"] == f"https://app.example/o/{enlivy_emulator.org_id}/invoices/{summary['id']}"
    assert extra_link(dag_run, "create", EnlivyInvoiceLink()) == summary["url"]  # the UI's "Enlivy invoice"
    assert enlivy_emulator.token not in json.dumps(summary)


def test_billing_period_from_the_data_interval(enlivy_emulator: Any) -> None:
    import pendulum

    from enlivy_provider.compat import CronDataIntervalTimetable

    # Airflow 3's "@monthly" is a CronTriggerTimetable (zero-length intervals); billing wants real ones.
    schedule = CronDataIntervalTimetable("0 0 1 * *", timezone="UTC")
    with make_dag(new_dag_id("interval"), schedule=schedule) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create", customer=CUSTOMERS[3], line_items=[{"product_id": PLATFORM, "quantity": 1}],
            invoice={"currency": "EUR"}, billing_period="data_interval",
        )  # fmt: skip
    states, dag_run = run(dag, logical_date=pendulum.datetime(2026, 11, 1, tz="UTC"))
    assert states == {"create": "success"}
    [line] = stored_lines(enlivy_emulator, result(dag_run, "create")["id"])
    assert (line["billing_period_started_at"], line["billing_period_ended_at"]) == (
        "2026-10-01",
        "2026-10-31",
    )


@pytest.mark.parametrize("start_date_zone", ["Europe/Berlin", "UTC"])
def test_data_interval_days_are_taken_in_the_schedules_time_zone(
    enlivy_emulator: Any, start_date_zone: str
) -> None:
    """Days are counted in the timetable's zone, even when the start_date is given in another one."""
    import pendulum

    from enlivy_provider.compat import CronDataIntervalTimetable

    schedule = CronDataIntervalTimetable("0 0 1 * *", timezone="Europe/Berlin")
    with make_dag(
        new_dag_id("interval_tz"),
        schedule=schedule,
        start_date=pendulum.datetime(2026, 1, 1, tz=start_date_zone),
    ) as dag:
        EnlivyCreateInvoiceOperator(
            task_id="create", customer=CUSTOMERS[3], line_items=[{"product_id": PLATFORM, "quantity": 1}],
            invoice={"currency": "EUR", "due_in_days": 10}, billing_period="data_interval",
        )  # fmt: skip
    # The interval is 2026-09-30T22:00Z .. 2026-10-31T23:00Z: October in Berlin, not 30 Sep .. 30 Oct.
    states, dag_run = run(dag, logical_date=pendulum.datetime(2026, 11, 1, tz="Europe/Berlin"))
    assert states == {"create": "success"}
    summary = result(dag_run, "create")
    [line] = stored_lines(enlivy_emulator, summary["id"])
    assert (line["billing_period_started_at"], line["billing_period_ended_at"]) == (
        "2026-10-01",
        "2026-10-31",
    )
    [invoice] = [i for i in enlivy_emulator.invoices() if i["id"] == summary["id"]]
    assert str(invoice["due_at"]).startswith("2026-11-11")


def test_mapped_over_customers_each_with_its_own_key(enlivy_emulator: Any) -> None:
    with make_dag(new_dag_id("mapped")) as dag:
        EnlivyCreateInvoiceOperator.partial(
            task_id="create",
            line_items=[{"product_id": PLATFORM, "quantity": "{{ 1 + 1 }}"}],
            invoice={"currency": "EUR"},
        ).expand(customer=CUSTOMERS[:3])
    states, dag_run = run(dag)
    assert states == {"create[0]": "success", "create[1]": "success", "create[2]": "success"}
    summaries = [result(dag_run, "create", i) for i in range(3)]
    assert [s["customer_id"] for s in summaries] == CUSTOMERS[:3]
    assert len({s["idempotency_key"] for s in summaries}) == 3
    assert {s["totals"]["total"] for s in summaries} == {"473.62"}
