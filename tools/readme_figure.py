#!/usr/bin/env python3
"""The README's first picture: what the product does, on a real recording beside a synthetic one.

Both clips go through ``eval/inprocess.replay`` -- the code ``snn4 replay`` runs: the packet
decoder, the 40 ms frames, the streaming spiking network and the gesture controller on the
recording's clock -- with the model a user gets: the real-camera model for the real clip,
the simulator's for the simulated one (``models/zoo.default_model``; ``--model`` for both).

* left: a REAL DVS128 recording from ``../shared/data/aedat4_dvs128`` (a person waving the
  right hand, labelled by eye in its ``labels.csv``);
* right: the SYNTHETIC camera (the simulator ``snn4 demo`` / ``snn4 up`` use) performing the
  same gesture for as long.

Rows: event frames (ON red, OFF blue, 200 ms each), the network's decision per 40 ms bin
(the top class; filled when its confidence passes the controller's ``min_confidence``), and
the controller's ``cmd_vel`` (what a robot would do). The figures under each title are
counted here and printed as the JSON object on the last line; the README quotes them.

    .venv/bin/python tools/readme_figure.py                      # -> docs/readme_figure.png
    .venv/bin/python tools/readme_figure.py --model hybridnet_gesture_loihi --out /tmp/x.png
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "aedat4_dvs128"
REAL_CLIP = "dvSave-2024_06_13_16_29_18.aedat4"     # labelled right_hand_wave, confidence high


def _label_of(clip: Path) -> tuple[str, float, float, str]:
    """(label, start_s, end_s, confidence) of a clip from its folder's labels.csv."""
    with open(clip.parent / "labels.csv") as fh:
        for row in csv.DictReader(fh):
            if row["path"] == clip.name:
                return row["label"], float(row["start_s"]), float(row["end_s"]), \
                    row.get("confidence", "")
    raise SystemExit(f"readme_figure: {clip.name} is not labelled in {clip.parent}/labels.csv")


def _synthetic_bag(folder: Path, label: str, seconds: float, seed: int) -> Path:
    from snn4_ros.events.recording import record_synthetic

    bag = folder / "synthetic.mcap"
    record_synthetic(bag, gestures=1, gesture_s=seconds, seed=seed, classes=[label])
    return bag


def _summary(tr, label: str, start_s: float, end_s: float, cfg) -> dict:
    """What the network and the controller did inside the labelled interval."""
    classes = tr.classes
    t0 = int(tr.packet_t[0])
    dt = (tr.dec_t - t0) / 1e9
    inside = (dt >= start_s) & (dt <= end_s)
    top = tr.dec_top[inside]
    conf = tr.dec_probs.max(1)[inside]
    want = classes.index(label) if label in classes else -1
    sure = conf >= cfg.min_confidence
    ct = (tr.cmd_t - t0) / 1e9
    cin = (ct >= start_s) & (ct <= end_s)
    # a command holds until the next one (the controller's ticks and one per decision)
    held = np.diff(np.append(ct, ct[-1])) if len(ct) else np.zeros(0)
    moving = ((tr.cmd_lin != 0) | (tr.cmd_ang != 0)) & cin
    acts = np.array([a == label for a in tr.cmd_action], bool)
    counts = np.bincount(top, minlength=len(classes)) if len(top) else np.zeros(len(classes))
    return {
        "label": label, "interval_s": [start_s, end_s],
        "bins": int(inside.sum()),
        "bins_top_is_label": int((top == want).sum()),
        "bins_confident": int(sure.sum()),
        "bins_confident_label": int(((top == want) & sure).sum()),
        "bins_confident_other": int(((top != want) & sure).sum()),
        "most_frequent_decision": classes[int(np.argmax(counts))] if len(top) else None,
        "seconds": round(end_s - start_s, 2),
        "seconds_moving": round(float(held[moving].sum()), 2),
        "seconds_label_action": round(float(held[moving & acts].sum()), 2),
        "seconds_other_action": round(float(held[moving & ~acts].sum()), 2),
        "events": int(tr.events),
    }


