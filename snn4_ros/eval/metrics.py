"""Figures of a replay: throughput, latency, decisions, commands and, with labels, accuracy.

Definitions (they are the report's, stated once here):

* a *decision* is one output of the streaming network (one per closed time bin), stamped
  with the header stamp of the packet that closed the bin -- what the node publishes;
* ``accuracy`` -- per labelled interval, the majority top-1 class of its decisions;
  ``first_decision_accuracy`` -- the first confident decision (top probability >=
  ``threshold``) of the interval that is not the previous interval's class carried over
  (a stream has no reset: until the model's window has passed, the decision of the gesture
  before is not this interval's); an interval with no such decision counts as wrong;
* ``onset_latency_ms`` -- interval start to the first confident correct decision;
  ``onset_to_command_ms`` -- interval start to the first non-zero command of the interval's
  action (what a person waits for; intervals whose gesture commands nothing are left out);
* a *command episode* is a maximal run of non-zero commands of one action;
  ``false_commands_per_min`` counts episodes starting outside every labelled interval,
  per minute of labelled recording; ``wrong_commands_per_min`` those starting inside an
  interval whose gesture maps to another action;
* ``real_time_factor`` -- recording duration / replay wall time (> 1: faster than real time);
* per recording (``per_recording``, labelled or not): command episodes, episodes per minute
  of recording and the fraction of command ticks that move the robot; on a recording of a
  scene without any command gesture every episode is a false command, so
  ``unlabelled_episodes_per_min`` (pooled over the unlabelled recordings) and the worst
  recording's rate are the false-command figures of such recordings.
"""

from __future__ import annotations

import numpy as np

from ..events.codecs import DecodeStats
from ..runtime.control import ControllerConfig
from ..models.energy import energy_estimate
from .inprocess import ReplayTrace


def _pct(a, qs=(50, 90, 99)) -> dict:
    a = np.asarray(a, float)
    a = a[np.isfinite(a)]
    if not len(a):
        return {f"p{q}": None for q in qs} | {"mean": None, "n": 0}
    return {f"p{q}": float(np.percentile(a, q)) for q in qs} | {"mean": float(a.mean()),
                                                                "n": int(len(a))}


def _winds_down(t: np.ndarray, lin: np.ndarray, ang: np.ndarray, nz: np.ndarray, i: int) -> bool:
    """Whether the ticks from ``i`` on only bring the robot to a standstill: the speed falls
    on every tick (the acceleration-limited ramp to a zero target), no axis grows or changes
    sign, until a zero command -- whatever actions those ticks carry (the hold running out,
    then a confident ``none``). A new action that drives somewhere (faster, the other way, or
    on at a lower speed, where the ramp levels off) is not a wind-down."""
    j = i
    while j < len(nz) and nz[j]:
        fell = False
        for v in (lin, ang):
            if v[j] != 0.0 and (v[j] * v[j - 1] <= 0 or abs(v[j]) > abs(v[j - 1])):
                return False
            fell |= abs(v[j]) < abs(v[j - 1])
        if not fell and t[j] > t[j - 1]:          # time passed, the speed did not fall
            return False
        j += 1
    return j < len(nz)


def command_episodes(tr: ReplayTrace) -> list[tuple[int, int, str | None]]:
    """(start_ns, end_ns, action) of every motion: a run of non-zero commands, named by the
    action that started it.

    When an action ends (its hold runs out, or a confident ``none`` abstains) the controller
    ramps the speed down under its acceleration limit, and those ticks carry the new state's
    action (None, ``none``): they are the end of the same motion, not a second command. A
    change to another action that drives the robot on starts a new episode."""
    lin, ang = np.asarray(tr.cmd_lin, float), np.asarray(tr.cmd_ang, float)
    nz = (lin != 0) | (ang != 0)
    act = tr.cmd_action
    out, start = [], None
    for i, z in enumerate(nz):
        if start is not None and (not z or (act[i] != act[i - 1]
                                            and not _winds_down(tr.cmd_t, lin, ang, nz, i))):
            out.append((int(tr.cmd_t[start]), int(tr.cmd_t[i]), act[start]))
            start = None
        if z and start is None:
            start = i
    if start is not None:
        out.append((int(tr.cmd_t[start]), int(tr.cmd_t[-1]), act[start]))
    return out


