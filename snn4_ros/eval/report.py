"""The replay report: ``report.json``, a self-contained ``report.html`` and an output bag.

The HTML page embeds its plots as PNG data URIs and uses no script or stylesheet from the
network, so it opens offline (on a robot, in a CI artifact). The output bag (MCAP) holds the
decisions (``/snn4/gesture``), tracks (``/snn4/tracks``), commands (``/cmd_vel``) and, with
labels, the ground truth (``/snn4/ground_truth``) on the recording's clock, for Foxglove or
rviz next to the input bag.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from .inprocess import ReplayTrace


# a timeline figure per recording, up to this many (a folder of 100 N-MNIST samples would
# make the page tens of MB); the page says when some are left out
MAX_TIMELINES = 12


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plots(metrics: dict, traces: list[ReplayTrace]) -> list[tuple[str, str]]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    classes = traces[0].classes
    if metrics.get("labelled"):
        conf = np.asarray(metrics["confusion"])
        fig, ax = plt.subplots(figsize=(7, 6))
        ax.imshow(conf, cmap="Blues")
        ax.set_xticks(range(conf.shape[1]), metrics["confusion_columns"], rotation=60,
                      ha="right", fontsize=8)
        ax.set_yticks(range(conf.shape[0]), classes, fontsize=8)
        for (i, j), v in np.ndenumerate(conf):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                        color="white" if v > conf.max() / 2 else "black")
        ax.set_xlabel("majority decision")
        ax.set_ylabel("label")
        ax.set_title(f"Confusion over {metrics['intervals']} intervals "
                     f"(accuracy {metrics['accuracy']:.3f})")
        out.append(("Confusion matrix", _png(fig)))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    total = np.concatenate([t.stage_ms.get("total", np.zeros(0)) for t in traces])
    if len(total):
        axes[0].hist(total, bins=50, color="tab:blue")
        axes[0].axvline(np.percentile(total, 99), color="k", ls="--", label="p99")
        axes[0].legend()
    axes[0].set_xlabel("packet -> decision + command (ms, replay host)")
    axes[0].set_ylabel("packets")
    onset = [r["onset_latency_ms"] for r in metrics.get("interval_results", [])
             if r["onset_latency_ms"] is not None]
    if onset:
        axes[1].hist(onset, bins=30, color="tab:green")
        axes[1].set_xlabel("gesture onset -> first confident correct decision (ms)")
        axes[1].set_ylabel("intervals")
    else:
        stages = metrics["stage_latency_ms"]
        names = [k for k in ("decode", "windowing", "snn", "bridge_head", "controller")
                 if k in stages]
        axes[1].bar(names, [stages[k]["p50"] for k in names], color="tab:gray", label="p50")
        axes[1].bar(names, [stages[k]["p99"] - stages[k]["p50"] for k in names],
                    bottom=[stages[k]["p50"] for k in names], color="tab:orange", label="p99")
        axes[1].set_ylabel("ms per packet / bin")
        axes[1].legend()
    out.append(("Latency", _png(fig)))
    if metrics.get("tradeoff"):
        out.append(("False commands vs recognition (controller settings)",
                    _png(tradeoff_figure(metrics["tradeoff"], metrics.get("controller")))))
    for tr in traces[:MAX_TIMELINES]:
        if not len(tr.dec_t) and not len(tr.packet_t):
            continue
        t0 = tr.t_first_ns
        fig, axes = plt.subplots(3, 1, figsize=(11, 7.5), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 1.3, 1.3]})
        ax = axes[0]
        cmap = plt.get_cmap("tab20")
        for iv in tr.labels:
            ax.axvspan((iv.start_ns - t0) / 1e9, (iv.end_ns - t0) / 1e9,
                       color=cmap(classes.index(iv.cls) % 20), alpha=0.18, lw=0)
            ax.text((iv.start_ns - t0) / 1e9, 1.02, iv.cls, fontsize=7, rotation=30,
                    transform=ax.get_xaxis_transform())
        td = (tr.dec_t - t0) / 1e9
        for c in range(len(classes)):
            if len(td) and tr.dec_probs[:, c].max() > 0.2:
                ax.plot(td, tr.dec_probs[:, c], color=cmap(c % 20), lw=1, label=classes[c])
        ax.set_ylabel("class probability")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=7, ncol=4, loc="lower right")
        ax.set_title(Path(tr.source).name + (" (ground truth shaded)" if tr.labels else ""),
                     pad=34 if tr.labels else 6, loc="left")
        ax = axes[1]
        if len(tr.packet_t):
            edges = np.arange(tr.t_first_ns, tr.t_last_ns + 100_000_001, 100_000_000)
            counts, _ = np.histogram(tr.packet_t, edges, weights=tr.packet_events)
            ax.step((edges[:-1] - t0) / 1e9, counts / 0.1, where="post", color="tab:purple")
        ax.set_ylabel("events/s")
        ax = axes[2]
        tc = (tr.cmd_t - t0) / 1e9
        ax.step(tc, tr.cmd_lin, where="post", label="linear (m/s)")
        ax.step(tc, tr.cmd_ang, where="post", label="angular (rad/s)")
        bad = np.array([s in ("stale", "fault", "estop") for s in tr.cmd_state])
        if bad.any():
            ax.fill_between(tc, -1, 1, where=bad, color="tab:red", alpha=0.12, step="post",
                            label="stale/fault/e-stop")
        ax.set_ylabel("cmd_vel")
        ax.set_xlabel("recording time (s)")
        ax.legend(fontsize=7, loc="upper right")
        out.append((f"Timeline: {Path(tr.source).name}", _png(fig)))
    return out


def tradeoff_figure(points: list[dict], current: dict | None = None):
    """False command episodes per minute on the no-gesture recordings vs positive clips on
    which the controller issued the right command, one point per controller setting."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    n = max(p["clips"] for p in points) or 1
    x = [p["false_per_min_worst"] for p in points]
    y = [100 * p["recognised"] / n for p in points]
    conf = [p["controller"]["min_confidence"] for p in points]
    sc = ax.scatter(x, y, c=conf, cmap="viridis", s=28)
    fig.colorbar(sc, ax=ax, label="min_confidence")
    cur = [i for i, p in enumerate(points) if current and all(
        current.get(k) == v for k, v in p["controller"].items())]
    for i in cur:
        ax.scatter([x[i]], [y[i]], s=160, facecolors="none", edgecolors="red", lw=2,
                   label="this replay's controller")
    ax.axvline(1.0, color="k", ls=":", lw=1, label="1 false command / min")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("false command episodes / min (worst no-gesture recording)")
    ax.set_ylabel(f"positive clips commanded (%, n={n}; 1 clip = {100 / n:.1f} pts)")
    ax.set_title("Trade-off over the controller's agreement and confidence thresholds")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def _table(rows: list[tuple[str, object]]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:,.4g}"
        if isinstance(v, int):
            return f"{v:,}"
        return html.escape(str(v))
    return "<table>" + "".join(f"<tr><th>{html.escape(k)}</th><td>{fmt(v)}</td></tr>"
                               for k, v in rows if v is not None) + "</table>"


