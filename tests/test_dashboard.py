"""The HTTP app: health, readiness, metrics that agree with the status, and its security."""

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from snn4_ros.dashboard import (DashboardSecurityError, DashboardState, check_bind,
                                create_app, metrics_text)

BASE = "http://127.0.0.1"          # the Host header must name this machine (DNS rebinding)


def _state():
    s = DashboardState(freshness_s=5.0, model={"preset": "hybridnet-s"})
    s.set_totals(events=10_000, packets=10, dropped=0, gaps=0)      # as diagnostics report
    s.set_totals(events=10_500, packets=11, dropped=2, gaps=1)
    s.on_decision("arm_roll", 0.97, 0.004, 0.009)
    s.on_decision("arm_roll", 0.99, 0.005, 0.011)
    s.on_decision("hand_clap", 0.91, 0.003)
    s.on_command(0.2, 0.0, "acting")
    s.spike_rate = {"0": 0.12, "1": 0.05}
    return s


def test_health_ready_status_and_metrics_agree():
    state = _state()
    c = TestClient(create_app(state, token="secret"), base_url=BASE)
    assert c.get("/healthz").json() == {"status": "alive"}
    r = c.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"]
    st = c.get("/api/status").json()
    assert st["events_total"] == 10_500 and st["decisions_total"] == {"arm_roll": 2,
                                                                      "hand_clap": 1}
    fams = {f.name: f for f in text_string_to_metric_families(c.get("/metrics").text)}
    val = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for f in fams.values() for s in f.samples}
    assert val[("snn4_events_received_total", ())] == st["events_total"]
    assert val[("snn4_packets_dropped_total", ())] == st["packets_dropped_total"] == 2
    assert val[("snn4_sequence_gaps_total", ())] == 1
    assert val[("snn4_decisions_total", (("class", "arm_roll"),))] == 2
    assert val[("snn4_cmd_vel_nonzero_total", ())] == st["cmd_vel_nonzero_total"] == 1
    assert val[("snn4_estop_active", ())] == 0
    assert val[("snn4_model_info", (("backend", "torch:cpu"), ("preset", "hybridnet-s")))] == 1
    assert val[("snn4_inference_latency_seconds_count", ())] == 3
    assert val[("snn4_end_to_end_latency_seconds_count", ())] == 2
    assert "access-control-allow-origin" not in c.get("/api/status").headers


def test_not_ready_says_why():
    c = TestClient(create_app(DashboardState()), base_url=BASE)
    r = c.get("/readyz")
    assert r.status_code == 503
    assert "model not loaded" in r.json()["reasons"] and "controller silent" in r.json()["reasons"]


