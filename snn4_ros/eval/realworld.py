"""The real-world recipe: fine-tune on real positives + real negatives + synthetic data, with
cross-validation, and the figures that decide whether a robot may use the model.

Why cross-validated: the only real gesture clips are 12 right-hand waves of one session. A
model fine-tuned on them is scored on clips it never saw: the clips and the negative
recordings are split into ``folds`` groups; each fold's model is trained on the other groups
and scored on its own (positives: sliding-window majority and "did the controller issue the
command"; negatives: command episodes per minute through the live replay path). Recordings
listed as ``heldout_negatives`` (the Prophesee RAW file, N-MNIST) are never trained on. The
shipped model is then trained on everything with the same recipe; its figures on the
training recordings are not evidence and are reported apart.

Every decision of every held-out replay is kept, so the controller's thresholds can be swept
afterwards (``tradeoff``): false commands per minute vs clips recognised.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..runtime.control import ControllerConfig, GestureController
from ..models.datasets import NONE, load_dataset
from ..models.datasets import FrameData
from ..models.finetune import (backbone_spikes, head_features, summarize_windowed,
                               train_readout, widen_classes, windowed_scores)
from ..models.hybridnet import HybridNet
from ..models.realdata import LabelledClip, concat, read_labels_csv, recording_windows
from .metrics import command_episodes
from .inprocess import ReplayOptions, ReplayTrace, replay

SHARED = "../shared/data"
TRAIN_NEGATIVES = (f"{SHARED}/aedat2_dvs128/alex_walking_again.aedat",
                   f"{SHARED}/aedat2_dvs128/alex_walking_for_10secs.aedat",
                   f"{SHARED}/aedat2_dvs128/cam255_alex_standing_up.aedat",
                   f"{SHARED}/aedat2_dvs128/cam289_right_clamp_test1.aedat",
                   f"{SHARED}/aedat2_dvs128/neal_walking.aedat",
                   f"{SHARED}/rosbag2/evt3_trigger",
                   f"{SHARED}/rosbag2/libcaer_rollover")
HELDOUT_NEGATIVES = (f"{SHARED}/prophesee/evt3_sample.raw", f"{SHARED}/nmnist_train1k")

# the controller setting the recipe validates with (8 of the last 12 decisions at p >= 0.8,
# 0.48 s); the card's trade-off sweep shows the others
SHIPPED_CONTROLLER = {"min_confidence": 0.8, "debounce": 8, "agree_window": 12}


@dataclass
class RealWorldRecipe:
    init: str = "models/hybridnet_gesture_synth"
    positives: str = f"{SHARED}/aedat4_dvs128"
    negatives: tuple[str, ...] = TRAIN_NEGATIVES
    heldout_negatives: tuple[str, ...] = HELDOUT_NEGATIVES
    synthetic: tuple[str, ...] = ("synthetic-real:12:0", "synthetic:8:3")
    folds: int = 4
    steps: int = 400                  # readout optimisation steps (full batch)
    lr: float = 0.05
    seed: int = 0
    stride_s: float = 0.32            # training windows
    eval_stride_s: float = 0.32       # scoring windows
    positive_repeat: int = 1          # (classes are balanced in the loss anyway)
    controller: dict = field(default_factory=lambda: dict(SHIPPED_CONTROLLER))

    def to_dict(self) -> dict:
        return asdict(self)


def assign_folds(n: int, k: int, seed: int) -> np.ndarray:
    """A seeded balanced assignment of n items to k folds."""
    order = np.random.default_rng(seed).permutation(n)
    f = np.empty(n, np.int64)
    f[order] = np.arange(n) % k
    return f


@dataclass
class WindowPool:
    """Every training window once, as frozen-backbone spikes, with the recording it came
    from (``group``): folds select by group, so nothing is computed twice."""

    feats: torch.Tensor           # [N, head_hidden]: the classifier's input
    labels: torch.Tensor
    targets: torch.Tensor
    groups: list[str]

    def select(self, keep: set[str] | None = None, drop: set[str] = frozenset(),
               repeat: dict[str, int] | None = None) -> np.ndarray:
        idx = []
        for i, g in enumerate(self.groups):
            if g in drop or (keep is not None and g not in keep):
                continue
            idx.extend([i] * (repeat or {}).get(g, 1))
        return np.asarray(idx, np.int64)


def build_pool(model: HybridNet, clips: list[LabelledClip], negatives: list[str],
               recipe: RealWorldRecipe, log=print) -> WindowPool:
    """Windows of the synthetic sets, the positive clips and the negative recordings,
    through the (frozen) backbone of ``model`` (which already has the ``none`` class)."""
    cfg = model.cfg
    parts: list[tuple[str, FrameData]] = [("synthetic", load_dataset(s, cfg))
                                          for s in recipe.synthetic]
    for c in clips:
        parts.append((c.name, recording_windows(c.path, cfg, c.label, recipe.stride_s,
                                                c.start_s, c.end_s)))
    for p in negatives:
        # short recordings: denser windows, so that each gives a few examples
        stride = recipe.stride_s / 4 if _short(p) else recipe.stride_s
        parts.append((Path(p).name, recording_windows(p, cfg, NONE, stride)))
    data = concat([d for _, d in parts])
    groups = [g for g, d in parts for _ in range(len(d))]
    t0 = time.time()
    spikes = backbone_spikes(model, data.frames)
    feats = head_features(model, spikes)
    log(f"window pool: {len(data)} windows ({sum(g == 'synthetic' for g in groups)} synthetic, "
        f"{sum(len(d) for g, d in parts if g in {c.name for c in clips})} from "
        f"{len(clips)} positive clips, {sum(len(d) for g, d in parts[len(recipe.synthetic) + len(clips):])}"
        f" from {len(negatives)} negative recordings); backbone spikes in "
        f"{time.time() - t0:.0f} s")
    n_syn = sum(g == "synthetic" for g in groups)
    # synthetic windows come in blocks of one clip per class: blocks are spread over folds
    ncls = len(cfg.classes)
    groups = [f"synthetic#{i // ncls % max(recipe.folds, 1)}" if g == "synthetic" else g
              for i, g in enumerate(groups)]
    del n_syn
    return WindowPool(feats, data.labels, data.targets, groups)


def _short(path: str) -> bool:
    return "rosbag2" in path


def finetune(base: HybridNet, pool: WindowPool, idx: np.ndarray, recipe: RealWorldRecipe,
             log=None) -> tuple[HybridNet, dict]:
    """A copy of ``base`` (with ``none``) whose classifier is fitted on the windows ``idx``."""
    import copy

    model = copy.deepcopy(base)
    hist = train_readout(model, pool.feats[idx], pool.labels[idx], steps=recipe.steps,
                         lr=recipe.lr, seed=recipe.seed)
    if log:
        log(f"  readout: {len(idx)} windows, train accuracy {hist['train_acc']:.3f}")
    return model, hist


# ---------------------------------------------------------------- decisions -> commands
def decision_log(tr: ReplayTrace) -> dict:
    """What the controller needs to be re-run offline: decision stamps and scores."""
    return {"source": tr.source, "dec_t": tr.dec_t, "probs": tr.dec_probs,
            "pos": tr.dec_pos, "vis": tr.dec_vis,
            "t_first": tr.t_first_ns, "t_last": tr.t_last_ns, "classes": tr.classes,
            "duration_s": tr.duration_s}


def control_trace(log: dict, controller: dict, tick_hz: float = 50.0) -> ReplayTrace:
    """The replay's controller calls (ticks on the recording's clock, a command right after
    each decision, then the track) for another controller setting: a trace with the commands
    (``cmd_*``) the replay would have recorded with it -- the network's decisions do not
    depend on the controller, so one replay serves every setting (tested equal)."""
    ctrl = GestureController(ControllerConfig.from_dict(controller))
    classes = log["classes"]
    period = int(1e9 / tick_hz)
    tick = int(log["t_first"])
    cmd_t, lin, ang, action, state = [], [], [], [], []

    def rec(t, c):
        cmd_t.append(t), lin.append(c.linear), ang.append(c.angular), action.append(c.action)
        state.append(c.state)

    probs = log["probs"]
    pos, vis = log.get("pos"), log.get("vis")
    for i, (t, p) in enumerate(zip(log["dec_t"], probs)):
        while tick <= t:
            rec(tick, ctrl.command(tick * 1e-9))
            tick += period
        top = int(np.argmax(p))
        ctrl.on_decision(t * 1e-9, classes[top], float(p[top]), [float(v) for v in p])
        rec(int(t), ctrl.command(t * 1e-9))
        if pos is not None and len(pos) > i and np.isfinite(pos[i]).all():
            ctrl.on_track(t * 1e-9, float(pos[i][0]), float(pos[i][1]), float(vis[i]))
    while tick <= log["t_last"]:
        rec(tick, ctrl.command(tick * 1e-9))
        tick += period
    tr = ReplayTrace(log["source"], classes)
    tr.cmd_t, tr.cmd_lin, tr.cmd_ang = (np.asarray(cmd_t, np.int64), np.asarray(lin, float),
                                        np.asarray(ang, float))
    tr.cmd_action, tr.cmd_state = action, state
    return tr


def retrace(tr: ReplayTrace, controller: dict) -> ReplayTrace:
    """A copy of replay trace ``tr`` with the commands another controller setting gives on
    the same decisions (``control_trace``)."""
    import copy

    out = copy.copy(tr)
    c = control_trace(decision_log(tr), controller)
    out.cmd_t, out.cmd_lin, out.cmd_ang = c.cmd_t, c.cmd_lin, c.cmd_ang
    out.cmd_action, out.cmd_state = c.cmd_action, c.cmd_state
    return out


def simulate_controller(log: dict, controller: dict, tick_hz: float = 50.0) -> dict:
    """``control_trace``'s command episodes and moving fraction."""
    tr = control_trace(log, controller, tick_hz)
    eps = command_episodes(tr)
    moving = (tr.cmd_lin != 0) | (tr.cmd_ang != 0)
    return {"episodes": eps, "moving_fraction": float(moving.mean()) if len(moving) else 0.0}


