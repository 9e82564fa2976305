"""Call any Enlivy endpoint of the connection's organization — for what the typed operators do not cover.

Like ``HttpOperator`` for HTTP, with Enlivy's ways: the connection's token and organization, answers
unwrapped from ``{"data": ...}``, typed errors (a 4xx fails the task without retries), the client's retries
of GETs and keyed writes, and an Idempotency-Key on every write — the caller's, or one derived from the DAG,
task, run and map index, so a retried or cleared task repeats the write instead of doing it twice.
The path is relative to ``/organizations/{organization_id}``; absolute URLs and paths that would leave the
organization are refused before anything is sent (docs/operators.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote

from enlivy_provider.invoices.errors import ValidationIssue, raise_if_issues
from enlivy_provider.invoices.idempotency import key_from_context
from enlivy_provider.operators.invoices import _EnlivyInvoiceOperator, enlivy_errors

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from enlivy_provider.client import EnlivyClient

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
WRITE_METHODS = frozenset(METHODS) - {"GET"}
# A scheme ("https:"), a network path ("//host") or a backslash (read as "/" by some servers) could point the
# request, and the token with it, somewhere other than the organization's API.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def organization_relative_path(
    value: object, name: str = "endpoint"
) -> tuple[str | None, list[ValidationIssue]]:
    """``"invoices/org_inv_1"`` → ``"/invoices/org_inv_1"`` (``""`` is the organization itself), or why not."""
    if not isinstance(value, str):
        return None, [ValidationIssue(name, f"must be a path string (got {value!r})")]
    text = value.strip()
    if _SCHEME.match(text) or text.startswith("//") or "\\" in text:
        return None, [
            ValidationIssue(name, f"must be a path relative to the organization, not a URL (got {text!r})")
        ]
    if "?" in text or "#" in text:
        return None, [
            ValidationIssue(name, f"must not carry a query or fragment; pass query instead (got {text!r})")
        ]
    segments = [unquote(part) for part in text.strip("/").split("/")] if text.strip("/") else []
    if any(part in ("", ".", "..") or "/" in part or "\\" in part for part in segments):
        return None, [
            ValidationIssue(
                name, f"must stay inside the organization: no empty, '.' or '..' segments (got {text!r})"
            )
        ]
    return "/" + "/".join(text.strip("/").split("/")) if segments else "", []


class EnlivyOperator(_EnlivyInvoiceOperator):
    """One templated call of any Enlivy endpoint of the organization.

    :param endpoint: path relative to ``/organizations/{organization_id}`` (``"invoices"``,
        ``"invoices/org_inv_.../issue-receipt"``); ``""`` for the organization itself.
    :param method: ``GET`` (default), ``POST``, ``PUT``, ``PATCH`` or ``DELETE``.
    :param query: query parameters, encoded as the SDK does (lists, booleans, dates); not ``params``,
        which is Airflow's name for the DAG's run parameters.
    :param body: the JSON body of a write (Decimal amounts are sent exactly).
    :param paginate: GET every page (``page`` from 1, ``per_page`` from ``query`` or 50) and return the
        records as one list; the pages are fetched one after another as the list (or file) is filled.
    :param output_path: with ``paginate``, write the records as JSON Lines to this ``ObjectStoragePath`` URL
        (``file://``, ``s3://`` ...) instead of returning them; the task returns ``{"path", "count"}``.
    :param idempotency_key: the write's key; default: derived from dag, task, run, map index, method and path.
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "method",
        "query",
        "body",
        "output_path",
        "idempotency_key",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"query": "json", "body": "json"}

    def __init__(
        self,
        *,
        endpoint: str,
        method: str = "GET",
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        paginate: bool = False,
        output_path: str | None = None,
        idempotency_key: str | None = None,
        enlivy_conn_id: str = "enlivy_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.method = method
        self.query = query
        self.body = body
        self.paginate = paginate
        self.output_path = output_path
        self.idempotency_key = idempotency_key
        self.enlivy_conn_id = enlivy_conn_id

    def _run(self, context: Context) -> Any:
        path, issues = organization_relative_path(self.endpoint)
        method = str(self.method).strip().upper()
        if method not in METHODS:
            issues.append(
                ValidationIssue("method", f"must be one of {', '.join(METHODS)} (got {self.method!r})")
            )
        if self.query is not None and not isinstance(self.query, Mapping):
            issues.append(ValidationIssue("query", f"must be a mapping (got {self.query!r})"))
        if self.paginate and method != "GET":
            issues.append(ValidationIssue("paginate", f"only a GET can be paginated (method is {method})"))
        if self.output_path is not None and not self.paginate:
            issues.append(ValidationIssue("output_path", "is only used with paginate=True"))
        if self.body is not None and method == "GET":
            issues.append(ValidationIssue("body", "a GET sends no body; pass query instead"))
        with enlivy_errors(f"task {self.task_id}"):
            raise_if_issues(issues, subject="request")
            assert path is not None
            client = self._hook().get_client()
            full_path = f"/organizations/{_organization_segment(client)}{path}"
            params = dict(self.query or {})
            if self.paginate:
                records = _records(client, full_path, params)
                if self.output_path is None:
                    found = list(records)
                    self.log.info("GET %s: %d records", full_path, len(found))
                    return found
                return self._write_lines(records)
            key = None
            if method in WRITE_METHODS:
                key = self.idempotency_key or key_from_context(
                    context, item=f"{method} {path}", action="enlivy.request"
                )
            response = client.request(
                method, full_path, params=params or None, json=self.body, idempotency_key=key
            )
        self.log.info("%s %s → %s", method, full_path, response.status_code)
        return response.data

    def _write_lines(self, records: Iterator[dict[str, Any]]) -> dict[str, Any]:
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        from enlivy_provider.client import dumps_json

        target = ObjectStoragePath(str(self.output_path))
        target.parent.mkdir(parents=True, exist_ok=True)
        count = 0
        with target.open("wb") as handle:
            for record in records:
                handle.write(dumps_json(record) + b"\n")
                count += 1
        self.log.info("%d records written to %s", count, target)
        return {"path": str(target), "count": count}


def _organization_segment(client: EnlivyClient) -> str:
    from enlivy_provider.client import EnlivyInvalidRequestError, core

    if not client.organization_id:  # a configuration problem: failed without retries by enlivy_errors
        raise EnlivyInvalidRequestError("the connection has no organization_id (connection extra)")
    return core.path_segment(client.organization_id)


def _records(client: EnlivyClient, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every record of every page, fetched lazily, following the answer's pagination meta."""
    from enlivy_provider.client import core

    page = int(params.pop("page", 1))
    params.setdefault("per_page", core.MAX_PER_PAGE)
    next_page: int | None = page
    while next_page is not None:
        answer = core.Page.from_response(client.request("GET", path, params={**params, "page": next_page}))
        yield from answer.items
        next_page = core.next_page(answer.meta, next_page)
