"""``Idempotency-Key`` on POST/PUT/PATCH/DELETE: (token, method, path, key) → the first answer, replayed.

* Same key, same request (query string + JSON body, compared semantically) → the stored status and body
  again, with ``Idempotent-Replayed: true``; nothing is written twice. A first answer carries
  ``Idempotent-Replayed: false``. (The Stripe convention; Enlivy documents no such header, so the config
  ``replay_header: false`` leaves it out, to test clients against a server that does not say.)
* Same key, different request → 409 ``{"message": ...}``.
* Concurrent requests with one key are serialised on a per-key lock: the first runs, the rest replay.
* Answers with status >= 500, 401, 403 and 429 are not stored (a retry may still succeed).
* Only a request whose body arrived whole is run and stored: a client that disconnects before sending all
  of its body has nobody to answer, and the handler must not run on the fragment (an empty body would
  store a 422 under the key and turn the real retry into a 409).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

from enlivy_provider.emulator.common import now_iso
from enlivy_provider.emulator.faults import ADMIN_PREFIX, ASGIApp, Message, Receive, Scope, Send, send_json
from enlivy_provider.emulator.jsonio import BodyError, dumps, parse_body
from enlivy_provider.emulator.state import WRITE_METHODS
from enlivy_provider.emulator.store import Store, StoredResponse

NOT_STORED = frozenset({401, 403, 429})


def fingerprint(query_string: bytes, body: bytes) -> str:
    """The request's identity: the query string plus the JSON body compared semantically (key order and
    whitespace aside; ``[]`` is the same empty input as no body); a body that is not JSON, raw."""
    try:
        canonical = parse_body(body) if body.strip() else {}
        text = dumps(canonical, sort_keys=True).encode() if canonical else b""
    except BodyError:
        text = body
    return hashlib.sha256(query_string + b"\n" + text).hexdigest()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or ``None`` when the client went away before its last byte arrived."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


class IdempotencyMiddleware:
    def __init__(
        self, inner: ASGIApp, store: Store, replay_header: Callable[[], bool] = lambda: True
    ) -> None:
        self.inner = inner
        self.store = store
        # Enlivy does not document a replay header: tests switch it off to see how clients cope without it.
        self.replay_header = replay_header
        self._locks: dict[tuple[str, str, str, str], asyncio.Lock] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if not key or scope["method"] not in WRITE_METHODS or scope["path"].startswith(ADMIN_PREFIX):
            await self.inner(scope, receive, send)
            return
        auth = _header(scope, b"authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        method, path = scope["method"], scope["path"]
        body = await read_body(receive)
        if body is None:
            # Nobody is listening: answer for form's sake, but run nothing and store nothing under the key.
            await send_json(send, 400, {"message": "The request body did not arrive completely."})
            return
        print_ = fingerprint(scope.get("query_string", b""), body)
        lock_key = (token, method, path, key)
        lock = self._locks.setdefault(lock_key, asyncio.Lock())
        async with lock:
            stored = self.store.get_idempotent(token, method, path, key)
            if stored is not None:
                if stored.fingerprint != print_:
                    await send_json(
                        send,
                        409,
                        {
                            "message": f"The Idempotency-Key {key!r} was already used for a different request"
                            f" to {method} {path}; use a new key for a new request."
                        },
                    )
                    return
                await self._replay(send, stored, flag=self.replay_header())
                return
            captured = await self._run(scope, body, receive)
            status, headers, payload = captured
            if status < 500 and status not in NOT_STORED:
                media_type = next((v.decode() for k, v in headers if k.lower() == b"content-type"), None)
                self.store.put_idempotent(
                    token, method, path, key, StoredResponse(print_, status, payload, media_type), now_iso()
                )
        if not lock.locked():
            # The answer is stored before the lock is released, so a later request with this key replays it.
            self._locks.pop(lock_key, None)
        if self.replay_header():  # a first answer says it is not a replay, so clients can rely on the header
            headers = [*headers, (b"idempotent-replayed", b"false")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _run(
        self, scope: Scope, body: bytes, receive: Receive
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        delivered = False

        async def replay_receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        await self.inner(scope, replay_receive, capture)
        return status, headers, b"".join(chunks)

    @staticmethod
    async def _replay(send: Send, stored: StoredResponse, *, flag: bool = True) -> None:
        headers = [
            (b"content-type", (stored.media_type or "application/json").encode()),
            (b"content-length", str(len(stored.body)).encode()),
        ]
        if flag:
            headers.append((b"idempotent-replayed", b"true"))
        await send({"type": "http.response.start", "status": stored.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": stored.body})