def negative_figures(log: dict, controller: dict) -> dict:
    sim = simulate_controller(log, controller)
    minutes = log["duration_s"] / 60
    return {"recording": log["source"], "duration_s": round(log["duration_s"], 3),
            "decisions": int(len(log["dec_t"])), "episodes": len(sim["episodes"]),
            "episodes_per_min": len(sim["episodes"]) / minutes if minutes > 0 else 0.0,
            "moving_fraction": sim["moving_fraction"],
            "actions": sorted({str(e[2]) for e in sim["episodes"]})}


def positive_figures(log: dict, clip: LabelledClip, controller: dict) -> dict:
    """Did the controller issue the clip's command inside the labelled span?"""
    sim = simulate_controller(log, controller)
    a = log["t_first"] + int((clip.start_s or 0) * 1e9)
    b = log["t_last"] if clip.end_s is None else log["t_first"] + int(clip.end_s * 1e9)
    inside = [e for e in sim["episodes"] if a <= e[0] <= b]
    right = [e for e in inside if e[2] == clip.label]
    return {"clip": clip.name, "commanded": bool(right),
            "first_command_s": (right[0][0] - log["t_first"]) / 1e9 if right else None,
            "wrong_episodes": len([e for e in inside if e[2] != clip.label])}


def replay_logs(model: HybridNet, paths: list[str], card: dict | None = None) -> list[dict]:
    return [decision_log(replay(p, model, ReplayOptions(), card=card)) for p in paths]


