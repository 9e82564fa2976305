"""Customers, plans and usage of the example billing DAGs, priced: plain functions (no HTTP; Airflow only
for the params both DAGs take).

Shared by ``enlivy_recurring_billing.py`` (which invoices them) and ``enlivy_month_end.py`` (which reconciles
Enlivy against them): both price a month with :func:`priced_accounts` and render the result through the one
template :data:`INVOICES_TEMPLATE` under the one billing key :data:`BILLING_KEY`, so what the month-end DAG
expects is what the billing DAG invoices, by construction. Light at import: heavy modules load inside the
functions. Not a DAG file (``.airflowignore``); Airflow puts the dags folder on ``sys.path``, which is how
the DAG files import it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pendulum

TIMEZONE = "Europe/Berlin"
HERE = Path(__file__).resolve().parent
CUSTOMERS_FILE = "data/billing_customers.yaml"
USAGE_FILE = "data/usage.csv"
INVOICES_TEMPLATE = "templates/monthly_invoices.json.j2"
# What the billing DAG bills, carried on each invoice: another DAG billing the same customers for the same
# month (consulting hours, say) uses another key, so neither mistakes the other's invoice for its own.
BILLING_KEY = "monthly-usage"
# The asset alias the billing DAG records each billed month on (the asset's URI needs the connection's host,
# known only when the task runs) and the month-end DAG is scheduled on.
BILLED_INVOICES_ALIAS = "enlivy_billed_invoices"


def load_config(path: str | None) -> dict[str, Any]:
    """The customers/plans YAML (a path relative to the dags folder, or absolute)."""
    import yaml

    with resolve_path(path, CUSTOMERS_FILE).open(encoding="utf-8") as handle:
        config: dict[str, Any] = yaml.safe_load(handle)
    return config


def priced_accounts(params: dict[str, Any], period: dict[str, str]) -> list:
    """The accounts a period bills, from the ``customers_file`` and ``usage_file`` params."""
    config = load_config(params.get("customers_file"))
    usage = read_usage(resolve_path(params.get("usage_file"), USAGE_FILE), period["start"], period["end"])
    return price_accounts(config, usage, period)


def billing_period(start: Any, end: Any, tz: str = TIMEZONE) -> dict[str, str]:
    """The calendar days a data interval covers in ``tz``: ``{"start", "end" (inclusive), "label"}``.

    The days come from the provider's own rule (the one ``billing_period="data_interval"`` uses), so the
    usage summed here and the period the invoices carry can never disagree.
    """
    from enlivy_provider.invoices.billing_period import DATA_INTERVAL, parse_billing_period

    local = (pendulum.instance(start).in_timezone(tz), pendulum.instance(end).in_timezone(tz))
    period, issues = parse_billing_period(DATA_INTERVAL, data_interval=local)
    if period is None:
        raise ValueError("; ".join(str(issue) for issue in issues))
    if (period.start.year, period.start.month) == (period.end.year, period.end.month):
        label = local[0].format("MMMM YYYY")
    else:
        label = f"{period.start.isoformat()} to {period.end.isoformat()}"
    return {**period.as_dict(), "label": label}


def resolve_path(value: str | None, default: str) -> Path:
    """A data file path from a param: absolute, or relative to this DAG's folder."""
    path = Path(value or default)
    return path if path.is_absolute() else HERE / path


def read_usage(usage_file: Path, start: str, end: str) -> dict[str, dict[str, Any]]:
    """Sum the usage rows dated ``start``..``end`` (inclusive): ``{account: {metric: Decimal}}``.

    Streams the CSV (columns ``date, account, metric, quantity``), so memory does not grow with its length.
    """
    import csv
    from decimal import Decimal

    totals: dict[str, dict[str, Any]] = {}
    with usage_file.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if start <= row["date"] <= end:  # ISO dates compare as strings
                metrics = totals.setdefault(row["account"], {})
                metrics[row["metric"]] = metrics.get(row["metric"], Decimal(0)) + Decimal(row["quantity"])
    return totals