def recording_command_figures(tr: ReplayTrace) -> dict:
    """Command episodes of one recording, per minute, and the fraction of ticks moving."""
    eps = command_episodes(tr)
    minutes = tr.duration_s / 60
    moving = (tr.cmd_lin != 0) | (tr.cmd_ang != 0)
    actions: dict[str, int] = {}
    for _, _, a in eps:
        actions[str(a)] = actions.get(str(a), 0) + 1
    return {"recording": tr.source, "labelled": bool(tr.labels),
            "duration_s": tr.duration_s, "decisions": int(len(tr.dec_t)),
            "episodes": len(eps),
            "episodes_per_min": len(eps) / minutes if minutes > 0 else 0.0,
            "moving_fraction": float(moving.mean()) if len(moving) else 0.0,
            "episode_actions": actions}


def interval_results(tr: ReplayTrace, threshold: float) -> list[dict]:
    """One record per labelled interval: majority, first decision, onset latency."""
    classes = tr.classes
    top = tr.dec_top
    conf = tr.dec_probs.max(1) if len(top) else np.zeros(0)
    bin_ns = tr.model.get("bin_us", 0) * 1000
    window_ns = tr.model.get("window", 0) * bin_ns
    out = []
    prev_cls = None
    for iv in tr.labels:
        m = (tr.dec_t >= iv.start_ns) & (tr.dec_t < iv.end_ns)
        idx = np.flatnonzero(m)
        truth = classes.index(iv.cls)
        rec = {"start_ns": iv.start_ns, "end_ns": iv.end_ns, "class": iv.cls,
               "decisions": int(len(idx)), "majority": None, "first": None,
               "onset_latency_ms": None, "bin_correct": 0}
        if len(idx):
            counts = np.bincount(top[idx], minlength=len(classes))
            rec["majority"] = classes[int(counts.argmax())]
            rec["bin_correct"] = int(counts[truth])
            for i in idx:
                carried = (prev_cls is not None and top[i] == prev_cls and prev_cls != truth
                           and tr.dec_t[i] - iv.start_ns < window_ns)
                if conf[i] >= threshold and not carried:
                    rec["first"] = classes[int(top[i])]
                    break
            hit = idx[(top[idx] == truth) & (conf[idx] >= threshold)]
            if len(hit):
                rec["onset_latency_ms"] = (int(tr.dec_t[hit[0]]) - iv.start_ns) / 1e6
        prev_cls = truth
        out.append(rec)
    return out