def score_model(model: HybridNet, clips: list[LabelledClip], negatives: list[str],
                recipe: RealWorldRecipe) -> dict:
    """Windowed clip scores, controller recognition and negative episodes of one model."""
    wins = windowed_scores(model, clips, recipe.eval_stride_s)
    pos_logs = replay_logs(model, [str(c.path) for c in clips])
    neg_logs = replay_logs(model, list(negatives))
    return {"windowed": wins,
            "controller_positives": [positive_figures(lg, c, recipe.controller)
                                     for lg, c in zip(pos_logs, clips)],
            "negatives": [negative_figures(lg, recipe.controller) for lg in neg_logs],
            "_pos_logs": pos_logs, "_neg_logs": neg_logs}


def tradeoff(pos: list[tuple[dict, LabelledClip]], neg: list[dict],
             grid: list[dict] | None = None) -> list[dict]:
    """False command episodes per minute (pooled and worst recording) vs clips commanded,
    over a grid of controller settings."""
    if grid is None:
        grid = [{"min_confidence": c, "debounce": k, "agree_window": n}
                for c in (0.5, 0.7, 0.8, 0.9, 0.95)
                for k, n in ((1, 0), (3, 0), (4, 6), (6, 8), (8, 12), (10, 14), (12, 16))]
    minutes = sum(lg["duration_s"] for lg in neg) / 60
    out = []
    for g in grid:
        nf = [negative_figures(lg, g) for lg in neg]
        pf = [positive_figures(lg, c, g) for lg, c in pos]
        out.append({"controller": g,
                    "recognised": sum(p["commanded"] for p in pf), "clips": len(pf),
                    "false_per_min_pooled": sum(n["episodes"] for n in nf) / minutes
                    if minutes else 0.0,
                    "false_per_min_worst": max((n["episodes_per_min"] for n in nf), default=0.0),
                    "false_episodes": sum(n["episodes"] for n in nf)})
    return out


