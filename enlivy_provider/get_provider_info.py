"""What Airflow's ProvidersManager reads from the ``apache_airflow_provider`` entry point.

Connection form metadata (``conn-fields`` / ``ui-field-behaviour``) is declared here, as Airflow 3 reads it,
so the UI can draw the Enlivy connection form without importing the hook. Airflow 2 asks the hook instead
(``EnlivyHook.get_connection_form_widgets``/``get_ui_field_behaviour``), which builds its answer from the same
declarations.
"""

from __future__ import annotations

from typing import Any

from enlivy_provider import __version__

PACKAGE_NAME = "airflow-provider-enlivy"  # the distribution's name, as ProvidersManager matches it
DOCUMENTATION_URL = "https://enlivy.github.io/airflow-provider-enlivy/"
# The docs site's how-to pages (mkdocs.yml builds docs/<page>.md into <page>/).
HOW_TO_GUIDES = ("connection", "operators", "sensor", "recurring-billing", "etl-export", "event-triggered")


def _extra_field(
    label: str, json_type: str, description: str, *, required: bool = False, **schema: Any
) -> dict[str, Any]:
    # The form marks a field required when its schema does not admit null.
    kind: Any = json_type if required else [json_type, "null"]
    return {"label": label, "schema": {"type": kind, **schema}, "description": description}


ENLIVY_CONN_FIELDS: dict[str, Any] = {
    "organization_id": _extra_field(
        "Organization ID",
        "string",
        "The Enlivy organization the API token works on (org_...).",
        required=True,
        minLength=1,
    ),
    "auth": _extra_field(
        "Authentication",
        "string",
        "token: the password field holds an API token. login: login/password are an account's email and "
        "password, exchanged for a token through POST /authentication/login.",
        default="token",
        enum=["token", "login"],
    ),
    "timeout": _extra_field(
        "Read timeout (seconds)",
        "number",
        "Read timeout of every request (default 30); the connect timeout is min(10, this). A [connect, read] "
        "pair can be given in the connection's JSON or URI form instead.",
        exclusiveMinimum=0,
    ),
    "max_retries": _extra_field(
        "Max retries", "integer", "Retries of safe requests (GET, writes with an Idempotency-Key).", default=3
    ),
    "verify": _extra_field("Verify TLS", "boolean", "Verify the server's TLS certificate.", default=True),
    "allow_insecure_http": _extra_field(
        "Allow insecure http", "boolean", "Allow http:// to a host that is not loopback.", default=False
    ),
    "app_url": _extra_field(
        "Invoice web URL template",
        "string",
        "Template of an invoice's page in the Enlivy app, with {organization_id} and {invoice_id}; "
        "used by the operators' extra link.",
    ),
}

ENLIVY_UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "extra"],
    "relabeling": {"host": "API base URL", "password": "API token", "login": "Login email"},
    "placeholders": {
        "host": "https://api.enlivy.com",
        "password": "1|abc... (or the account password when auth is login)",
        "login": "only when auth is login",
    },
}


ENLIVY_ASSET_URIS: dict[str, Any] = {
    "schemes": ["enlivy"],
    "handler": "enlivy_provider.assets.sanitize_uri",
    "factory": "enlivy_provider.assets.create_asset",
    "to_openlineage_converter": "enlivy_provider.assets.convert_asset_to_openlineage",
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": PACKAGE_NAME,
        "name": "Enlivy",
        "description": "Enlivy invoicing: create and update invoices from templated line items, "
        "wait for invoice statuses, export invoices.",
        "versions": [__version__],
        "documentation-url": DOCUMENTATION_URL,
        "integrations": [
            {
                "integration-name": "Enlivy",
                "external-doc-url": "https://api.enlivy.com/swagger",
                "how-to-guide": [f"{DOCUMENTATION_URL}{page}/" for page in HOW_TO_GUIDES],
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Enlivy", "python-modules": ["enlivy_provider.hooks.enlivy"]}],
        "operators": [
            {
                "integration-name": "Enlivy",
                "python-modules": [
                    "enlivy_provider.operators.invoices",
                    "enlivy_provider.operators.export",
                    "enlivy_provider.operators.send",
                    "enlivy_provider.operators.charge",
                    "enlivy_provider.operators.reconcile",
                    "enlivy_provider.operators.refund",
                    "enlivy_provider.operators.generic",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "Enlivy", "python-modules": ["enlivy_provider.sensors.invoice_status"]}
        ],
        "triggers": [
            {
                "integration-name": "Enlivy",
                "python-modules": [
                    "enlivy_provider.triggers.invoice_status",
                    "enlivy_provider.triggers.invoice_events",
                ],
            }
        ],
        # The enlivy:// asset scheme (enlivy_provider.assets): Airflow 3 reads "asset-uris", Airflow 2
        # "dataset-uris"; each ignores the other's key.
        "asset-uris": [ENLIVY_ASSET_URIS],
        "dataset-uris": [ENLIVY_ASSET_URIS],
        "extra-links": ["enlivy_provider.links.EnlivyInvoiceLink"],
        "connection-types": [
            {
                "connection-type": "enlivy",
                "hook-class-name": "enlivy_provider.hooks.enlivy.EnlivyHook",
                "hook-name": "Enlivy",
                "conn-fields": ENLIVY_CONN_FIELDS,
                "ui-field-behaviour": ENLIVY_UI_FIELD_BEHAVIOUR,
            }
        ],
    }