def write_html(path: Path, metrics: dict, traces: list[ReplayTrace]) -> None:
    m = metrics
    head = [("recordings", ", ".join(Path(r).name for r in m["recordings"])),
            ("mode", m["mode"]), ("model", f"{m['model'].get('preset')} "
                                  f"({m['model'].get('bin_us', 0) // 1000} ms bins)"),
            ("events", m["events"]), ("duration (s)", m["duration_s"]),
            ("real-time factor", m["real_time_factor"]),
            ("sustained events/s", m["events_per_s_sustained"]),
            ("decisions", m["decisions"]), ("non-zero commands", m["commands_nonzero"]),
            ("skipped messages", m["skipped_messages"])]
    if m.get("labelled"):
        head += [("accuracy (majority per interval)", m["accuracy"]),
                 ("first-decision accuracy", m["first_decision_accuracy"]),
                 ("per-bin accuracy", m["bin_accuracy"]),
                 ("onset latency p50 (ms)", m["onset_latency_ms_p50"]),
                 ("false commands / min", m["false_commands_per_min"]),
                 ("wrong-action commands / min", m["wrong_commands_per_min"])]
    if m.get("unlabelled_recordings"):
        head += [("command episodes / min, unlabelled recordings (pooled)",
                  m["unlabelled_episodes_per_min"]),
                 ("command episodes / min, worst unlabelled recording",
                  m["unlabelled_episodes_per_min_worst"])]
    head += [("fraction of command ticks moving", m.get("moving_fraction"))]
    if len(traces) > MAX_TIMELINES:
        head += [("timelines", f"the first {MAX_TIMELINES} of {len(traces)} recordings "
                               "(every recording's figures are in report.json)")]
    e = m["energy_estimate"]
    head += [("synops per decision (mean)", m["synops_per_decision_mean"])]
    if e.get("applicable"):
        head += [("energy estimate per decision, Loihi (uJ)", e["snn_loihi_uj_per_decision"]),
                 ("energy estimate per decision, int8 ANN (uJ)", e["ann_int8_uj_per_decision"]),
                 ("energy estimate per decision, fp32 ANN (uJ)", e["ann_fp32_uj_per_decision"]),
                 ("energy estimate, Loihi (uJ/s)", e["snn_loihi_uj_per_s"]),
                 ("energy estimate, int8 / fp32 ANN (uJ/s)",
                  f"{e['ann_int8_uj_per_s']:.2f} / {e['ann_fp32_uj_per_s']:.2f}")]
    else:
        head += [("energy estimate", e["why"])]
    stages = "".join(
        f"<tr><th>{k}</th>" + "".join(f"<td>{v[q]:.3f}</td>" if v[q] is not None else "<td>-</td>"
                                      for q in ("p50", "p90", "p99", "mean")) + "</tr>"
        for k, v in m["stage_latency_ms"].items())
    per_class = ""
    if m.get("labelled"):
        f3 = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        per_class = ("<h2>Per class (majority per interval)</h2><table><tr><th>class</th>"
                     "<th>n</th><th>recall</th><th>precision</th></tr>"
                     + "".join(f"<tr><th>{html.escape(c)}</th><td>{v['support']}</td>"
                               f"<td>{f3(v['recall'])}</td><td>{f3(v['precision'])}</td></tr>"
                               for c, v in m["per_class"].items()) + "</table>")
    per_rec = ("<h2>Commands per recording</h2><p class='note'>On a recording of a scene "
               "without a command gesture every episode is a false command.</p><table><tr>"
               "<th>recording</th><th>labelled</th><th>s</th><th>episodes</th><th>/ min</th>"
               "<th>ticks moving</th></tr>"
               + "".join(f"<tr><th>{html.escape(Path(r['recording']).name)}</th>"
                         f"<td>{'yes' if r['labelled'] else 'no'}</td>"
                         f"<td>{r['duration_s']:.2f}</td><td>{r['episodes']}</td>"
                         f"<td>{r['episodes_per_min']:.2f}</td>"
                         f"<td>{100 * r['moving_fraction']:.1f} %</td></tr>"
                         for r in m.get("per_recording", [])) + "</table>")
    per_class = per_rec + per_class
    figs = "".join(f"<h2>{html.escape(t)}</h2><img src='{src}' alt='{html.escape(t)}'>"
                   for t, src in _plots(m, traces))
    path.write_text(f"""<!doctype html><html><head><meta charset="utf-8">
<title>snn4 replay report</title><style>
body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}
th,td{{padding:3px 10px;border-bottom:1px solid #ddd;text-align:left}}
th{{font-weight:600}} img{{max-width:100%}} .note{{color:#666;font-size:.9em}}
</style></head><body>
<h1>snn4 replay report</h1>
{_table(head)}
<p class="note">{html.escape(e.get('note') or e.get('why', ''))}. Definitions of every figure: snn4_ros/eval/metrics.py.</p>
<h2>Per-stage latency (ms)</h2>
<table><tr><th>stage</th><th>p50</th><th>p90</th><th>p99</th><th>mean</th></tr>{stages}</table>
{per_class}{figs}
</body></html>
""")


