"""What the blocking and the asyncio client share besides the rules in ``core``: constructor arguments,
credentials, ``repr``. Each subclass only opens its HTTP transport."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from enlivy_provider.client import core
from enlivy_provider.client.endpoints import Endpoints


class BaseEnlivyClient:
    """Common constructor of ``EnlivyClient`` and ``AsyncEnlivyClient``.

    :param base_url: API base URL (default ``https://api.enlivy.com``); ``http://`` only to loopback unless
        ``allow_insecure_http``.
    :param token: API token. Alternatively ``email`` + ``password``: logged in once, on first use.
    :param organization_id: the organization every ``/organizations/{org}/...`` call works on.
    :param timeout: ``(connect, read)`` seconds, or one number (read; connect capped at 10 s).
    :param max_retries: retries of safe requests (GET; writes, which always carry an Idempotency-Key).
    :param verify: TLS verification (bool or CA bundle path).
    :param pool_maxsize: connections kept open — size it to the number of threads/tasks sharing the client.
    :param backoff_base: first retry delay in seconds (doubles each retry, jittered, up to ``backoff_cap``).
    :param max_retry_after: cap on a server's ``Retry-After``.
    :param on_token: called with a token obtained by login (may return an awaitable on the async client);
        the hook uses it to register the token with Airflow's secrets masker.
    """

    def __init__(
        self,
        base_url: str | None = core.DEFAULT_BASE_URL,
        token: str | None = None,
        *,
        organization_id: str | None = None,
        email: str | None = None,
        password: str | None = None,
        timeout: float | Sequence[float] | None = core.DEFAULT_TIMEOUT,
        max_retries: int = 3,
        verify: bool | str = True,
        allow_insecure_http: bool = False,
        pool_maxsize: int = 32,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        max_retry_after: float = 60.0,
        on_token: Callable[[str], Any] | None = None,
    ) -> None:
        self._settings = core.ClientSettings.create(
            base_url,
            token,
            organization_id=organization_id,
            email=email,
            password=password,
            timeout=timeout,
            max_retries=max_retries,
            verify=verify,
            allow_insecure_http=allow_insecure_http,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            max_retry_after=max_retry_after,
        )
        self._endpoints = Endpoints(self._settings.organization_id)
        self._on_token = on_token
        self._token: str | None = self._settings.token
        self._open_transport(pool_maxsize)
        if self._token:
            self._use_token(self._token)

    def _open_transport(self, pool_maxsize: int) -> None:
        raise NotImplementedError

    def _use_token(self, token: str) -> None:
        """Send ``token`` as the bearer on every following request."""
        raise NotImplementedError

    def __repr__(self) -> str:
        # Credentials stay out on purpose: reprs end up in logs and tracebacks.
        return f"{type(self).__name__}(base_url={self.base_url!r}, organization_id={self.organization_id!r})"

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    @property
    def organization_id(self) -> str | None:
        return self._settings.organization_id

    def _secrets(self) -> tuple[str, ...]:
        """Strings to mask in anything the client puts into an exception (credentials and token secrets)."""
        return (*self._settings.secrets, *core.secret_forms(self._token))

    def _login_request(self) -> core.PreparedRequest:
        assert self._settings.email and self._settings.password
        return core.login_request(self._settings.email, self._settings.password)