def price_accounts(config: dict[str, Any], usage: dict[str, dict[str, Any]], period: dict[str, str]) -> list:
    """Turn customers, plans and usage into what the invoice template needs (amounts as strings)."""
    from decimal import Decimal

    tax_classes = config["tax_classes"]
    defaults = dict(config.get("invoice_defaults") or {})
    accounts = []
    for customer in config["customers"]:
        plan = config["plans"][customer["plan"]]
        currency = customer.get("currency", "EUR")
        customer_tax = customer.get("tax")
        meters = []
        for code, rule in (plan.get("meters") or {}).items():
            meter = config["meters"][code]
            used = usage.get(customer["account"], {}).get(code, Decimal(0))
            included = Decimal(str(rule.get("included", 0)))
            billable = max(used - included, Decimal(0)) / Decimal(str(meter.get("unit_size", 1)))
            meters.append(
                {
                    "code": code,
                    "name": meter["name"],
                    "unit": meter["unit"],
                    "used": f"{used:,f}",
                    "included": f"{included:,f}",
                    "billable_quantity": _plain(billable),
                    "price": rule["price"][currency],
                    "product_id": meter.get("product_id"),
                    "tax_class_id": tax_classes[customer_tax or meter.get("tax", "standard")],
                }
            )
        invoice = {**defaults, "currency": currency}
        for field in ("due_in_days", "payment_method", "delivery_method"):
            if field in customer:
                invoice[field] = customer[field]
        invoice["note"] = f"{plan['name']}, usage from {period['start']} to {period['end']}."
        accounts.append(
            {
                "key": customer["account"],
                "name": customer.get("name", customer["account"]),
                "customer": customer["customer"],
                "invoice": invoice,
                "plan": {
                    "name": plan["name"],
                    "fee": plan["monthly_fee"][currency],
                    "product_id": plan.get("product_id"),
                    "tax_class_id": tax_classes[customer_tax or "standard"],
                },
                "meters": meters,
            }
        )
    return accounts


def _plain(value: Any) -> str:
    """A Decimal as a plain string without exponent or trailing zeros ("0", "12.5", "1234.567")."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def expected_billings(previews: list[dict[str, Any]], period: dict[str, str]) -> list[dict[str, Any]]:
    """What the billing of ``period`` should have invoiced, one reconciliation row per customer.

    ``previews`` are the bulk operator's dry-run previews of :data:`INVOICES_TEMPLATE` (the invoices the
    billing DAG creates from the same accounts, priced by the same code), so the totals are exactly the ones
    the billing DAG invoices.
    """
    return [
        {
            "customer_id": item["customer_id"],
            "billing_key": BILLING_KEY,
            "billing_period": {"start": period["start"], "end": period["end"]},
            "total": str(item["totals"]["total"]),
            "currency": item["currency"],
        }
        for item in previews
    ]


def data_params() -> dict[str, Any]:
    """The params both DAGs take to find their data and reports: what the month-end DAG expects must come
    from the files the billing DAG billed from."""
    from airflow.providers.common.compat.sdk import Param

    return {
        "customers_file": Param(
            CUSTOMERS_FILE,
            type="string",
            description="Customers, plans and prices (YAML); relative to the dags folder",
        ),
        "usage_file": Param(
            USAGE_FILE, type="string", description="Daily usage: date,account,metric,quantity (CSV)"
        ),
        "report_dir": Param(
            None,
            type=["null", "string"],
            description="Where reports are written (a directory; the month-end DAG also takes a storage URL)",
        ),
    }


def report_dir(param_value: str | None) -> Path:
    """Where reports go on this machine: the ``report_dir`` param, else ``$ENLIVY_REPORT_DIR``, else
    ``$AIRFLOW_HOME/enlivy-reports``."""
    if param_value:
        return Path(param_value)
    if os.environ.get("ENLIVY_REPORT_DIR"):
        return Path(os.environ["ENLIVY_REPORT_DIR"])
    return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "enlivy-reports"


def report_url(param_value: str | None) -> str:
    """Like :func:`report_dir`, as a URL for ``ObjectStoragePath``: a value with a scheme (``s3://bucket/x``,
    ``file:///srv/reports``) is kept, a local path becomes ``file://`` + its absolute path."""
    raw = param_value or os.environ.get("ENLIVY_REPORT_DIR") or ""
    if "://" in raw:
        return raw.rstrip("/")
    return report_dir(param_value).absolute().as_uri()


def money(currency: str | None, amount: Any) -> str:
    from decimal import Decimal

    return f"{currency or ''} {Decimal(str(amount)):,.2f}".strip()
