"""Sensor statistics of real recordings beside the simulator's, as numbers and one plot.

Why: "looks like a real DVS" should be a measurement. Per window of the model's length
(0.64 s for the gesture presets) we measure what separates the shared DVS128 clips from a
naive simulation: the event rate, the ON share, the background rate (events per pixel and
second in the quietest half of the image's 8x8 blocks: noise, not motion), the share of the
image that moves (8x8 blocks with >= 4 events), and per recording the hot pixels (> 5 Hz and
> 20x the median active pixel). ``snn4 simstats`` prints them for the real clips, the
real-looking simulator (``synthetic-real``) and the original one (``synthetic``) and draws
them side by side with one event frame of each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..events import read_recording


def window_stats(ev: np.ndarray, width: int, height: int, win_ns: int) -> list[dict]:
    """Statistics of every full window of ``win_ns`` of time-sorted events."""
    if not len(ev):
        return []
    t = ev["t"]
    out = []
    for a in range(int(t[0]), int(t[-1]) - win_ns + 1, win_ns):
        i, j = np.searchsorted(t, [a, a + win_ns])
        w = ev[i:j]
        s = win_ns / 1e9
        bx, by = width // 8, height // 8
        blocks = np.zeros(bx * by)
        np.add.at(blocks, (np.minimum(w["y"] // 8, by - 1).astype(int) * bx
                           + np.minimum(w["x"] // 8, bx - 1).astype(int)), 1)
        quiet = np.sort(blocks)[: len(blocks) // 2]
        out.append({"rate": len(w) / s,
                    "on": float(w["p"].mean()) if len(w) else float("nan"),
                    "noise_hz_px": quiet.sum() / (len(quiet) * 64) / s,
                    "moving_area": float((blocks >= 4).mean())})
    return out


def hot_pixels(ev: np.ndarray, width: int, height: int) -> float:
    """Fraction of pixels firing > 5 Hz and > 20x the median active pixel's rate."""
    if len(ev) < 2:
        return 0.0
    dur = (int(ev["t"][-1]) - int(ev["t"][0])) / 1e9 or 1.0
    cnt = np.bincount(ev["y"].astype(int) * width + ev["x"].astype(int),
                      minlength=width * height) / dur
    med = np.median(cnt[cnt > 0]) if (cnt > 0).any() else 0.0
    return float(((cnt > 5) & (cnt > 20 * med)).mean())


def source_stats(kind: str, n: int = 12, seed: int = 11, paths: list[str] | None = None,
                 win_s: float = 0.64) -> dict:
    """``kind``: "real" (``paths``), "synthetic-real" or "synthetic" (``n`` right-hand-wave
    clips of 5 s at 128x128, deterministic by seed)."""
    from ..events.distractors import random_sensor
    from ..events.synthetic import GestureSimulator, SceneConfig

    wins, hots, example = [], [], None
    win_ns = int(win_s * 1e9)
    streams = []
    if kind == "real":
        for p in paths or []:
            ea, _, _ = read_recording(p)
            streams.append((ea.events, ea.width, ea.height))
    else:
        for i in range(n):
            rng = np.random.default_rng(seed + i)
            if kind == "synthetic-real":
                sim = GestureSimulator(seed + i, random_sensor(rng),
                                       SceneConfig(style="filled", scale_range=(0.4, 2.2),
                                                   target=False))
            else:
                sim = GestureSimulator(seed + i)
            c = sim.clip("right_hand_wave", 2 * win_s)
            streams.append((c.events.events, 128, 128))
    for ev, w, h in streams:
        wins += window_stats(ev, w, h, win_ns)
        hots.append(hot_pixels(ev, w, h))
        if example is None and len(ev):
            a = int(ev["t"][0])
            example = (ev[ev["t"] < a + win_ns], w, h)
    arr = {k: np.array([x[k] for x in wins]) for k in ("rate", "on", "noise_hz_px",
                                                        "moving_area")}
    summary = {k: {"median": float(np.nanmedian(v)), "p10": float(np.nanpercentile(v, 10)),
                   "p90": float(np.nanpercentile(v, 90))} for k, v in arr.items() if len(v)}
    summary["hot_pixel_fraction"] = float(np.mean(hots)) if hots else 0.0
    return {"kind": kind, "recordings": len(streams), "windows": len(wins),
            "summary": summary, "_arrays": arr, "_example": example}


def compare(real_paths: list[str], n: int = 12, seed: int = 11) -> list[dict]:
    return [source_stats("real", paths=real_paths),
            source_stats("synthetic-real", n, seed), source_stats("synthetic", n, seed)]


def plot(stats: list[dict], path: str | Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("rate", "events / s per window", True), ("on", "ON share", False),
            ("noise_hz_px", "background events / px / s", True),
            ("moving_area", "share of 8x8 blocks moving", False)]
    fig, axes = plt.subplots(2, 4, figsize=(15, 7))
    colors = {"real": "black", "synthetic-real": "tab:green", "synthetic": "tab:orange"}
    for ax, (k, label, log) in zip(axes[0], keys):
        for s in stats:
            v = s["_arrays"][k]
            v = v[np.isfinite(v)]
            if log:
                v = np.log10(np.maximum(v, 1e-3))
            ax.hist(v, bins=25, histtype="step", lw=2, density=True, color=colors[s["kind"]],
                    label=f"{s['kind']} (n={s['windows']} windows)")
        ax.set_xlabel(("log10 " if log else "") + label)
    axes[0][0].legend(fontsize=8)
    for ax, s in zip(axes[1], stats):
        ev, w, h = s["_example"]
        img = np.zeros((h, w))
        np.add.at(img, (ev["y"].astype(int), ev["x"].astype(int)), np.where(ev["p"], 1, -1))
        ax.imshow(img, cmap="bwr", vmin=-3, vmax=3)
        ax.set_title(f"{s['kind']}: 0.64 s, {len(ev)} events "
                     f"(hot px {100 * s['summary']['hot_pixel_fraction']:.2f} %)", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1][3].axis("off")
    axes[1][3].text(0, 0.5, "right-hand wave, 128x128\nreal: the shared DVS128 clips\n"
                    "synthetic-real: filled silhouettes,\n  any size, sensors fitted to the real"
                    "\nsynthetic: the original simulator", fontsize=10, va="center")
    fig.suptitle("Real DVS128 vs simulated: sensor statistics per 0.64 s window")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