def crossvalidate(recipe: RealWorldRecipe, base: HybridNet, pool: WindowPool,
                  log=print) -> dict:
    clips = read_labels_csv(recipe.positives)
    negs = list(recipe.negatives)
    fp = assign_folds(len(clips), recipe.folds, recipe.seed)
    fn = assign_folds(len(negs), recipe.folds, recipe.seed + 1)
    rep = {c.name: recipe.positive_repeat for c in clips}
    folds, pos_pairs, neg_logs = [], [], []
    for k in range(recipe.folds):
        t0 = time.time()
        te_clips = [c for c, f in zip(clips, fp) if f == k]
        te_negs = [p for p, f in zip(negs, fn) if f == k]
        held = {c.name for c in te_clips} | {Path(p).name for p in te_negs} | {f"synthetic#{k}"}
        log(f"fold {k + 1}/{recipe.folds}: held out {sorted(held)}")
        model, _ = finetune(base, pool, pool.select(drop=held, repeat=rep), recipe)
        syn = pool.select(keep={f"synthetic#{k}"})
        with torch.no_grad():
            pred = model.classifier(pool.feats[syn]).argmax(1)
        syn_right, syn_n = int((pred == pool.labels[syn]).sum()), int(len(syn))
        sc = score_model(model, te_clips, te_negs, recipe)
        sc["synthetic"] = {"right": syn_right, "n": syn_n}
        pos_pairs += list(zip(sc.pop("_pos_logs"), te_clips))
        neg_logs += sc.pop("_neg_logs")
        sc.update(fold=k, held_out=sorted(held), seconds=time.time() - t0)
        s = summarize_windowed(sc["windowed"])
        log(f"  fold {k + 1}: clips {s['clips_right']}/{s['clips']} (windows "
            f"{s['windows_right']}/{s['windows']}), commanded "
            f"{sum(p['commanded'] for p in sc['controller_positives'])}/{len(te_clips)}, "
            f"negatives {[(Path(n['recording']).name, n['episodes']) for n in sc['negatives']]}, "
            f"synthetic {syn_right}/{syn_n}"
            f" ({time.time() - t0:.0f} s)")
        folds.append(sc)
    wins = [w for f in folds for w in f["windowed"]]
    ctrl = [p for f in folds for p in f["controller_positives"]]
    negf = [n for f in folds for n in f["negatives"]]
    sr = sum(f["synthetic"]["right"] for f in folds)
    sn = sum(f["synthetic"]["n"] for f in folds)
    return {"folds": folds, "windowed": summarize_windowed(wins),
            "synthetic": {"right": sr, "n": sn, "accuracy": sr / sn if sn else None},
            "commanded": sum(p["commanded"] for p in ctrl), "clips": len(ctrl),
            "negatives": negf, "tradeoff": tradeoff(pos_pairs, neg_logs),
            "_pos_pairs": pos_pairs, "_neg_logs": neg_logs}


