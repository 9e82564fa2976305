"""Request bodies are read once, in full and within :data:`~enlivy_provider.emulator.limits.MAX_BODY_BYTES`.

:class:`BodyLimitMiddleware` answers 413 to a body that is too large — at once when ``Content-Length``
says so, otherwise as soon as the bytes read pass the limit — so nothing behind it (idempotency keys,
routes) sees such a request. A body within the limit is handed on as one message. When the client goes
away before its last byte, the fragment is handed on as incomplete (``more_body``) followed by the
disconnect, so the layers behind it can tell a cut-off body from a whole one.
"""

from __future__ import annotations

from enlivy_provider.emulator.faults import ADMIN_PREFIX, ASGIApp, Message, Receive, Scope, Send, send_json
from enlivy_provider.emulator.limits import MAX_BODY_BYTES

TOO_LARGE = {"message": f"The request body is larger than {MAX_BODY_BYTES} bytes."}


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            text = bytes(value).decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


class BodyLimitMiddleware:
    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.inner(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > MAX_BODY_BYTES:
            await send_json(send, 413, TOO_LARGE)
            return
        chunks: list[bytes] = []
        size = 0
        ending: Message | None = None  # the disconnect that cut the body short, if any
        while True:
            message = await receive()
            if message["type"] != "http.request":
                ending = message
                break
            chunk = bytes(message.get("body", b""))
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await send_json(send, 413, TOO_LARGE)
                return
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        pending: list[Message] = [
            {"type": "http.request", "body": b"".join(chunks), "more_body": bool(ending)}
        ]
        if ending is not None:
            pending.append(ending)

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.inner(scope, replay, send)
