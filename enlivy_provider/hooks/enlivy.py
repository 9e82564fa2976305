"""EnlivyHook: an Airflow connection of type ``enlivy`` turned into Enlivy API clients.

The hook adds only what needs Airflow — reading the connection (also from async code, for triggers),
registering secrets with the masker, connection testing, the invoice URL — and hands every API operation to
``enlivy_provider.client``.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import urlsplit

from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
from airflow.providers.common.compat.sdk import BaseHook

from enlivy_provider.client import AsyncEnlivyClient, EnlivyClient, EnlivyError
from enlivy_provider.client.core import DEFAULT_BASE_URL, redact, secret_forms
from enlivy_provider.compat import amask_secret

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection

# Without an ``app_url`` extra, the extra link of a connection to the Enlivy API itself goes to the web app.
ENLIVY_API_HOST = "api.enlivy.com"
DEFAULT_APP_URL = "https://app.enlivy.com/organizations/{organization_id}/invoices/{invoice_id}"
P = ParamSpec("P")
R = TypeVar("R")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _mask(secret: str | None) -> None:
    """Register a credential with Airflow's secrets masker: whole, and a token's secret part after ``N|``
    on its own (a server may echo just that part)."""
    if secret:
        from airflow.providers.common.compat.sdk import mask_secret

        for form in secret_forms(secret):
            mask_secret(form)


async def _amask(secret: str | None) -> None:
    if not secret:
        return
    for form in secret_forms(secret):
        await amask_secret(form)


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"connection extra {name!r} must be true or false, got {value!r}")


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _verify(value: Any) -> bool | str:
    """``verify`` is a boolean, or a path to a CA bundle (as with requests)."""
    if isinstance(value, str) and value.strip().lower() not in _TRUE | _FALSE:
        return value
    return _as_bool(value, "verify")


def _timeout(value: Any) -> float | tuple[float, float] | None:
    if value in (None, ""):
        return None
    if isinstance(value, str) and value.strip().startswith("["):
        value = json.loads(value)
    if isinstance(value, (list, tuple)):
        connect, read = (float(v) for v in value)
        return (connect, read)
    return float(value)


def _base_url(conn: Connection) -> str | None:
    host = (conn.host or "").strip()
    if not host:
        return None
    if "://" in host or not conn.port:
        return host
    return f"{host}:{conn.port}"


def client_options(conn: Connection, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of ``EnlivyClient``/``AsyncEnlivyClient`` from a connection and its extras.

    ``auth: token`` (default): password = API token. ``auth: login``: login = email, password = the account
    password, exchanged once per client through ``POST /authentication/login``.
    """
    # The form's extra fields are nullable: a field left empty (null, "") means its default.
    extra = {name: value for name, value in extra.items() if not _is_empty(value)}
    auth = str(extra.get("auth") or "token").strip().lower()
    options: dict[str, Any] = {
        "base_url": _base_url(conn),
        "organization_id": extra.get("organization_id") or None,
        "timeout": _timeout(extra.get("timeout")),
        "max_retries": int(extra.get("max_retries", 3)),
        "verify": _verify(extra.get("verify", True)),
        "allow_insecure_http": _as_bool(extra.get("allow_insecure_http", False), "allow_insecure_http"),
    }
    if auth == "token":
        options["token"] = conn.password
    elif auth == "login":
        options["email"] = conn.login
        options["password"] = conn.password
    else:
        raise ValueError(f"connection extra 'auth' must be 'token' or 'login', got {auth!r}")
    if options["timeout"] is None:
        del options["timeout"]
    return options