def save_logs(path: str | Path, pos_pairs, neg_logs) -> None:
    """Decision logs of the held-out replays (npz + json index) for later sweeps."""
    arrays, index = {}, []
    for i, (lg, c) in enumerate(pos_pairs):
        arrays[f"p{i}_t"], arrays[f"p{i}_probs"] = lg["dec_t"], lg["probs"]
        arrays[f"p{i}_pos"], arrays[f"p{i}_vis"] = lg["pos"], lg["vis"]
        index.append({"kind": "positive", "key": f"p{i}", "clip": str(c.path), "label": c.label,
                      "start_s": c.start_s, "end_s": c.end_s,
                      **{k: lg[k] for k in ("source", "t_first", "t_last", "duration_s")}})
    for i, lg in enumerate(neg_logs):
        arrays[f"n{i}_t"], arrays[f"n{i}_probs"] = lg["dec_t"], lg["probs"]
        arrays[f"n{i}_pos"], arrays[f"n{i}_vis"] = lg["pos"], lg["vis"]
        index.append({"kind": "negative", "key": f"n{i}",
                      **{k: lg[k] for k in ("source", "t_first", "t_last", "duration_s")}})
    classes = (pos_pairs or [(neg_logs[0], None)])[0][0]["classes"]
    np.savez_compressed(f"{path}.npz", **arrays)
    Path(f"{path}.json").write_text(json.dumps({"classes": classes, "logs": index}, indent=1))


def load_logs(path: str | Path) -> tuple[list, list]:
    meta = json.loads(Path(f"{path}.json").read_text())
    z = np.load(f"{path}.npz")
    pos, neg = [], []
    for e in meta["logs"]:
        lg = {"source": e["source"], "dec_t": z[e["key"] + "_t"], "probs": z[e["key"] + "_probs"],
              "pos": z[e["key"] + "_pos"], "vis": z[e["key"] + "_vis"],
              "t_first": e["t_first"], "t_last": e["t_last"], "duration_s": e["duration_s"],
              "classes": meta["classes"]}
        if e["kind"] == "positive":
            pos.append((lg, LabelledClip(Path(e["clip"]), e["label"], e["start_s"], e["end_s"])))
        else:
            neg.append(lg)
    return pos, neg


