"""The Prometheus exposition of the dashboard state (``GET /metrics``): ``snn4_`` prefix, base
units, ``_total`` counters that only grow; a fresh registry per scrape, so no process-wide
globals. Every node's numeric diagnostics (rejection counters by cause included) and the
dashboard's own HTTP refusals are exposed by key, so a new counter needs no code here."""

from __future__ import annotations

from .state import LAT_BUCKETS, DashboardState

def _number(v) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if x == x and abs(x) != float("inf") else None


def metrics_text(state: DashboardState) -> bytes:
    """The Prometheus exposition of the state (a fresh registry per scrape: no globals).

    Besides the graph's own series, every numeric value a node puts in its diagnostics is
    exposed as ``snn4_diagnostic_value{node,key}`` (rejection counters by cause included,
    whatever a node names them), keys of the form ``rejected.CAUSE`` also as
    ``snn4_rejected_total{node,cause}``, and the dashboard's own HTTP refusals as
    ``snn4_http_rejected_total{cause}``."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                        HistogramMetricFamily)

    s = state.status()
    fams = []
    for name, doc, value in (
            ("snn4_events_received", "Change-detection events received", s["events_total"]),
            ("snn4_packets_received", "EventPackets received", s["packets_total"]),
            ("snn4_packets_dropped", "EventPackets shed by the bounded queue",
             s["packets_dropped_total"]),
            ("snn4_sequence_gaps", "EventPacket sequence gaps", s["sequence_gaps_total"]),
            ("snn4_cmd_vel_nonzero", "Non-zero velocity commands", s["cmd_vel_nonzero_total"])):
        fams.append(CounterMetricFamily(name, doc, value=value))
    dec = CounterMetricFamily("snn4_decisions", "Gesture decisions", labels=["class"])
    for cls, n in s["decisions_total"].items():
        dec.add_metric([cls], n)
    fams.append(dec)
    fams.append(GaugeMetricFamily("snn4_shed_fraction", "Fraction of events shed to stay "
                                  "within the latency deadline (since start)",
                                  value=s.get("shed_fraction", 0.0)))
    fams.append(GaugeMetricFamily("snn4_estop_active", "1 while the e-stop is engaged",
                                  value=int(s["estop"])))
    fams.append(GaugeMetricFamily("snn4_event_rate_hz", "Events per second (last 2 s)",
                                  value=s["event_rate_hz"]))
    info = GaugeMetricFamily("snn4_model_info", "The running model", labels=["preset",
                                                                            "backend"])
    info.add_metric([str(s["model"].get("preset", "")), s["backend"]], 1)
    fams.append(info)
    rate = GaugeMetricFamily("snn4_spike_rate", "Spikes per neuron and time bin",
                             labels=["layer"])
    for layer, v in s["spike_rate"].items():
        rate.add_metric([str(layer)], v)
    fams.append(rate)
    diag = GaugeMetricFamily("snn4_diagnostic_value", "Numeric values of each node's "
                             "diagnostics, by key", labels=["node", "key"])
    rej = CounterMetricFamily("snn4_rejected", "Inputs a node rejected, by cause",
                              labels=["node", "cause"])
    for node, st in s["nodes"].items():
        for key, v in st["values"].items():
            x = _number(v)
            if x is None:
                continue
            diag.add_metric([node, key], x)
            if key.startswith("rejected."):
                rej.add_metric([node, key.split(".", 1)[1]], x)
    fams += [diag, rej]
    http = CounterMetricFamily("snn4_http_rejected", "HTTP requests and connections the "
                               "dashboard refused, by cause", labels=["cause"])
    for cause, n in sorted(state.rejected.items()):
        http.add_metric([cause], n)
    fams.append(http)
    for key, (name, doc) in {"inference": ("snn4_inference_latency_seconds",
                                           "Packet to decision"),
                             "end_to_end": ("snn4_end_to_end_latency_seconds",
                                            "Packet to command")}.items():
        counts, total, n = state.histograms()[key]
        cum, buckets = 0, []
        for le, c in zip([*map(str, LAT_BUCKETS), "+Inf"], counts):
            cum += c
            buckets.append((le, cum))
        fams.append(HistogramMetricFamily(name, doc, buckets=buckets, sum_value=total))

    class _Fixed:
        def collect(self):
            return fams
    reg = CollectorRegistry()
    reg.register(_Fixed())
    return generate_latest(reg)
