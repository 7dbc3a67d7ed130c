"""Plain ASGI middleware of the dashboard app: the fast path for the status endpoint
(Starlette's BaseHTTPMiddleware would double the per-request CPU of every poll). Body
limits, timeouts, Host checks and security headers are ``server.RequestGuard``'s."""

from __future__ import annotations

from .state import DashboardState

MAX_BODY = 4096


class StatusFastPath:
    """``GET /api/status`` straight from the cached JSON bytes, below FastAPI's routing:
    the endpoint fleets poll, answered for a fraction of the CPU (bench/dashboard_load.py).
    Sits inside ``RequestGuard``, so Host checks and security headers apply."""

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
