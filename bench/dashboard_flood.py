"""Connection floods against the dashboard: does the e-stop still get through?

    python bench/dashboard_flood.py [--estops 20] [--variants before,timeouts,guarded]

The dashboard's HTTP app runs in its own process under one of three servers:

* ``before``   uvicorn as the dashboard node used to run it (``limit_concurrency=200``,
               keep-alive timeout 5 s, no header timeout);
* ``timeouts`` the same plus a 5 s header timeout (``GuardedProtocol`` without eviction,
               uvicorn's global limit kept): what header timeouts alone buy;
* ``guarded``  ``snn4_ros.dashboard.server``: header timeout, header size cap, the oldest
               idle connection closed when ``max_connections`` are open, an in-flight limit
               that spares ``POST /api/estop``, no global limit.

Against each, from this process (asyncio, raw sockets): ``idle`` N connections that send
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
    app = create_app(state, TOKEN)
    if variant == "before":
        cfg = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                             access_log=False, limit_concurrency=200, timeout_keep_alive=5)
    elif variant == "timeouts":
        guard = srv.HttpGuard(max_connections=10**6)         # never evicts
        cfg = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                             access_log=False, limit_concurrency=200, timeout_keep_alive=5,
                             http=srv.guarded_protocol(guard))
    else:
        guard = srv.HttpGuard()
        cfg = srv.server_config(srv.RequestGuard(app, guard), "127.0.0.1", port, guard)
        cfg.log_level = "error"
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


async def _attack(kind: str, n: int, port: int, stop: asyncio.Event, held: list) -> None:
    async def one():
        while not stop.is_set():
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
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


async def scenario(port: int, kind: str, n: int, estops: int) -> dict:
    stop = asyncio.Event()
    held = [0]
    attack = asyncio.create_task(_attack(kind, n, port, stop, held))
    await asyncio.sleep(2.0)                       # the attack is in place
    held_at_start = held[0]
    res = {"estop": [], "status": []}
    for k in range(estops):
        res["estop"].append(await _request(port, _estop(k % 2 == 0)))
        res["status"].append(await _request(port, STATUS))
        await asyncio.sleep(0.5)
    stop.set()
    attack.cancel()
    try:
        await attack
    except (asyncio.CancelledError, Exception):
        pass
    out = {"attack": kind, "connections": n, "attack_connections_open": held_at_start}
    for k, v in res.items():
        ok = [t for code, t in v if code == 200]
        codes: dict = {}
        for code, _ in v:
            codes[str(code)] = codes.get(str(code), 0) + 1
        out[k] = {"ok": len(ok), "sent": len(v), "codes": codes,
                  "p50_ms": round(1e3 * float(np.percentile(ok, 50)), 1) if ok else None,
                  "max_ms": round(1e3 * max(ok), 1) if ok else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--estops", type=int, default=20)
    ap.add_argument("--variants", default="before,timeouts,guarded")
    ap.add_argument("--attacks", default="idle:200,slowloris:200,churn:200,idle:1000,"
                                         "idle:4000")
    ap.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        serve(a.serve[0], int(a.serve[1]))
        return
    results = []
    for variant in a.variants.split(","):
        for spec in a.attacks.split(","):
            kind, n = spec.split(":")
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            srv = subprocess.Popen([sys.executable, __file__, "--serve", variant, str(port)],
                                   cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            try:
                t_end = time.monotonic() + 20
                while asyncio.run(_request(port, STATUS, 1.0))[0] != 200:
                    assert time.monotonic() < t_end and srv.poll() is None, "no server"
                    time.sleep(0.2)
                r = asyncio.run(scenario(port, kind, int(n), a.estops))
            finally:
                srv.terminate()
                srv.wait(timeout=10)
            r["variant"] = variant
            results.append(r)
            e, st = r["estop"], r["status"]
            print(f"{variant:<9} {kind:<9} x{n:<5} (open {r['attack_connections_open']:>4}): "
                  f"e-stop {e['ok']:>2}/{e['sent']} ok (p50 {e['p50_ms']} ms, max "
                  f"{e['max_ms']} ms, codes {e['codes']}); status {st['ok']}/{st['sent']}",
                  flush=True)
    print(json.dumps({"scenarios": results, "pid": os.getpid()}))


if __name__ == "__main__":
    main()
