"""The ``enlivy`` asset URI scheme: an organization's invoices, as an Airflow asset (a dataset on Airflow 2).

Form (docs/assets-lineage.md, "The enlivy asset scheme")::

    enlivy://<API host[:port]>/organizations/<organization id>/invoices[?<narrowing>]

The narrowing query names a slice of those invoices, each key at most once:

* ``billing_period=YYYY-MM``: the invoices of one billing month (what a billing run writes);
* ``billing_key=<key>``: the invoices of one billing key (one customer's or one plan's run);
* ``status=<status>[,<status>...]``: invoices that reached these statuses (what the event trigger watches).

Airflow calls :func:`sanitize_uri` (registered under ``asset-uris`` / ``dataset-uris`` in the provider info)
on every ``enlivy://`` URI a DAG declares: it refuses a malformed one with a ``ValueError`` naming the part
that is wrong, and refuses any credential (user info, a ``token``-like query key) - the API token belongs in
the Airflow connection, never in an asset URI, which Airflow stores and shows in the UI. :func:`create_asset`
builds a URI from parts; :func:`convert_asset_to_openlineage` names the asset as the operators' OpenLineage
datasets do (:mod:`enlivy_provider.lineage`), so lineage joins assets and task datasets.

Nothing here imports Airflow at module level besides the asset class (the factory's return type).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from enlivy_provider.invoice_status import INVOICE_STATUSES
from enlivy_provider.lineage import ENLIVY_SCHEME

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Asset

__all__ = ["ENLIVY_SCHEME", "convert_asset_to_openlineage", "create_asset", "invoices_uri", "sanitize_uri"]

_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
_ORGANIZATION = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
_BILLING_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")
# Query keys that would carry a credential: refused with their own message (never echoing the value).
_SECRET_KEYS = frozenset({"token", "api_token", "access_token", "password", "secret", "key", "auth"})
NARROWING_KEYS = ("billing_key", "billing_period", "status")


def _fail(uri: SplitResult | str, reason: str) -> ValueError:
    # The URI is shown without its query or user info: those are the parts that could hold a secret.
    parts = urlsplit(uri) if isinstance(uri, str) else uri
    shown = (
        f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if _port(parts) else ''}{parts.path}"
    )
    return ValueError(f"Invalid enlivy asset URI {shown!r}: {reason}")


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's URI normaliser for ``enlivy``: validate, then return the canonical form.

    Canonical: lowercase host, no default port removal (the port names the API, as in lineage), path
    ``/organizations/<org>/invoices``, query keys sorted, ``status`` values lowercased, sorted, unique.
    """
    if uri.scheme != ENLIVY_SCHEME:
        raise _fail(uri, f"the scheme must be {ENLIVY_SCHEME!r}")
    if "@" in uri.netloc:
        raise _fail(uri, "user info is not allowed: put the API token in the Airflow connection, not the URI")
    host = (uri.hostname or "").lower()
    if not _HOST.match(host):
        raise _fail(uri, "the host must be the API's host name (e.g. api.enlivy.com)")
    try:
        port = uri.port
    except ValueError:
        raise _fail(uri, "the port must be a number from 1 to 65535") from None
    if uri.netloc.endswith(":") or port == 0:
        raise _fail(uri, "the port must be a number from 1 to 65535")
    segments = uri.path.strip("/").split("/")
    if len(segments) != 3 or segments[0] != "organizations" or segments[2] != "invoices":
        raise _fail(uri, "the path must be /organizations/<organization id>/invoices")
    if not _ORGANIZATION.match(segments[1]):
        raise _fail(uri, "the organization id may hold only letters, digits, '_' and '-' (1-100 characters)")
    query = _sanitize_query(uri)
    netloc = f"{host}:{port}" if port is not None else host
    return uri._replace(
        netloc=netloc, path=f"/organizations/{segments[1]}/invoices", query=query, fragment=""
    )


def _sanitize_query(uri: SplitResult) -> str:
    try:
        pairs = parse_qsl(uri.query, keep_blank_values=True, strict_parsing=bool(uri.query))
    except ValueError:
        raise _fail(uri, "the query must be key=value pairs joined by '&'") from None
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key.lower() in _SECRET_KEYS:
            raise _fail(
                uri, f"query key {key!r} looks like a credential: the API token belongs in the connection"
            )
        if key not in NARROWING_KEYS:
            raise _fail(uri, f"unknown query key {key!r} (allowed: {', '.join(NARROWING_KEYS)})")
        if key in seen:
            raise _fail(uri, f"query key {key!r} is given more than once")
        seen[key] = _narrowing_value(uri, key, value)
    return urlencode(sorted(seen.items()), safe=",:/")


def _narrowing_value(uri: SplitResult, key: str, value: str) -> str:
    if key == "billing_period":
        if not _PERIOD.match(value):
            raise _fail(uri, f"billing_period must be YYYY-MM, got {value!r}")
        return value
    if key == "billing_key":
        if not _BILLING_KEY.match(value):
            raise _fail(uri, "billing_key must be 1-200 characters: letters, digits and . _ : / -")
        return value
    statuses = sorted({part.strip().lower() for part in value.split(",")})
    unknown = [status for status in statuses if status not in INVOICE_STATUSES]
    if not statuses or unknown:
        raise _fail(uri, f"status holds unknown invoice statuses {unknown or [value]!r}")
    return ",".join(statuses)


def narrowing_of(uri: str) -> dict[str, str]:
    """The narrowing parts (``billing_key``, ``billing_period``, ``status``) of an ``enlivy://`` invoices URI,
    validated as the normaliser does; ValueError for any other URI."""
    return dict(parse_qsl(sanitize_uri(urlsplit(uri)).query))


def invoices_uri(
    api_host: str,
    organization_id: str,
    *,
    billing_period: str | None = None,
    billing_key: str | None = None,
    status: str | list[str] | tuple[str, ...] | None = None,
) -> str:
    """The canonical ``enlivy://`` URI of an organization's invoices (narrowed by the given parts)."""
    query: dict[str, str] = {}
    if billing_period is not None:
        query["billing_period"] = billing_period
    if billing_key is not None:
        query["billing_key"] = billing_key
    if status is not None:
        query["status"] = status if isinstance(status, str) else ",".join(status)
    raw = urlunsplit(
        (ENLIVY_SCHEME, api_host, f"/organizations/{organization_id}/invoices", urlencode(query), "")
    )
    return urlunsplit(sanitize_uri(urlsplit(raw)))


def create_asset(
    *, api_host: str, organization_id: str, extra: dict[str, Any] | None = None, **narrowing: Any
) -> Asset:
    """Airflow's asset factory for ``enlivy``: the asset of an organization's invoices (a ``Dataset`` on
    Airflow 2), its URI validated and canonical. ``narrowing``: the keyword arguments of
    :func:`invoices_uri` (``billing_period``, ``billing_key``, ``status``)."""
    from airflow.providers.common.compat.sdk import Asset

    return Asset(uri=invoices_uri(api_host, organization_id, **narrowing), extra=extra)


def convert_asset_to_openlineage(asset: Any, lineage_context: Any = None) -> Any:
    """The OpenLineage dataset of an ``enlivy`` asset: namespace ``enlivy://<host[:port]>``, name
    ``organizations/<org>/invoices`` - the names the operators report, whatever narrowing the URI has (a
    billing period is a slice of the same dataset, not another dataset)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset as OpenLineageDataset

    parsed = sanitize_uri(urlsplit(asset.uri))
    return OpenLineageDataset(namespace=f"{ENLIVY_SCHEME}://{parsed.netloc}", name=parsed.path.lstrip("/"))