def _frames(path: Path, at_s: list[float], window_s: float, size: tuple[int, int]):
    """ON/OFF event images of ``window_s`` at each time (seconds from the first event)."""
    from snn4_ros.events import read_recording
    from snn4_ros.events.frames import rescale_events

    ea, _, _ = read_recording(path)
    ev = rescale_events(ea.events, (ea.width, ea.height), size)
    t = (ev["t"] - ev["t"][0]) / 1e9
    out = []
    for a in at_s:
        sel = ev[(t >= a) & (t < a + window_s)]
        img = np.ones((size[1], size[0], 3))
        on, off = sel[sel["p"] > 0], sel[sel["p"] == 0]
        cnt_on = np.zeros((size[1], size[0]))
        cnt_off = np.zeros((size[1], size[0]))
        np.add.at(cnt_on, (on["y"], on["x"]), 1)
        np.add.at(cnt_off, (off["y"], off["x"]), 1)
        s_on = np.clip(cnt_on / 1.5, 0, 1)[..., None]
        s_off = np.clip(cnt_off / 1.5, 0, 1)[..., None]
        img = img * (1 - s_on) + s_on * np.array([0.85, 0.1, 0.1])
        img = img * (1 - s_off) + s_off * np.array([0.1, 0.25, 0.85])
        out.append((a, img, len(sel)))
    return out


def _action_text(label: str, cfg) -> str:
    a = cfg.actions.get(label)
    if a is None:
        return f"{label}: no action"
    if getattr(a, "follow", False):
        return f"{label}'s action is to follow the target"
    what = " and ".join(x for x in (f"linear {a.linear:+.1f} m/s" if a.linear else "",
                                    f"angular {a.angular:+.1f} rad/s" if a.angular else "") if x)
    return f"{label}'s action is {what or 'stop (zero)'}"


