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
* ``GET /favicon.ico`` its icon (SVG)

Security: mutating endpoints need the bearer token (compared in constant time); no CORS
headers; ``check_bind`` refuses a non-loopback bind without a token; nested JSON is refused
before parsing. ``server.RequestGuard`` sits outermost (Host check, body size and time
limits, in-flight limit sparing the e-stop, security headers on every response) and
``server.GuardedProtocol`` below it (header timeout and size, connection caps that evict
idle connections); every refusal is counted by cause.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from .metrics import metrics_text
from .middleware import MAX_BODY, StatusFastPath
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


MAX_JSON_DEPTH = 16


def json_depth_ok(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Nesting depth of a JSON text, counted without parsing (json.loads recurses: 2000
    levels in 4 KB raised RecursionError, a 500)."""
    depth, in_str, esc = 0, False, False
    for ch in body:
        if in_str:
            if esc:
                esc = False
            elif ch == 0x5C:                    # backslash
                esc = True
            elif ch == 0x22:                    # quote
                in_str = False
        elif ch == 0x22:
            in_str = True
        elif ch in (0x5B, 0x7B):                # [ {
            depth += 1
            if depth > limit:
                return False
        elif ch in (0x5D, 0x7D):
            depth -= 1
    return True


_DETAIL = {"type": "object", "properties": {"detail": {"type": "string"}},
           "required": ["detail"]}


def _resp(desc: str, schema: dict | None = None, media: str = "application/json") -> dict:
    return {"description": desc, "content": {media: {"schema": schema or _DETAIL}}}


_GUARD_RESPONSES = {"421": _resp("unknown Host header (DNS-rebinding guard)"),
                    "503": _resp("busy: too many requests in flight (never the e-stop)")}

_ESTOP_BODY = {"type": "object", "properties": {"engage": {"type": "boolean"}},
               "required": ["engage"], "additionalProperties": False}


class _GuardedFastAPI(FastAPI):
    """FastAPI with ``RequestGuard`` outermost: Host checks, body limits and the security
    headers apply to every response, Starlette's own error pages included."""

    http_guard = None

    def build_middleware_stack(self):
        from .server import RequestGuard
        return RequestGuard(super().build_middleware_stack(), self.http_guard)


def create_app(state: DashboardState, token: str | None = None, on_estop=None,
               stream_period_s: float = 0.2, guard=None):
    """The FastAPI app. ``on_estop(engaged: bool) -> bool`` forwards the e-stop to the
    controller (blocking is fine: it runs in a worker thread; False means not confirmed).
    ``guard`` (``server.HttpGuard``) holds the limits and counts the refusals."""
    from .server import HttpGuard

    guard = guard or HttpGuard(max_body=MAX_BODY)
    state.rejected = guard.rejected                     # /metrics and /api/status read it
    state.estop_available = bool(token)
    app = _GuardedFastAPI(title="snn4_ros dashboard", version="1", docs_url=None,
                          redoc_url=None, openapi_url=None, responses=_GUARD_RESPONSES)
    app.http_guard = guard
    app.add_middleware(StatusFastPath, state=state)
    estop_lock = asyncio.Lock()          # one e-stop at a time: the state is the last applied

    @app.get("/healthz", responses={"200": _resp("alive", {"type": "object"})})
    def healthz():
        return {"status": "alive"}

    @app.get("/readyz", responses={
        "200": _resp("ready", {"type": "object"}),
        "503": _resp("not ready, with the reasons", {"type": "object", "properties": {
            "ready": {"type": "boolean"}, "reasons": {"type": "array"}}})})
    def readyz():
        why = state.readiness()
        return JSONResponse({"ready": not why, "reasons": why}, status_code=503 if why else 200)

    @app.get("/metrics", response_class=Response, responses={
        "200": {"description": "Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}}}})
    def metrics():
        return Response(metrics_text(state), media_type="text/plain; version=0.0.4")

    @app.get("/api/status", responses={"200": _resp("the status", {"type": "object"})})
    def status():
        return Response(state.status_json(), media_type="application/json")

    @app.post("/api/estop", responses={
        "200": _resp("applied", {"type": "object", "properties": {
            "estop": {"type": "boolean"}}, "required": ["estop"]}),
        "400": _resp("not JSON, or nested too deep"),
        "401": _resp("missing or wrong bearer token"),
        "408": _resp("body not received in time"),
        "413": _resp("body over 4 KiB"),
        "422": _resp('body is not {"engage": true|false}'),
        "503": _resp("the controller did not confirm")},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": _ESTOP_BODY}}},
            "security": [{"bearer": []}]})
    async def estop(request: Request):
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            guard.count("unauthorized")
            return JSONResponse({"detail": "missing or wrong bearer token" if token else
                                 "the e-stop is disabled: this dashboard has no token"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        raw = await request.body()
        if not json_depth_ok(raw):
            guard.count("json_too_deep")
            return JSONResponse({"detail": f"JSON nested deeper than {MAX_JSON_DEPTH}"},
                                status_code=400)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            guard.count("bad_json")
            return JSONResponse({"detail": "body must be JSON"}, status_code=400)
        if not isinstance(body, dict) or not isinstance(body.get("engage"), bool) \
                or set(body) != {"engage"}:
            guard.count("bad_estop_body")
            return JSONResponse({"detail": 'body must be {"engage": true|false}'},
                                status_code=422)
        async with estop_lock:
            if on_estop is not None:
                ok = await asyncio.get_running_loop().run_in_executor(None, on_estop,
                                                                      body["engage"])
                if ok is False:
                    return JSONResponse({"detail": "the controller did not confirm the "
                                         "e-stop"}, status_code=503)
            state.estop = body["engage"]
            state.invalidate()
        return {"estop": body["engage"]}

    @app.get("/api/stream", include_in_schema=True, responses={
        "200": {"description": "server-sent events, the live snapshot each period",
                "content": {"text/event-stream": {"schema": {"type": "string"}}}}})
    async def stream(request: Request):
        """Server-sent events: the live snapshot every ``stream_period_s``."""
        async def events():
            while not await request.is_disconnected():
                yield f"data: {json.dumps(state.live(), default=float)}\n\n"
                await asyncio.sleep(stream_period_s)
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    @app.get("/", response_class=HTMLResponse, responses={
        "200": {"description": "the live page",
                "content": {"text/html": {"schema": {"type": "string"}}}}})
    def index():
        return HTMLResponse(_page())              # its CSP comes from RequestGuard

    @app.get("/favicon.ico", responses={
        "200": {"description": "the icon",
                "content": {"image/svg+xml": {"schema": {"type": "string"}}}}})
    def favicon():
        return Response(FAVICON, media_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=86400"})

    def openapi():
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}}
            app.openapi_schema = schema
        return app.openapi_schema
    app.openapi = openapi
    return app


# an event camera's eye: on/off events (green/red) around a lens
FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
           b'<rect width="32" height="32" rx="6" fill="#10141a"/>'
           b'<circle cx="16" cy="16" r="9" fill="none" stroke="#58a6ff" stroke-width="3"/>'
           b'<circle cx="16" cy="16" r="3" fill="#e6e9ee"/>'
           b'<rect x="4" y="4" width="4" height="4" fill="#3fb950"/>'
           b'<rect x="24" y="24" width="4" height="4" fill="#f85149"/>'
           b'<rect x="24" y="5" width="3" height="3" fill="#3fb950"/></svg>')


def _page() -> str:
    from importlib.resources import files
    return (files("snn4_ros.dashboard") / "static" / "index.html").read_text()
