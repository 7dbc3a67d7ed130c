"""Plain ASGI middleware of the dashboard app: the request-body limit and the fast path
for the status endpoint (Starlette's BaseHTTPMiddleware would double the per-request CPU
of every poll)."""

from __future__ import annotations

from .state import DashboardState

MAX_BODY = 4096


class BodyLimit:
    """Refuses request bodies over MAX_BODY (declared or streamed) with 413. Plain ASGI:
    Starlette's BaseHTTPMiddleware would double the per-request CPU of every poll."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return await _reply_413(send)
        seen = 0

        async def limited():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > MAX_BODY:
                    raise _TooLarge
            return msg
        try:
            return await self.app(scope, limited, send)
        except _TooLarge:
            return await _reply_413(send)


class StatusFastPath:
    """``GET /api/status`` straight from the cached JSON bytes, below FastAPI's routing:
    the endpoint fleets poll, answered for a fraction of the CPU (bench/dashboard_load.py)."""

    def __init__(self, app, state: DashboardState):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] == "GET" \
                and scope["path"] == "/api/status":
            body = self.state.status_json()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


async def _reply_413(send) -> None:
    body = b'{"detail":"request body too large"}'
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