def write_output_bag(path: Path, tr: ReplayTrace) -> None:
    """Decisions, tracks, commands (and ground truth) as a ROS 2 MCAP bag."""
    from ..events.bags import BagWriter, typestore

    ts = typestore()
    T = ts.types
    Header, Time = T["std_msgs/msg/Header"], T["builtin_interfaces/msg/Time"]
    Hyp, Cls = T["vision_msgs/msg/ObjectHypothesis"], T["vision_msgs/msg/Classification"]
    V3, Twist = T["geometry_msgs/msg/Vector3"], T["geometry_msgs/msg/Twist"]

    def header(t_ns):
        return Header(stamp=Time(sec=int(t_ns) // 10**9, nanosec=int(t_ns) % 10**9),
                      frame_id="event_camera")

    def tracks(t_ns, x, y, vis):
        Pose, PoseCov = T["geometry_msgs/msg/Pose"], T["geometry_msgs/msg/PoseWithCovariance"]
        Point, Quat = T["geometry_msgs/msg/Point"], T["geometry_msgs/msg/Quaternion"]
        hyp = T["vision_msgs/msg/ObjectHypothesisWithPose"](
            hypothesis=Hyp(class_id="target", score=float(vis)),
            pose=PoseCov(pose=Pose(position=Point(x=float(x), y=float(y), z=0.0),
                                   orientation=Quat(x=0.0, y=0.0, z=0.0, w=1.0)),
                         covariance=np.zeros(36)))
        bbox = T["vision_msgs/msg/BoundingBox2D"](
            center=T["vision_msgs/msg/Pose2D"](position=T["vision_msgs/msg/Point2D"](
                x=float(x), y=float(y)), theta=0.0), size_x=10.0, size_y=10.0)
        det = T["vision_msgs/msg/Detection2D"](header=header(t_ns), results=[hyp], bbox=bbox,
                                               id="target")
        return T["vision_msgs/msg/Detection2DArray"](header=header(t_ns), detections=[det])

    with BagWriter(path, "mcap") as bag:
        order = np.argsort(-tr.dec_probs, axis=1) if len(tr.dec_t) else []
        for i, t in enumerate(tr.dec_t):
            res = [Hyp(class_id=tr.classes[j], score=float(tr.dec_probs[i, j])) for j in order[i]]
            bag.write("/snn4/gesture", "vision_msgs/msg/Classification",
                      Cls(header=header(t), results=res), int(t))
            if np.isfinite(tr.dec_pos[i, 0]):
                bag.write("/snn4/tracks", "vision_msgs/msg/Detection2DArray",
                          tracks(t, *tr.dec_pos[i], tr.dec_vis[i]), int(t))
        for t, lin, ang in zip(tr.cmd_t, tr.cmd_lin, tr.cmd_ang):
            bag.write("/cmd_vel", "geometry_msgs/msg/Twist",
                      Twist(linear=V3(x=float(lin), y=0.0, z=0.0),
                            angular=V3(x=0.0, y=0.0, z=float(ang))), int(t))
        for iv in tr.labels:
            bag.write("/snn4/ground_truth", "vision_msgs/msg/Classification",
                      Cls(header=header(iv.start_ns), results=[Hyp(class_id=iv.cls, score=1.0)]),
                      iv.start_ns)
            bag.write("/snn4/ground_truth", "vision_msgs/msg/Classification",
                      Cls(header=header(iv.end_ns), results=[]), iv.end_ns)


def write_report(out_dir: str | Path, metrics: dict, traces: list[ReplayTrace]) -> dict:
    """Writes report.json, report.html and one decisions bag per recording; returns paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bags = []
    for tr in traces:
        name = "decisions" if len(traces) == 1 else f"{Path(tr.source).name}.decisions"
        p = out / name
        if p.exists():
            import shutil
            shutil.rmtree(p)
        write_output_bag(p, tr)
        bags.append(str(p))
    metrics = dict(metrics, output_bags=bags)
    (out / "report.json").write_text(json.dumps(metrics, indent=1, default=_json_default))
    write_html(out / "report.html", metrics, traces)
    return {"json": str(out / "report.json"), "html": str(out / "report.html"), "bags": bags}


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
