"""Real-world checks of a gesture model through the product's replay: recognised clips and
false commands, as a robot would see them (``eval.replay`` -> ``GestureController``).

* a positive clip is *recognised* when the controller starts a command episode of the
  clip's gesture inside the clip's labelled range (``start_s``..``end_s`` from the clip's
  first event) -- what moves the robot, not just the network's top class;
* on a recording without a command gesture, every command episode is a false one;
  ``episodes_per_min`` is their count per minute of recording.

The real recordings of ``../shared/data`` that hold no command gesture are listed by
``real_negatives`` (N-MNIST: its first ``nmnist`` samples, each replayed as a recording).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..models.hybridnet import HybridNet
from .metrics import command_episodes
from .inprocess import ReplayOptions, ReplayTrace, replay


@dataclass
class NegativeResult:
    name: str
    duration_s: float
    episodes: int
    recordings: int = 1

    @property
    def per_min(self) -> float:
        return self.episodes / (self.duration_s / 60) if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict:
        return {"duration_s": round(self.duration_s, 2), "episodes": self.episodes,
                "episodes_per_min": round(self.per_min, 3), "recordings": self.recordings}


# "nothing" demonstrations (paths under ../shared/data): bench/teach.py's default alternates
# single walking recordings from fold to fold; the shipped real-camera recipe
# (tools/train_models.sh real) teaches a pair at once and cross-validates with two pairs, so
# that every recording is held out in some folds
NOTHING_PAIRS = (("aedat2_dvs128/alex_walking_again.aedat", 0.0, 4.0),
                 ("aedat2_dvs128/neal_walking.aedat", 0.0, 4.0))
SHIPPED_NOTHING_SETS = (NOTHING_PAIRS,
                        (("aedat2_dvs128/alex_walking_for_10secs.aedat", 0.0, 4.0),
                         ("aedat2_dvs128/cam289_right_clamp_test1.aedat", 0.0, 4.0)))


def teach_folds(n_clips: int, k: int, step: int, folds: int, seed: int = 0
                ) -> list[tuple[list[int], list[int]]]:
    """(taught, held-out) clip indexes per fold: the clips shuffled once by ``seed``, the
    teaching set the next ``k`` of them, moving by ``step`` from fold to fold (``k=9,
    step=3, folds=4`` on 12 clips holds every clip out once)."""
    order = np.random.default_rng(seed).permutation(n_clips)
    out = []
    for f in range(folds):
        taught = [int(i) for i in np.roll(order, -f * step)[:k]]
        out.append((taught, [i for i in range(n_clips) if i not in taught]))
    return out


def real_negatives(data: str | Path, nmnist: int = 100) -> dict[str, list[Path]]:
    """Name -> recordings of every real scene without a command gesture in the shared data."""
    data = Path(data)
    out = {p.stem: [p] for p in sorted((data / "aedat2_dvs128").glob("*.aedat"))}
    for b in ("evt3_trigger", "libcaer_rollover"):
        out[f"rosbag2/{b}"] = [data / "rosbag2" / b]
    out["prophesee/evt3_sample.raw"] = [data / "prophesee" / "evt3_sample.raw"]
    nm = data / "nmnist_train1k"
    if nmnist and nm.is_dir():
        files = sorted(nm.glob("*.bs2"), key=lambda p: int(p.stem))[:nmnist]
        out[f"nmnist_train1k[:{len(files)}]"] = files
    return out


def _replay(path: Path, net: HybridNet, controller: dict) -> ReplayTrace:
    return replay(path, net, ReplayOptions(controller=controller))


def action_episodes(tr: ReplayTrace) -> list[tuple[float, float, str | None]]:
    """Command episodes as (start_s, end_s, action) from the recording's first packet."""
    return [((a - tr.t_first_ns) / 1e9, (b - tr.t_first_ns) / 1e9, act)
            for a, b, act in command_episodes(tr)]


def clip_recognised(net: HybridNet, path: str | Path, gesture: str, start_s: float,
                    end_s: float, controller: dict) -> dict:
    tr = _replay(Path(path), net, controller)
    eps = action_episodes(tr)
    hit = [e for e in eps if e[2] == gesture and start_s <= e[0] <= end_s]
    top = tr.dec_top
    cls = list(tr.classes)
    frac = float((top == cls.index(gesture)).mean()) if gesture in cls and len(top) else 0.0
    return {"path": str(path), "recognised": bool(hit),
            "first_command_s": round(hit[0][0], 3) if hit else None,
            "episodes": [(round(a, 2), round(b, 2), act) for a, b, act in eps],
            "bins_top_gesture": round(frac, 3)}


def false_commands(net: HybridNet, recordings: list[Path], controller: dict,
                   name: str = "") -> NegativeResult:
    dur, eps = 0.0, 0
    for p in recordings:
        tr = _replay(Path(p), net, controller)
        dur += tr.duration_s
        eps += len(command_episodes(tr))
    return NegativeResult(name or str(recordings[0]), dur, eps, len(recordings))


def summarise_negatives(results: list[NegativeResult]) -> dict:
    rates = [r.per_min for r in results]
    return {"max_episodes_per_min": float(max(rates)) if rates else None,
            "total_duration_s": round(sum(r.duration_s for r in results), 2),
            "total_episodes": int(sum(r.episodes for r in results)),
            "pooled_episodes_per_min": float(np.sum([r.episodes for r in results])
                                             / (sum(r.duration_s for r in results) / 60))
            if results else None}
