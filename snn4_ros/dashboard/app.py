"""HTTP health, metrics and control for a running snn4_ros graph (FastAPI; no rclpy here).

``DashboardState`` (state.py) is the one place the graph reports to; ``create_app`` serves
it (the Prometheus text comes from metrics.py, the ASGI middleware from middleware.py):

* ``GET /healthz``   the process is alive
* ``GET /readyz``    200 only when the model is loaded, events arrived within the freshness
                     window and the controller is not stale; 503 with the reasons otherwise
* ``GET /metrics``   Prometheus text format (``snn4_`` prefix, base units, ``_total``)
* ``GET /api/status`` JSON: rates, latency percentiles, backend, model card, last decision,
                     controller and e-stop state
* ``POST /api/estop`` ``{"engage": true|false}`` with ``Authorization: Bearer TOKEN``
* ``GET /api/stream`` server-sent events for the live page
* ``GET /``          the live page (no external resources: the robot has no internet)

Security: mutating endpoints need the bearer token (compared in constant time); no CORS
headers; request bodies over 4 KiB are refused; ``check_bind`` refuses a non-loopback bind
without a token.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from .metrics import metrics_text
from .middleware import BodyLimit, StatusFastPath
from .state import DashboardState


class DashboardSecurityError(RuntimeError):
    """A configuration that would expose the robot's controls."""


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        raise DashboardSecurityError(
            f"refusing to bind {host} without a token: set SNN4_DASHBOARD_TOKEN or "
            "--dashboard-token-file, or bind 127.0.0.1")


def create_app(state: DashboardState, token: str | None = None, on_estop=None,
               stream_period_s: float = 0.2):
    """The FastAPI app. ``on_estop(engaged: bool) -> bool`` forwards the e-stop to the
    controller (blocking is fine: it runs in a worker thread; False means not confirmed)."""

    app = FastAPI(title="snn4_ros", docs_url=None, redoc_url=None, openapi_url=None)

    app.add_middleware(BodyLimit)
    app.add_middleware(StatusFastPath, state=state)

    @app.get("/healthz")
    def healthz():
        return {"status": "alive"}

    @app.get("/readyz")
    def readyz():
        why = state.readiness()
        return JSONResponse({"ready": not why, "reasons": why}, status_code=503 if why else 200)

    @app.get("/metrics")
    def metrics():
        return Response(metrics_text(state), media_type="text/plain; version=0.0.4")

    @app.get("/api/status")
    def status():
        return Response(state.status_json(), media_type="application/json")

    @app.post("/api/estop")
    async def estop(request: Request):
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"detail": "body must be JSON"}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("engage"), bool):
            return JSONResponse({"detail": 'body must be {"engage": true|false}'},
                                status_code=422)
        if on_estop is not None:
            ok = await asyncio.get_running_loop().run_in_executor(None, on_estop,
                                                                  body["engage"])
            if ok is False:
                return JSONResponse({"detail": "the controller did not confirm the e-stop"},
                                    status_code=503)
        state.estop = body["engage"]
        state.invalidate()
        return {"estop": state.estop}

    @app.get("/api/stream")
    async def stream(request: Request):
        """Server-sent events: the live snapshot every ``stream_period_s``."""
        async def events():
            while not await request.is_disconnected():
                yield f"data: {json.dumps(state.live(), default=float)}\n\n"
                await asyncio.sleep(stream_period_s)
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.get("/")
    def index():
        return HTMLResponse(_page(), headers={
            "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline' 'self'; "
                                       "style-src 'unsafe-inline'; img-src 'self' data:"})

    return app


def _page() -> str:
    from importlib.resources import files
    return (files("snn4_ros.dashboard") / "static" / "index.html").read_text()
