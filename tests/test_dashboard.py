"""The HTTP app: health, readiness, metrics that agree with the status, and its security."""

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from snn4_ros.dashboard.app import (DashboardSecurityError, DashboardState, check_bind,
                                    create_app)


def _state():
    s = DashboardState(freshness_s=5.0, model={"preset": "hybridnet-s"})
    for _ in range(10):
        s.on_packet(1000, gaps=0)
    s.on_packet(500, dropped=2, gaps=1)
    s.on_decision("arm_roll", 0.97, 0.004, 0.009)
    s.on_decision("arm_roll", 0.99, 0.005, 0.011)
    s.on_decision("hand_clap", 0.91, 0.003)
    s.on_command(0.2, 0.0, "acting")
    s.spike_rate = {"0": 0.12, "1": 0.05}
    return s


def test_health_ready_status_and_metrics_agree():
    state = _state()
    c = TestClient(create_app(state, token="secret"))
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
    c = TestClient(create_app(DashboardState()))
    r = c.get("/readyz")
    assert r.status_code == 503
    assert "model not loaded" in r.json()["reasons"] and "controller silent" in r.json()["reasons"]


def test_estop_needs_the_token():
    state = _state()
    calls = []
    c = TestClient(create_app(state, token="secret", on_estop=calls.append))
    assert c.post("/api/estop", json={"engage": True}).status_code == 401
    r = c.post("/api/estop", json={"engage": True}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and not state.estop and calls == []
    r = c.post("/api/estop", json={"engage": True}, headers={"Authorization": "Bearer secret"})
    assert r.status_code == 200 and state.estop and calls == [True]
    assert c.get("/api/status").json()["estop"] is True
    # without a configured token nothing can change anything
    c2 = TestClient(create_app(_state(), token=None))
    assert c2.post("/api/estop", json={"engage": True},
                   headers={"Authorization": "Bearer "}).status_code == 401


def test_malformed_and_oversized_requests():
    c = TestClient(create_app(_state(), token="secret"))
    h = {"Authorization": "Bearer secret"}
    assert c.post("/api/estop", content=b"{not json", headers=h).status_code == 400
    assert c.post("/api/estop", json={"engage": "yes"}, headers=h).status_code == 422
    assert c.post("/api/estop", content=b"x" * 10_000, headers=h).status_code == 413


def test_non_loopback_bind_needs_a_token():
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    check_bind("0.0.0.0", "tok")
    with pytest.raises(DashboardSecurityError, match="refusing to bind 0.0.0.0"):
        check_bind("0.0.0.0", None)