def draw(out: Path, clips: list[dict], facts: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec, GridSpecFromSubplotSpec
    from matplotlib.lines import Line2D

    fig = plt.figure(figsize=(12.5, 8.2), dpi=80)
    gs = GridSpec(3, 2, figure=fig, height_ratios=[1.25, 1.45, 0.9], hspace=0.62,
                  wspace=0.3, left=0.105, right=0.99, top=0.875, bottom=0.125)
    fig.suptitle("snn4_ros: event camera -> spiking network, one decision per "
                 "40 ms -> gesture controller -> cmd_vel", fontsize=12.5, y=0.985)
    for col, c in enumerate(clips):
        tr, s, classes, cfg = c["trace"], c["summary"], c["trace"].classes, c["cfg"]
        head = fig.add_subplot(gs[0, col])
        head.axis("off")
        head.set_title(c["title"], fontsize=10, loc="left", pad=18, color=c["color"],
                       fontweight="bold")
        inner = GridSpecFromSubplotSpec(1, len(c["frames"]), subplot_spec=gs[0, col],
                                        wspace=0.04)
        for k, (a, img, n) in enumerate(c["frames"]):
            ax = fig.add_subplot(inner[0, k])
            ax.imshow(img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"events {a:.1f}-{a + 0.2:.1f} s: {n:,}", fontsize=8, labelpad=2)
        t0 = int(tr.packet_t[0])
        dt = (tr.dec_t - t0) / 1e9
        top = tr.dec_top
        conf = tr.dec_probs.max(1)
        want = classes.index(s["label"]) if s["label"] in classes else -1
        ax = fig.add_subplot(gs[1, col])
        ax.axhspan(want - 0.45, want + 0.45, color="tab:green", alpha=0.13, lw=0)
        sure = conf >= cfg.min_confidence
        right = top == want
        for mask, kw in (((~sure), dict(facecolors="none", edgecolors="0.5")),
                         ((sure & right), dict(color="tab:green")),
                         ((sure & ~right), dict(color="tab:red"))):
            if mask.any():
                ax.scatter(dt[mask], top[mask], s=13, linewidths=0.8, **kw)
        ax.set_yticks(range(len(classes)), classes, fontsize=8)
        ax.set_ylim(-0.6, len(classes) - 0.4)
        ax.set_xlim(0, s["interval_s"][1] + 0.05)
        ax.tick_params(axis="x", labelsize=8)
        ax.set_title(f"{c['model']}, one decision per 40 ms:\n{s['label']} in "
                     f"{s['bins_top_is_label']} of {s['bins']} bins ({s['bins_confident_label']}"
                     f" confident), confident and wrong in {s['bins_confident_other']}",
                     fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
        ax = fig.add_subplot(gs[2, col])
        ct = (tr.cmd_t - t0) / 1e9
        ax.axhline(0, color="0.6", lw=0.8)
        ax.step(ct, tr.cmd_ang, where="post", color="tab:purple")
        ax.step(ct, tr.cmd_lin, where="post", color="tab:orange")
        ax.set_ylim(-1.1, 1.1)
        ax.set_xlim(0, s["interval_s"][1] + 0.05)
        ax.tick_params(labelsize=8)
        if col:
            ax.set_yticklabels([])
        ax.set_xlabel("seconds of recording", fontsize=8.5)
        ax.set_title(f"cmd_vel: {_action_text(s['label'], cfg)}; it did so for "
                     f"{s['seconds_label_action']:.1f} s,\nanother action for "
                     f"{s['seconds_other_action']:.1f} s, zero the rest "
                     f"(of {s['seconds']:.1f} s)", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    dot = dict(marker="o", ls="none", markersize=5)
    fig.legend(handles=[
        Line2D([], [], color="tab:green", **dot, label="decision: confident and right"),
        Line2D([], [], color="tab:red", **dot, label="confident and wrong"),
        Line2D([], [], markerfacecolor="none", markeredgecolor="0.5", **dot,
               label=f"p < min_confidence {clips[0]['cfg'].min_confidence:g} (never moves "
                     "the robot)"),
        Line2D([], [], color="tab:purple", label="cmd_vel angular (rad/s, + is left)"),
        Line2D([], [], color="tab:orange", label="cmd_vel linear (m/s)"),
        Line2D([], [], color="tab:green", alpha=0.25, lw=8, label="the labelled class")],
        loc="lower center", ncol=3, fontsize=8.5, frameon=False, bbox_to_anchor=(0.53, 0.0),
        handlelength=1.6, columnspacing=2.0)
    out.parent.mkdir(parents=True, exist_ok=True)
    # the counts ride in the PNG (tests/test_newcomer.py: the README's caption names the model
    # the picture was drawn with, and that is the default model)
    fig.savefig(out, dpi=80, metadata={"Software": "tools/readme_figure.py",
                                       "Comment": json.dumps(facts)})
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--model", default=None,
                    help="a shipped model name or a MODEL.safetensors path for both clips "
                         "(default: each input's default model, as the product picks it: "
                         "the real-camera model for the real clip, the simulator's for the "
                         "simulated one)")
    ap.add_argument("--real", default=str(DATA / REAL_CLIP),
                    help="a labelled clip of ../shared/data/aedat4_dvs128 (labels.csv)")
    ap.add_argument("--seed", type=int, default=2, help="the synthetic clip's seed")
    ap.add_argument("--out", default=str(ROOT / "docs" / "readme_figure.png"),
                    help="the PNG to write")
    args = ap.parse_args(argv)

    from snn4_ros.eval.inprocess import ReplayOptions, replay
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import default_model, find_model
    from snn4_ros.runtime.control import ControllerConfig

    real = Path(args.real)
    if not real.exists():
        raise SystemExit(f"readme_figure: no such clip: {real} (the shared real data)")
    label, start_s, end_s, confidence = _label_of(real)
    real_model = args.model or default_model(str(real))
    _, real_card = checkpoint.load(find_model(real_model))
    # a real clip the model learned from says nothing about new recordings: said in the title
    learned = json.dumps({k: v for k, v in real_card.items()
                          if k not in ("evaluations", "metrics")})
    in_training = real.name in learned or real.parent.name in learned
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        syn = _synthetic_bag(Path(tmp), label, end_s, args.seed)
        for kind, path, title, color in (
                ("real", real, "REAL: a DVS128 recording (a real event camera)\n"
                 f"a person waving the right hand, small and far: {label}\n({real.name}"
                 + (", IN THIS MODEL'S TRAINING DATA)" if in_training
                    else f", labelled by eye: {confidence})"), "black"),
                ("synthetic", syn, "SYNTHETIC: the simulated camera (snn4 demo, snn4 up)\n"
                 f"the same gesture, {label}, for as long\n(seed {args.seed}; the "
                 "simulator the shipped models learned from)", "tab:blue")):
            model = args.model or default_model("synthetic" if kind == "synthetic"
                                                else str(path))
            net, card = checkpoint.load(find_model(model))
            cfg = ControllerConfig.from_dict(card.get("controller") or {})
            name = Path(model).stem if model.endswith(".safetensors") else model
            tr = replay(path, net, ReplayOptions(), card=card)
            s = _summary(tr, label, start_s if kind == "real" else 0.0, end_s, cfg)
            frames = _frames(path, [1.0, 2.5, 4.0], 0.2, (net.cfg.sensor_width,
                                                          net.cfg.sensor_height))
            clips.append({"kind": kind, "path": str(path), "trace": tr, "summary": s,
                          "frames": frames, "title": title, "color": color, "model": name,
                          "cfg": cfg})
            print(f"{kind}: {json.dumps(s)}", file=sys.stderr)
        out = Path(args.out)
        result = {"figure": str(out.relative_to(ROOT) if out.is_relative_to(ROOT) else out),
                  "min_confidence": clips[0]["cfg"].min_confidence,
                  "real": {"clip": real.name, "model": clips[0]["model"],
                           "in_training_data": in_training, **clips[0]["summary"]},
                  "synthetic": {"seed": args.seed, "model": clips[1]["model"],
                                **clips[1]["summary"]}}
        draw(out, clips, result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
