"""The Prometheus exposition of the dashboard state (``GET /metrics``): ``snn4_`` prefix, base
units, ``_total`` counters; a fresh registry per scrape, so no process-wide globals."""

from __future__ import annotations

from .state import DashboardState


def metrics_text(state: DashboardState) -> bytes:
    """The Prometheus exposition of the state (a fresh registry per scrape: no globals)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

    reg = CollectorRegistry()
    s = state.status()
    for name, doc, value in (
            ("snn4_events_received", "Change-detection events received", s["events_total"]),
            ("snn4_packets_received", "EventPackets received", s["packets_total"]),
            ("snn4_packets_dropped", "EventPackets shed by the bounded queue",
             s["packets_dropped_total"]),
            ("snn4_sequence_gaps", "EventPacket sequence gaps", s["sequence_gaps_total"]),
            ("snn4_cmd_vel_nonzero", "Non-zero velocity commands", s["cmd_vel_nonzero_total"])):
        Counter(name, doc, registry=reg).inc(value)
    dec = Counter("snn4_decisions", "Gesture decisions", ["class"], registry=reg)
    for cls, n in s["decisions_total"].items():
        dec.labels(cls).inc(n)
    Gauge("snn4_estop_active", "1 while the e-stop is engaged", registry=reg).set(int(s["estop"]))
    Gauge("snn4_event_rate_hz", "Events per second", registry=reg).set(s["event_rate_hz"])
    info = Gauge("snn4_model_info", "The running model", ["preset", "backend"], registry=reg)
    info.labels(str(s["model"].get("preset", "")), s["backend"]).set(1)
    rate = Gauge("snn4_spike_rate", "Spikes per neuron and time bin", ["layer"], registry=reg)
    for layer, v in s["spike_rate"].items():
        rate.labels(str(layer)).set(v)
    lat, e2e = state.latencies()
    buckets = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
    for name, doc, values in (("snn4_inference_latency_seconds", "Packet to decision", lat),
                              ("snn4_end_to_end_latency_seconds", "Packet to command", e2e)):
        h = Histogram(name, doc, buckets=buckets, registry=reg)
        for v in values:
            h.observe(v)
    return generate_latest(reg)