def _delegate(method: Callable[Concatenate[EnlivyClient, P], R]) -> Callable[Concatenate[EnlivyHook, P], R]:
    """A hook method that forwards to the same-named method of the hook's (cached) client."""
    name = method.__name__

    @functools.wraps(method)
    def forward(self: EnlivyHook, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = getattr(self.get_client(), name)(*args, **kwargs)
        return result

    return forward


class EnlivyHook(BaseHook):
    """Talks to the Enlivy API through an ``enlivy`` connection.

    :param enlivy_conn_id: the connection (host = API base URL, password = API token, extra
        ``organization_id``; see docs/connection.md).
    :param client_options: overrides of client arguments (e.g. ``pool_maxsize``, ``backoff_base``).
    """

    conn_name_attr = "enlivy_conn_id"
    default_conn_name = "enlivy_default"
    conn_type = "enlivy"
    hook_name = "Enlivy"

    def __init__(
        self,
        enlivy_conn_id: str = default_conn_name,
        *,
        client_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.enlivy_conn_id = enlivy_conn_id
        self._client_overrides = dict(client_options or {})
        self._conn: Connection | None = None
        self._extra: dict[str, Any] = {}
        self._client: EnlivyClient | None = None
        self._async_client: AsyncEnlivyClient | None = None
        self._client_lock = threading.Lock()  # threads of one task share one client (and its pool)

    def __repr__(self) -> str:
        return f"EnlivyHook(enlivy_conn_id={self.enlivy_conn_id!r})"

    # -- connection -----------------------------------------------------------------------------------

    def _connection(self) -> tuple[Connection, dict[str, Any]]:
        if self._conn is None:
            conn = self.get_connection(self.enlivy_conn_id)
            _mask(conn.password)  # the token (or account password) joins the masker the moment it is read
            self._extra = dict(conn.extra_dejson)
            self._conn = conn
        return self._conn, self._extra

    async def _aconnection(self) -> tuple[Connection, dict[str, Any]]:
        """The connection, read without blocking the event loop (triggers run in the triggerer's loop)."""
        if self._conn is None:
            # common-compat picks the read that does not block the loop on this Airflow (2.11 has no
            # aget_connection; before 3.3.2 the async read masks with a blocking call).
            conn = await get_async_connection(self.enlivy_conn_id, hook=self)
            await _amask(conn.password)
            self._extra = dict(await get_async_extra_dejson(conn))
            self._conn = conn
        return self._conn, self._extra

    def _options(self, conn: Connection, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {**client_options(conn, extra), **self._client_overrides}

    @property
    def organization_id(self) -> str | None:
        return self._connection()[1].get("organization_id") or None

    @property
    def api_host(self) -> str:
        """The API's ``host[:port]`` (no scheme, path or credentials): what names this API in lineage."""
        base_url = _base_url(self._connection()[0]) or DEFAULT_BASE_URL
        parsed = urlsplit(base_url if "://" in base_url else f"https://{base_url}")
        return f"{parsed.hostname}:{parsed.port}" if parsed.port else str(parsed.hostname)

    # -- clients --------------------------------------------------------------------------------------

    def get_client(self) -> EnlivyClient:
        """The hook's blocking client (built once per hook instance; thread-safe)."""
        with self._client_lock:
            if self._client is None:
                conn, extra = self._connection()
                self._client = EnlivyClient(**self._options(conn, extra), on_token=_mask)
            return self._client

    def get_conn(self) -> EnlivyClient:
        return self.get_client()

    async def aget_async_client(self) -> AsyncEnlivyClient:
        """The hook's asyncio client (built once per hook instance), connection fetched async-safely."""
        if self._async_client is None:
            conn, extra = await self._aconnection()
            self._async_client = AsyncEnlivyClient(**self._options(conn, extra), on_token=_amask)
        return self._async_client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None

    # -- Airflow integration --------------------------------------------------------------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection form's extra fields for Airflow 2 (Airflow 3 reads ``conn-fields`` from the provider
        info and never calls this)."""
        from enlivy_provider.compat import connection_form_widgets
        from enlivy_provider.get_provider_info import ENLIVY_CONN_FIELDS

        return connection_form_widgets(ENLIVY_CONN_FIELDS)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hidden fields, labels and placeholders of the connection form, for Airflow 2 (as above)."""
        from enlivy_provider.compat import ui_field_behaviour
        from enlivy_provider.get_provider_info import ENLIVY_UI_FIELD_BEHAVIOUR

        return ui_field_behaviour(ENLIVY_UI_FIELD_BEHAVIOUR)

    def test_connection(self) -> tuple[bool, str]:
        """(True, "Connected to organization <name>") or (False, reason) — the reason never holds secrets."""
        try:
            organization = self.get_client().get_organization()
        except EnlivyError as exc:  # already free of credentials
            return False, str(exc)
        except Exception as exc:
            secrets = secret_forms(self._conn.password) if self._conn is not None else ()
            return False, redact(f"{type(exc).__name__}: {exc}", secrets)
        name = organization.get("name") or organization.get("id") or self.organization_id
        return True, f"Connected to organization {name}"

    def invoice_url(self, invoice_id: str) -> str | None:
        """The invoice's page in the Enlivy app: the connection extra ``app_url``, a template with
        ``{organization_id}`` and ``{invoice_id}``; without it, :data:`DEFAULT_APP_URL` for the Enlivy API host
        (``api.enlivy.com``), and None for any other host (a proxy or the emulator: set ``app_url``).
        """
        conn, extra = self._connection()
        template = extra.get("app_url")
        if not template:
            base_url = _base_url(conn) or DEFAULT_BASE_URL
            if urlsplit(base_url if "://" in base_url else f"https://{base_url}").hostname == ENLIVY_API_HOST:
                template = DEFAULT_APP_URL
        if not template:
            return None
        try:
            return str(template).format(organization_id=self.organization_id or "", invoice_id=invoice_id)
        except (KeyError, IndexError, ValueError):
            self.log.warning("Connection extra app_url is not a valid template: %s", template)
            return None

    # -- API operations (same names and arguments as EnlivyClient) ------------------------------------

    request = _delegate(EnlivyClient.request)
    list_invoices = _delegate(EnlivyClient.list_invoices)
    list_invoices_page = _delegate(EnlivyClient.list_invoices_page)
    get_invoice = _delegate(EnlivyClient.get_invoice)
    create_invoice = _delegate(EnlivyClient.create_invoice)
    create_invoice_answer = _delegate(EnlivyClient.create_invoice_answer)
    update_invoice = _delegate(EnlivyClient.update_invoice)
    update_invoice_answer = _delegate(EnlivyClient.update_invoice_answer)
    delete_invoice = _delegate(EnlivyClient.delete_invoice)
    restore_invoice = _delegate(EnlivyClient.restore_invoice)
    send_invoice_email = _delegate(EnlivyClient.send_invoice_email)
    send_invoice_email_answer = _delegate(EnlivyClient.send_invoice_email_answer)
    download_invoice = _delegate(EnlivyClient.download_invoice)
    charge_invoice = _delegate(EnlivyClient.charge_invoice)
    refund_invoice = _delegate(EnlivyClient.refund_invoice)
    refund_invoice_answer = _delegate(EnlivyClient.refund_invoice_answer)
    issue_invoice = _delegate(EnlivyClient.issue_invoice)
    issue_receipt = _delegate(EnlivyClient.issue_receipt)
    tag_invoice = _delegate(EnlivyClient.tag_invoice)
    untag_invoice = _delegate(EnlivyClient.untag_invoice)
    list_tags = _delegate(EnlivyClient.list_tags)
    create_tag = _delegate(EnlivyClient.create_tag)
    list_receipts = _delegate(EnlivyClient.list_receipts)
    get_receipt = _delegate(EnlivyClient.get_receipt)
    list_notification_logs = _delegate(EnlivyClient.list_notification_logs)
    list_charge_logs = _delegate(EnlivyClient.list_charge_logs)
    scheduled_reminders = _delegate(EnlivyClient.scheduled_reminders)
    list_event_trails = _delegate(EnlivyClient.list_event_trails)
    list_event_trails_page = _delegate(EnlivyClient.list_event_trails_page)
    get_event_trail = _delegate(EnlivyClient.get_event_trail)
    list_network_exchanges = _delegate(EnlivyClient.list_network_exchanges)
    list_customers = _delegate(EnlivyClient.list_customers)
    get_customer = _delegate(EnlivyClient.get_customer)
    find_customer_by_email = _delegate(EnlivyClient.find_customer_by_email)
    list_products = _delegate(EnlivyClient.list_products)
    list_tax_classes = _delegate(EnlivyClient.list_tax_classes)
    list_tax_rates = _delegate(EnlivyClient.list_tax_rates)
    list_invoice_prefixes = _delegate(EnlivyClient.list_invoice_prefixes)
    get_organization = _delegate(EnlivyClient.get_organization)