def compute_metrics(traces: list[ReplayTrace], threshold: float = 0.9,
                    controller: dict | None = None) -> dict:
    """The figures of ``report.json`` over one or several replays (pooled)."""
    # without explicit settings: the model card's validated controller, as replay used it
    controller = controller or traces[0].model.get("controller") or {}
    cfg = ControllerConfig.from_dict(controller)
    classes = traces[0].classes
    events = sum(t.events for t in traces)
    duration = sum(t.duration_s for t in traces)
    wall = sum(t.wall_s for t in traces)
    decisions = sum(len(t.dec_t) for t in traces)
    cmds = sum(len(t.cmd_t) for t in traces)
    nonzero = sum(int(((t.cmd_lin != 0) | (t.cmd_ang != 0)).sum()) for t in traces)
    stages = {}
    for name in {k for t in traces for k in t.stage_ms}:
        stages[name] = _pct(np.concatenate([t.stage_ms.get(name, np.zeros(0)) for t in traces]))
    synops = np.concatenate([t.dec_synops for t in traces if t.dec_synops is not None]) \
        if decisions else np.zeros(0)
    model = traces[0].model
    macs = model.get("macs_per_step", 0)
    bins_per_s = decisions / duration if duration else 0.0
    # a bin without its spike counts is NaN (via ROS: a progress record lost, which the
    # trace's errors report): no numpy warning for an all-NaN mean, 0 where nothing counted
    synops = synops[np.isfinite(synops)] if len(synops) else synops
    syn_mean = float(synops.mean()) if len(synops) else 0.0
    state_counts: dict[str, int] = {}
    for t in traces:
        for s in t.cmd_state:
            state_counts[s] = state_counts.get(s, 0) + 1
    m: dict = {
        "recordings": [t.source for t in traces],
        "mode": traces[0].mode,
        "events": int(events),
        "messages": int(sum(t.log.messages for t in traces)),
        "skipped_messages": int(sum(t.log.skipped_messages for t in traces)),
        "decode_skips": {k: int(sum(t.decode.get(k, 0) + t.log.file_skips.get(k, 0)
                                    for t in traces)) for k in DecodeStats.SKIP_FIELDS},
        "geometry_errors": int(sum(t.geometry_errors for t in traces)),
        "time_jumps": int(sum(t.time_jumps for t in traces)),
        "errors": [e for t in traces for e in t.log.errors][:20],
        "duration_s": duration,
        "wall_s": wall,
        "real_time_factor": duration / wall if wall else None,
        "events_per_s_sustained": events / wall if wall else None,
        "decisions": int(decisions),
        "decision_classes": {c: int(sum(int((t.dec_top == i).sum()) for t in traces))
                             for i, c in enumerate(classes)},
        "commands": int(cmds),
        "commands_nonzero": int(nonzero),
        "command_states": state_counts,
        "command_episodes": int(sum(len(command_episodes(t)) for t in traces)),
        "moving_fraction": nonzero / cmds if cmds else 0.0,
        "per_recording": [recording_command_figures(t) for t in traces],
        "stage_latency_ms": stages,
        "synops_per_decision_mean": syn_mean,
        "energy_estimate": energy_estimate(bool(model.get("loihi_mappable")),
                                           model.get("loihi_why_not", ""), syn_mean, macs,
                                           per="decision", rate_hz=bins_per_s),
        "model": model,
        "controller": {k: getattr(cfg, k) for k in ("min_confidence", "debounce", "hold_s",
                                                     "deadman_s")},
        "threshold": threshold,
        "labelled": any(t.labels for t in traces),
    }
    unl = [r for r in m["per_recording"] if not r["labelled"]]
    unl_min = sum(r["duration_s"] for r in unl) / 60
    m["unlabelled_recordings"] = len(unl)
    m["unlabelled_episodes_per_min"] = (sum(r["episodes"] for r in unl) / unl_min
                                        if unl_min > 0 else None)
    m["unlabelled_episodes_per_min_worst"] = max((r["episodes_per_min"] for r in unl),
                                                 default=None)
    m["controller"]["agree_window"] = cfg.agree_window
    if not m["labelled"]:
        return m
    recs = [r for t in traces for r in interval_results(t, threshold)]
    C = len(classes)
    conf = np.zeros((C, C + 1), np.int64)          # last column: no decision at all
    for r in recs:
        pred = classes.index(r["majority"]) if r["majority"] is not None else C
        conf[classes.index(r["class"]), pred] += 1
    n = len(recs)
    per_class = {}
    for c, name in enumerate(classes):
        tp, support, predicted = int(conf[c, c]), int(conf[c].sum()), int(conf[:, c].sum())
        per_class[name] = {"support": support,
                           "recall": tp / support if support else None,
                           "precision": tp / predicted if predicted else None}
    eps_false = eps_wrong = 0
    labelled = [t for t in traces if t.labels]
    for t in labelled:
        for a, _, action in command_episodes(t):
            iv = next((iv for iv in t.labels if iv.contains(a)), None)
            if iv is None:
                eps_false += 1
            elif action != iv.cls and _action_of(cfg, action) != _action_of(cfg, iv.cls):
                eps_wrong += 1
    minutes = sum(t.duration_s for t in labelled) / 60 or float("nan")
    lat = [r["onset_latency_ms"] for r in recs]
    cmd_lat = []
    for t in labelled:
        eps = command_episodes(t)
        for iv in t.labels:
            want = _action_of(cfg, iv.cls)
            if want is None or want == (0.0, 0.0, False):
                continue
            hit = next((a for a, _, action in eps if iv.start_ns <= a < iv.end_ns
                        and _action_of(cfg, action) == want), None)
            cmd_lat.append(None if hit is None else (hit - iv.start_ns) / 1e6)
    in_bins = sum(r["decisions"] for r in recs)
    m.update({
        "intervals": n,
        "labels_skipped": int(sum(t.labels_skipped for t in traces)),
        "accuracy": float(np.trace(conf[:, :C]) / n) if n else None,
        "first_decision_accuracy": (sum(r["first"] == r["class"] for r in recs) / n) if n
        else None,
        "bin_accuracy": sum(r["bin_correct"] for r in recs) / in_bins if in_bins else None,
        "intervals_without_decision": int(conf[:, C].sum()),
        "onset_latency_ms_p50": _pct(lat)["p50"],
        "onset_latency_ms": _pct(lat),
        "intervals_never_correct": int(sum(v is None for v in lat)),
        "onset_to_command_ms_p50": _pct([v for v in cmd_lat if v is not None])["p50"],
        "onset_to_command_ms": _pct([v for v in cmd_lat if v is not None]),
        "intervals_without_command": int(sum(v is None for v in cmd_lat)),
        "false_commands_per_min": eps_false / minutes,
        "false_command_episodes": eps_false,
        "wrong_commands_per_min": eps_wrong / minutes,
        "wrong_command_episodes": eps_wrong,
        "per_class": per_class,
        "confusion": conf.tolist(),
        "confusion_columns": classes + ["(no decision)"],
        "classes": classes,
        "interval_results": recs,
    })
    return m


def _action_of(cfg: ControllerConfig, cls: str | None):
    a = cfg.actions.get(cls) if cls else None
    return None if a is None else (a.linear, a.angular, a.follow)
