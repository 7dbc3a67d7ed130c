"""Connection floods against the dashboard: does the e-stop still get through?

    python bench/dashboard_flood.py [--estops 20] [--variants before,timeouts,guarded]

The dashboard's HTTP app runs in its own process under one of three servers:

* ``before``   uvicorn as the dashboard node used to run it (``limit_concurrency=200``,
               keep-alive timeout 5 s, no header timeout; uvicorn's limit answers before
               the app is reached, so the app's own guard does not change this row);
* ``timeouts`` the same plus a 5 s header timeout (``GuardedProtocol`` without eviction,
               uvicorn's global limit kept): what header timeouts alone buy;
* ``guarded``  ``snn4_ros.dashboard.server``: header timeout, header size cap, the oldest
               idle connection closed when a client address or the server is at its cap, an
               in-flight limit that spares ``POST /api/estop``, no global limit;
* ``listener`` ``guarded`` plus the same app on a second port in its own thread and event
               loop; the e-stops go there (the flood stays on the first port).

Against each, from this process (asyncio, raw sockets), from the e-stop client's own
address or (``@other``) from 127.0.0.2 as another host would: ``idle`` N connections that send
nothing, ``slowloris`` N connections that send a request line and one header byte every
2 s, ``churn`` N connections that reconnect as soon as the server closes them. While the
attack is held, ``--estops`` authenticated ``POST /api/estop`` requests go out, one every
0.5 s, each on a fresh connection (so across the 5 s timeouts), and the same number of
``GET /api/status``. Reported: answered 200 of sent, and the latency of the 200s. The last
line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TOKEN = "flood-bench-token"


def serve(variant: str, port: int) -> None:
    """The server process."""
    import uvicorn

    from snn4_ros.dashboard import DashboardState, create_app
    from snn4_ros.dashboard import server as srv

    state = DashboardState(model={"preset": "hybridnet-s"})
    guard = srv.HttpGuard(max_connections=10**6, max_connections_per_client=10**6) \
        if variant == "timeouts" else srv.HttpGuard()
    app = create_app(state, TOKEN, guard=guard)
    if variant == "before":
        cfg = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                             access_log=False, limit_concurrency=200, timeout_keep_alive=5)
    elif variant == "timeouts":                               # never evicts
        cfg = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                             access_log=False, limit_concurrency=200, timeout_keep_alive=5,
                             http=srv.guarded_protocol(guard))
    else:
        cfg = srv.server_config(app, "127.0.0.1", port, guard)
        cfg.log_level = "error"
    if variant == "listener":
        # the same app on a second port, its own thread and event loop: the flood's accept
        # queue is not the e-stop's
        side = srv.server_config(app, "127.0.0.1", port + 1, srv.HttpGuard())
        side.log_level = "error"
        srv.ServerThread(side)
    uvicorn.Server(cfg).run()


async def _request(port: int, raw: bytes, timeout: float = 5.0) -> tuple[int, float]:
    t0 = time.perf_counter()
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        w.write(raw)
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), timeout)
        w.close()
        return int(head.split(b" ", 2)[1]), time.perf_counter() - t0
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError):
        return -1, time.perf_counter() - t0


def _estop(engage: bool) -> bytes:
    body = json.dumps({"engage": engage}).encode()
    return (b"POST /api/estop HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            + TOKEN.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


STATUS = b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


async def _attack(kind: str, n: int, port: int, stop: asyncio.Event, held: list,
                  src: str) -> None:
    async def one():
        while not stop.is_set():
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(src, 0))
            except OSError:
                await asyncio.sleep(0.1)
                continue
            held[0] += 1
            try:
                if kind == "slowloris":
                    w.write(b"POST /api/estop HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
                while not stop.is_set():
                    if kind == "slowloris":
                        w.write(b"a")
                    try:                     # read: learn when the server hangs up
                        data = await asyncio.wait_for(r.read(1024), 2.0)
                        if not data:
                            break
                    except asyncio.TimeoutError:
                        pass
            except OSError:
                pass
            finally:
                held[0] -= 1
                w.close()
            if kind != "churn":
                # idle / slowloris: hold, and come back only as fast as a patient attacker
                await asyncio.sleep(0.5)
    await asyncio.gather(*(one() for _ in range(n)))


async def scenario(port: int, kind: str, n: int, estops: int, src: str,
                   estop_port: int | None = None) -> dict:
    stop = asyncio.Event()
    held = [0]
    attack = asyncio.create_task(_attack(kind, n, port, stop, held, src))
    await asyncio.sleep(2.0)                       # the attack is in place
    held_at_start = held[0]
    res = {"estop": [], "status": []}
    for k in range(estops):
        res["estop"].append(await _request(estop_port or port, _estop(k % 2 == 0)))
        res["status"].append(await _request(port, STATUS))
        await asyncio.sleep(0.5)
    stop.set()
    attack.cancel()
    try:
        await attack
    except (asyncio.CancelledError, Exception):
        pass
    out = {"attack": kind, "connections": n, "attack_connections_open": held_at_start,
           "attacker": "same host" if src == "127.0.0.1" else "another address"}
    for k, v in res.items():
        ok = [t for code, t in v if code == 200]
        codes: dict = {}
        for code, _ in v:
            codes[str(code)] = codes.get(str(code), 0) + 1
        out[k] = {"ok": len(ok), "sent": len(v), "codes": codes,
                  "p50_ms": round(1e3 * float(np.percentile(ok, 50)), 1) if ok else None,
                  "max_ms": round(1e3 * max(ok), 1) if ok else None}
    return out


def _free_pair() -> int:
    """A free port whose successor is free too (the listener variant uses both)."""
    while True:
        with socket.socket() as s, socket.socket() as s2:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            try:
                s2.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--estops", type=int, default=20)
    ap.add_argument("--variants", default="before,timeouts,guarded")
    ap.add_argument("--attacks", default="idle:200,slowloris:200,churn:200,idle:1000,"
                                         "idle:4000,idle:1000@other,slowloris:1000@other,"
                                         "idle:4000@other",
                    help="KIND:N[@other], KIND idle|slowloris|churn; @other: the attacker "
                         "connects from 127.0.0.2 (another host), else from the e-stop "
                         "client's own address")
    ap.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        serve(a.serve[0], int(a.serve[1]))
        return
    results = []
    for variant in a.variants.split(","):
        for spec in a.attacks.split(","):
            spec, _, other = spec.partition("@")
            kind, n = spec.split(":")
            src = "127.0.0.2" if other else "127.0.0.1"
            port = _free_pair()
            srv = subprocess.Popen([sys.executable, __file__, "--serve", variant, str(port)],
                                   cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            try:
                t_end = time.monotonic() + 20
                while asyncio.run(_request(port, STATUS, 1.0))[0] != 200:
                    assert time.monotonic() < t_end and srv.poll() is None, "no server"
                    time.sleep(0.2)
                r = asyncio.run(scenario(port, kind, int(n), a.estops, src,
                                         port + 1 if variant == "listener" else None))
            finally:
                srv.terminate()
                srv.wait(timeout=10)
            r["variant"] = variant
            results.append(r)
            e, st = r["estop"], r["status"]
            print(f"{variant:<9} {kind:<9} x{n:<5} {'@other' if other else '':<6} (open {r['attack_connections_open']:>4}): "
                  f"e-stop {e['ok']:>2}/{e['sent']} ok (p50 {e['p50_ms']} ms, max "
                  f"{e['max_ms']} ms, codes {e['codes']}); status {st['ok']}/{st['sent']}",
                  flush=True)
    print()
    print(markdown(results))
    print(json.dumps({"scenarios": results, "pid": os.getpid()}))


def markdown(results: list[dict]) -> str:
    """The README's table: one row per attack, one column per server variant."""
    variants = list(dict.fromkeys(r["variant"] for r in results))
    attacks = list(dict.fromkeys((r["attack"], r["connections"], r["attacker"])
                                 for r in results))
    lines = ["| attack | " + " | ".join(f"{v}: e-stop 200s, p50 / max" for v in variants)
             + " |", "|---|" + "---|" * len(variants)]
    for kind, n, who in attacks:
        cells = []
        for v in variants:
            r = next(x for x in results if x["variant"] == v and x["attack"] == kind
                     and x["connections"] == n and x["attacker"] == who)
            e = r["estop"]
            cells.append(f"{e['ok']}/{e['sent']}" + (f", {e['p50_ms']:g} / {e['max_ms']:g} ms"
                                                    if e["ok"] else ""))
        lines.append(f"| {n} {kind} ({who}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
