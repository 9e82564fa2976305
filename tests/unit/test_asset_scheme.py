"""The ``enlivy`` asset URI scheme: normaliser, factory, OpenLineage converter, and Airflow's registration."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest
from airflow.providers.common.compat.version_compat import AIRFLOW_V_3_0_PLUS

from enlivy_provider.assets import convert_asset_to_openlineage, create_asset, invoices_uri, sanitize_uri

BASE = "enlivy://api.enlivy.com/organizations/org_acme/invoices"


def _normalised(uri: str) -> str:
    return urlunsplit(sanitize_uri(urlsplit(uri)))


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        (BASE, BASE),
        ("enlivy://API.Enlivy.com/organizations/org_acme/invoices/", BASE),
        (
            "enlivy://localhost:8080/organizations/org-1/invoices",
            "enlivy://localhost:8080/organizations/org-1/invoices",
        ),
        (f"{BASE}?status=Paid,overdue,paid", f"{BASE}?status=overdue,paid"),
        (f"{BASE}?status=paid&billing_period=2026-01", f"{BASE}?billing_period=2026-01&status=paid"),
        (f"{BASE}?billing_key=plan:pro/eu", f"{BASE}?billing_key=plan:pro/eu"),
        (f"{BASE}#fragment", BASE),
    ],
)
def test_normaliser_returns_the_canonical_uri(given: str, canonical: str) -> None:
    assert _normalised(given) == canonical


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("enlivy:///organizations/org_acme/invoices", "the host must be"),
        ("enlivy://api.enlivy.com/invoices", "the path must be /organizations/<organization id>/invoices"),
        ("enlivy://api.enlivy.com/organizations/org_acme/customers", "the path must be"),
        ("enlivy://api.enlivy.com/organizations//invoices", "the organization id"),
        ("enlivy://api.enlivy.com/organizations/org$1/invoices", "the organization id"),
        ("enlivy://api.enlivy.com:99999/organizations/org_acme/invoices", "the port"),
        ("enlivy://api.enlivy.com:/organizations/org_acme/invoices", "the port"),
        (f"{BASE}?billing_period=2026-13", "billing_period must be YYYY-MM"),
        (f"{BASE}?billing_period=2026-01&billing_period=2026-02", "more than once"),
        (f"{BASE}?status=void", "unknown invoice statuses"),
        (f"{BASE}?customer=x", "unknown query key 'customer'"),
        (f"{BASE}?billing_key=", "billing_key must be"),
        ("s3://api.enlivy.com/organizations/org_acme/invoices", "the scheme must be 'enlivy'"),
    ],
)
def test_normaliser_refuses_malformed_uris_naming_the_part(uri: str, says: str) -> None:
    with pytest.raises(ValueError, match="Invalid enlivy asset URI") as info:
        sanitize_uri(urlsplit(uri))
    assert says in str(info.value)


@pytest.mark.parametrize(
    "uri",
    [
        "enlivy://1|secrettoken@api.enlivy.com/organizations/org_acme/invoices",
        "enlivy://user:secrettoken@api.enlivy.com/organizations/org_acme/invoices",
        f"{BASE}?token=secrettoken",
        f"{BASE}?API_TOKEN=secrettoken",
        f"{BASE}?password=secrettoken",
    ],
)
def test_normaliser_never_accepts_a_token_and_never_repeats_it(uri: str) -> None:
    with pytest.raises(ValueError) as info:
        sanitize_uri(urlsplit(uri))
    message = str(info.value)
    assert "connection" in message
    assert "secrettoken" not in message


def test_factory_builds_a_validated_canonical_asset() -> None:
    asset = create_asset(
        api_host="API.enlivy.com", organization_id="org_acme", billing_period="2026-01", status=["paid"]
    )
    assert asset.uri == f"{BASE}?billing_period=2026-01&status=paid"
    assert invoices_uri("localhost:8080", "org_1") == "enlivy://localhost:8080/organizations/org_1/invoices"
    with pytest.raises(ValueError, match="billing_period must be YYYY-MM"):
        create_asset(api_host="api.enlivy.com", organization_id="org_acme", billing_period="January")


def test_converter_names_the_dataset_as_the_operators_lineage_does() -> None:
    from types import SimpleNamespace

    from enlivy_provider.lineage import invoices_dataset

    asset = create_asset(api_host="localhost:8080", organization_id="org_1", billing_key="k1")
    dataset = convert_asset_to_openlineage(asset, None)
    hook = SimpleNamespace(api_host="localhost:8080", organization_id="org_1")
    expected = invoices_dataset(hook)  # type: ignore[arg-type]
    assert (dataset.namespace, dataset.name) == (expected.namespace, expected.name)
    assert (dataset.namespace, dataset.name) == ("enlivy://localhost:8080", "organizations/org_1/invoices")


def test_airflow_registers_the_scheme_from_the_provider_info() -> None:
    """Airflow 3 reads ``asset-uris`` (the Task SDK's runtime manager), Airflow 2 reads ``dataset-uris``."""
    from enlivy_provider import assets

    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        manager = ProvidersManagerTaskRuntime()
        registries = (
            manager.asset_uri_handlers,
            manager.asset_factories,
            manager.asset_to_openlineage_converters,
        )
    else:
        from airflow.providers_manager import ProvidersManager

        manager = ProvidersManager()
        registries = (
            manager.dataset_uri_handlers,
            manager.dataset_factories,
            manager.dataset_to_openlineage_converters,
        )
    handler, factory, converter = (registry["enlivy"] for registry in registries)
    assert (handler, factory, converter) == (
        assets.sanitize_uri,
        assets.create_asset,
        assets.convert_asset_to_openlineage,
    )


def test_airflow_applies_the_normaliser_to_declared_assets() -> None:
    from airflow.providers.common.compat.sdk import Asset

    asset = Asset(uri="enlivy://API.enlivy.com/organizations/org_acme/invoices/?status=paid")
    assert asset.uri == f"{BASE}?status=paid"
    if AIRFLOW_V_3_0_PLUS:  # Airflow 2 only warns about a URI its normaliser refuses (unless strict)
        with pytest.raises(ValueError, match="the path must be"):
            Asset(uri="enlivy://api.enlivy.com/organizations/org_acme")
    else:
        with pytest.warns(UserWarning, match="the path must be"):
            Asset(uri="enlivy://api.enlivy.com/organizations/org_acme")


def test_narrowing_of_reads_the_validated_parts_and_refuses_other_uris() -> None:
    from enlivy_provider.assets import narrowing_of

    uri = "enlivy://API.enlivy.com/organizations/org_1/invoices?status=Paid,overdue&billing_key=monthly-usage"
    assert narrowing_of(uri) == {"billing_key": "monthly-usage", "status": "overdue,paid"}
    assert narrowing_of("enlivy://api.enlivy.com/organizations/org_1/invoices") == {}
    for other in ("file:///tmp/invoices.csv", "enlivy://api.enlivy.com/organizations/org_1/invoices?token=x"):
        with pytest.raises(ValueError, match="Invalid enlivy asset URI"):
            narrowing_of(other)


def test_the_clients_invoice_statuses_are_the_emulators() -> None:
    # Two lists on purpose (the client does not import the emulator); both come from the SDK's status enum.
    from enlivy_provider.emulator.enums import INVOICE_STATUSES as EMULATED
    from enlivy_provider.invoice_status import INVOICE_STATUSES

    assert set(EMULATED) == INVOICE_STATUSES