def test_estop_needs_the_token():
    state = _state()
    calls = []
    c = TestClient(create_app(state, token="secret", on_estop=calls.append), base_url=BASE)
    assert c.post("/api/estop", json={"engage": True}).status_code == 401
    r = c.post("/api/estop", json={"engage": True}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and not state.estop and calls == []
    r = c.post("/api/estop", json={"engage": True}, headers={"Authorization": "Bearer secret"})
    assert r.status_code == 200 and state.estop and calls == [True]
    assert c.get("/api/status").json()["estop"] is True
    # without a configured token nothing can change anything
    c2 = TestClient(create_app(_state(), token=None), base_url=BASE)
    assert c2.post("/api/estop", json={"engage": True},
                   headers={"Authorization": "Bearer "}).status_code == 401


def test_malformed_and_oversized_requests():
    c = TestClient(create_app(_state(), token="secret"), base_url=BASE)
    h = {"Authorization": "Bearer secret"}
    assert c.post("/api/estop", content=b"{not json", headers=h).status_code == 400
    assert c.post("/api/estop", json={"engage": "yes"}, headers=h).status_code == 422
    assert c.post("/api/estop", content=b"x" * 10_000, headers=h).status_code == 413
    chunks = (b"x" * 1000 for _ in range(10))              # streamed, no length declared
    assert c.post("/api/estop", content=chunks, headers=h).status_code == 413
    assert c.post("/api/estop", headers=h | {"content-length": "-5"}).status_code == 413


def test_non_loopback_bind_needs_a_token():
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    check_bind("0.0.0.0", "tok")
    with pytest.raises(DashboardSecurityError, match="refusing to bind 0.0.0.0"):
        check_bind("0.0.0.0", None)


def test_live_page_and_stream():
    """The page is self-contained (no external resource) and the SSE stream carries the
    live snapshot the page draws."""
    import json
    import re

    state = _state()
    state.on_scores({"arm_roll": 0.9, "hand_clap": 0.1},
                    {"x": 10.0, "y": 20.0, "visibility": 0.8, "width": 128, "height": 128})
    state.on_frame(4, 2, bytes(range(8)))
    c = TestClient(create_app(state, token="secret"), base_url=BASE)
    r = c.get("/")
    assert r.status_code == 200 and "EventSource(\"/api/stream\")" in r.text
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", r.text)     # nothing off the robot
    assert "default-src 'self'" in r.headers["content-security-policy"]
    live = state.live()
    assert live["probs"]["arm_roll"] == 0.9 and live["target"]["x"] == 10.0
    assert live["frame"] == {"w": 4, "h": 2, "data": "AAECAwQFBgc="}
    json.dumps(live)                                      # what the stream sends each period


def test_estop_not_confirmed_by_the_controller_is_an_error():
    state = _state()
    c = TestClient(create_app(state, token="secret", on_estop=lambda engage: False),
                   base_url=BASE)
    r = c.post("/api/estop", json={"engage": True}, headers={"Authorization": "Bearer secret"})
    assert r.status_code == 503 and not state.estop


def test_snn4_up_refuses_an_open_dashboard_without_token(capsys, monkeypatch):
    from snn4_ros.app.cli import main

    monkeypatch.delenv("SNN4_DASHBOARD_TOKEN", raising=False)
    assert main(["up", "--duration", "1", "--dashboard", "0.0.0.0:18080"]) == 2
    assert "refusing to bind 0.0.0.0 without a token" in capsys.readouterr().err
    assert main(["up", "--duration", "1", "--dashboard", "nonsense"]) == 2


def test_rates_and_latencies_are_over_a_recent_window(monkeypatch):
    """The page's figures follow what the graph does now: the rate over the last seconds
    (not since boot, and not a burst of two reports read as 10^7 ev/s), latencies of the
    window only, start-up left out and marked."""
    import snn4_ros.dashboard.state as statemod

    now = [1000.0]
    monkeypatch.setattr(statemod.time, "monotonic", lambda: now[0])
    s = DashboardState(window_s=20.0, warmup_s=10.0, freshness_s=2.5)
    s.set_totals(events=0, packets=0, dropped=0, gaps=0)
    now[0] += 0.01
    s.set_totals(events=10_000, packets=5, dropped=0, gaps=0)     # start-up burst
    assert s.event_rate() == 0.0
    s.on_decision("arm_roll", 0.9, latency_s=1.5)                    # warm-up latency
    assert s.status()["warming_up"]
    for k in range(1, 41):                                           # 40 s: 2 k, then 17 k ev/s
        now[0] += 1.0
        s.set_totals(events=s.events_total + (2_000 if k <= 30 else 17_000), packets=5 + k,
                     dropped=0, gaps=0)
        s.on_decision("arm_roll", 0.9, latency_s=0.010 if k <= 30 else 0.030)
    s.invalidate()
    st = s.status()
    assert not st["warming_up"]
    assert st["event_rate_hz"] == pytest.approx(17_000)
    assert st["event_rate_window_hz"] == pytest.approx((10 * 17_000 + 10 * 2_000) / 20, rel=0.1)
    lat = st["inference_latency_s"]
    assert lat["n"] == 21 and lat["p99"] == pytest.approx(0.030) and lat["p50"] < 0.031
    # the Prometheus histogram keeps everything since the start, warm-up included
    fams = {f.name: f for f in text_string_to_metric_families(metrics_text(s).decode())}
    count = [x.value for x in fams["snn4_inference_latency_seconds"].samples
             if x.name.endswith("_count")]
    assert count == [41]
    now[0] += 10.0                                                   # the graph went quiet
    s.invalidate()
    assert s.status()["event_rate_hz"] == 0.0


def test_readyz_follows_decisions_and_the_action_is_shown():
    s = DashboardState(freshness_s=2.5)
    assert "model not loaded" in s.readiness()
    s.on_decision("arm_roll", 0.95)            # deciding: a model is loaded, events come
    s.on_controller("acting", "arm_roll", False)
    assert s.readiness() == []
    s.on_command(0.2, 0.0)
    st = s.status()
    assert st["command"] == {"linear": 0.2, "angular": 0.0, "action": "arm_roll"}
    s.on_controller("stale", None, False)
    assert s.readiness() == ["controller stale"]


def test_security_headers_and_diagnostic_counters_in_metrics():
    state = _state()
    state.on_node("snn4_inference", "WARN", "bad input counted", {
        "geometry_errors": "4391", "rejected.oversized": "3", "backend": "torch:cpu"})
    c = TestClient(create_app(state, token="secret"), base_url=BASE)
    for path in ("/", "/api/status", "/metrics", "/readyz", "/nonexistent", "/favicon.ico"):
        r = c.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
    assert c.get("/favicon.ico").headers["content-type"].startswith("image/svg+xml")
    assert c.get("/", headers={"Host": "attacker.example"}).status_code == 421
    c.post("/api/estop", json={"engage": True})                     # no token
    fams = {f.name: f for f in text_string_to_metric_families(c.get("/metrics").text)}
    val = {(s.name, tuple(sorted(s.labels.items()))): s.value
           for f in fams.values() for s in f.samples}
    key = ("snn4_diagnostic_value", (("key", "geometry_errors"), ("node", "snn4_inference")))
    assert val[key] == 4391
    assert val[("snn4_rejected_total", (("cause", "oversized"), ("node", "snn4_inference")))] == 3
    assert val[("snn4_http_rejected_total", (("cause", "bad_host"),))] == 1
    assert val[("snn4_http_rejected_total", (("cause", "unauthorized"),))] == 1