def run_recipe(recipe: RealWorldRecipe, out: str | Path, log=print) -> dict:
    """Cross-validate (unless ``folds`` is 0), then train the shipped model on everything,
    score it, and write ``OUT.safetensors`` + card, ``OUT.crossval.json`` and the logs."""
    from ..models import checkpoint

    init, init_card = checkpoint.load(recipe.init)
    base = widen_classes(init, (NONE,))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    clips = read_labels_csv(recipe.positives)
    pool = build_pool(base, clips, list(recipe.negatives), recipe, log)
    cv = None
    if recipe.folds > 1:
        cv = crossvalidate(recipe, base, pool, log)
        save_logs(out.with_name(out.name + ".crossval_logs"), cv.pop("_pos_pairs"),
                  cv.pop("_neg_logs"))
        out.with_name(out.name + ".crossval.json").write_text(json.dumps(cv, indent=1))
    log("final model: all positives and all training negatives")
    idx = pool.select(repeat={c.name: recipe.positive_repeat for c in clips})
    model, hist = finetune(base, pool, idx, recipe, log)
    held = score_model(model, [], list(recipe.heldout_negatives), recipe)
    synth = {"crossvalidated": None if cv is None else cv["synthetic"],
             "sets": list(recipe.synthetic),
             "note": "fresh synthetic windows of the training sets, held out by fold (each "
                     "scored by a fold model that never saw its block of clips); "
                     "bench/realworld.py adds the shipped model on synthetic:30:2"}
    card = {"training": {"recipe": recipe.to_dict(), "samples": int(len(idx)),
                         "how": "everything of the initial model is kept but the gesture "
                                "classifier (one linear layer, + the 'none' row), refitted on "
                                "the pooled head features of the windows "
                                "(models/finetune.py train_readout)",
                         "init": recipe.init, "init_command": init_card.get("command"),
                         "history": hist},
            "controller": recipe.controller,
            "real_training_recordings": {
                "positives": [str(c.path) for c in clips],
                "negatives": list(recipe.negatives),
                "never_trained_on": list(recipe.heldout_negatives)},
            "crossvalidated": None if cv is None else {
                "how": f"{recipe.folds} folds over the 12 positive clips and the "
                       f"{len(recipe.negatives)} training negative recordings (seed "
                       f"{recipe.seed}); each figure from a model that never saw that "
                       "clip/recording",
                "clips_majority_right": cv["windowed"]["clips_right"],
                "windows_right": cv["windowed"]["windows_right"],
                "windows": cv["windowed"]["windows"],
                "clips_commanded": cv["commanded"], "clips": cv["clips"],
                "negatives": cv["negatives"]},
            "heldout_negatives_final_model": held["negatives"],
            "synthetic": synth,
            "metrics": {} if cv is None else {"accuracy": cv["synthetic"]["accuracy"],
                                              "n": cv["synthetic"]["n"]}}
    checkpoint.save(model, out, card)
    for lg in held["_neg_logs"]:
        log(f"held-out negative {Path(lg['source']).name}: {lg['duration_s']:.1f} s")
    return {"crossval": cv, "card": card}


def check_positive_labels(clips: list[LabelledClip], classes, where) -> None:
    """A positive clip counts only when the controller commands its label's gesture: a label
    the model does not know would score every clip 0 without a word, so it is refused."""
    from ..events.errors import did_you_mean
    from ..events.labels import LabelError

    unknown = sorted({c.label for c in clips} - set(classes))
    if unknown:
        raise LabelError(f"label {unknown[0]!r} is not a gesture of the model"
                         f"{did_you_mean(unknown[0], classes)} (its classes: "
                         f"{', '.join(classes)}); a taught model answers the names it was "
                         "taught (snn4 teach --base-gestures keeps the base model's names)",
                         where=f"{where}/labels.csv")


def replay_tradeoff(net: HybridNet, positives: str | Path, traces: list[ReplayTrace],
                    controller: dict) -> dict:
    """For ``snn4 replay --positives DIR``: replay the labelled clips too, and sweep the
    controller over them and the unlabelled recordings of this replay (the negatives)."""
    clips = read_labels_csv(positives)
    check_positive_labels(clips, net.cfg.classes, positives)
    pos_logs = replay_logs(net, [str(c.path) for c in clips])
    neg_logs = [decision_log(t) for t in traces if not t.labels]
    cfg = ControllerConfig.from_dict(controller)
    cur = {k: getattr(cfg, k) for k in ("min_confidence", "debounce", "agree_window")}
    pairs = list(zip(pos_logs, clips))
    pts = tradeoff(pairs, neg_logs)
    if not any(p["controller"] == cur for p in pts):
        pts += tradeoff(pairs, neg_logs, [cur])
    now = [positive_figures(lg, c, cur) for lg, c in pairs]
    return {"tradeoff": pts, "positives": len(now),
            "positives_commanded": sum(p["commanded"] for p in now),
            "positives_detail": now}
