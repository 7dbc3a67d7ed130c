"""Can ONE readout keep the 11 simulator gestures and abstain on real scenes? (issue 12)

    python bench/one_readout.py [--k 8]

Why this bench: the shipped real-camera model answers only the right-hand wave (taught from
real clips) or "none"; the simulator's 11 gestures stay in the simulator's model. This bench
measures the alternative -- one readout on the simulator model's frozen features that keeps all
11 simulator gestures (scored on 330 fresh simulated clips, seed 7), recognises the real waves
and abstains on every real recording without a gesture -- so the decision rests on numbers.

Features are the head's pooled output, as the live pipeline computes them (streaming, per
40 ms bin) for the real recordings, and per clip for the simulated ones. Arms:

* ``prototype``: k-means prototypes per simulator class (precision-weighted distance, as
  models/readout.py) + one prototype per real wave clip + "none" prototypes (distractor scenes,
  real negatives); a class fires only within its threshold (quantile of its own distances);
  ``--cap`` also caps each threshold below the 2 % quantile of the "none" windows' distances.
* ``linear``: a linear classifier over 11 gestures + none, trained on the simulator clips,
  distractor scenes (none), real wave windows (right_hand_wave) and real negatives (none).

Real waves: 4 folds of 3 held-out clips. Real negatives: each AEDAT2 recording and bag is held
out in one fold (the others are "none" training data); N-MNIST and the Prophesee file are never
trained on. Decisions go through the product's controller (eval/realworld.simulate_controller,
default gating). The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATA = ROOT.parent / "shared" / "data"


def features(base):
    """Simulated clips (train, test), distractor scenes, per-bin sequences of real recordings."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from snn4_ros.eval.recognition import real_negatives
    from snn4_ros.events.capture import read_session_csv
    from snn4_ros.events.distractors import DISTRACTORS, distractor_clip, random_sensor
    from snn4_ros.events.sources import read_recording
    from snn4_ros.models.datasets import clip_frames, synthetic_data
    from snn4_ros.models.finetune import backbone_spikes, head_features
    from snn4_ros.models.teach import bin_features, recording_frames

    cfg = base.cfg

    def clip_feats(frames):
        return head_features(base, backbone_spikes(base, frames))

    tr = [synthetic_data(20, cfg, seed=0), synthetic_data(12, cfg, seed=0, style="real")]
    Xs = torch.cat([clip_feats(d.frames) for d in tr])
    ys = torch.cat([d.labels for d in tr])
    te = synthetic_data(30, cfg, seed=7)
    Xte, yte = clip_feats(te.frames), te.labels
    rng = np.random.default_rng(5)
    T = cfg.window
    fr = [clip_frames(distractor_clip(DISTRACTORS[i % len(DISTRACTORS)], 1000 + i,
                                      T * cfg.bin_us / 1e6, cfg.sensor_width, cfg.sensor_height,
                                      sensor=random_sensor(rng, cfg.sensor_width,
                                                           cfg.sensor_height)).events,
                      cfg, cfg.sensor_width, cfg.sensor_height, 0, T) for i in range(60)]
    Xd = clip_feats(torch.from_numpy(np.stack(fr)))

    def seq(path):
        ea, _, _ = read_recording(str(path))
        frames, ends = recording_frames(base, ea)
        return {"X": bin_features(base, frames, np.arange(len(ends))),
                "end_s": (ends - int(ea.events["t"][0])) / 1e9}

    negs = {n: [seq(p) for p in ps]
            for n, ps in tqdm(real_negatives(DATA, 100).items(), desc="real negatives")}
    pos = {Path(p).name: seq(p) | {"range": (s, e)}
           for p, _, s, e in tqdm(read_session_csv(DATA / "aedat4_dvs128" / "labels.csv"),
                                  desc="real waves")}
    return dict(Xs=Xs, ys=ys, Xte=Xte, yte=yte, Xd=Xd, negs=negs, pos=pos)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, default=8, help="prototypes per simulator class")
    args = ap.parse_args()

    import math

    import numpy as np
    import torch
    import torch.nn.functional as F

    from snn4_ros.eval.realworld import simulate_controller
    from snn4_ros.events.synthetic import GESTURES
    from snn4_ros.models import checkpoint
    from snn4_ros.models.zoo import DEMO_MODEL, find_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    base, _ = checkpoint.load(find_model(DEMO_MODEL))
    f = features(base)
    CL = list(GESTURES) + ["none"]
    NONE, RHW = len(GESTURES), GESTURES.index("right_hand_wave")
    eps_ = 0.1 * float(f["Xs"].std(0).mean()) + 1e-3

    def d2(X, mu, rho):
        return (((X[:, None] - mu[None]) * rho[None]) ** 2).mean(-1)

    def kmeans(X, k, it=25):
        if len(X) <= k:
            return X.clone()
        g = torch.Generator().manual_seed(0)
        c = X[torch.randperm(len(X), generator=g)[:k]].clone()
        for _ in range(it):
            a = torch.cdist(X, c).argmin(1)
            for j in range(k):
                if (a == j).any():
                    c[j] = X[a == j].mean(0)
        return c

    def wave_windows(keys, stride=2):
        out = []
        for k in keys:
            s = f["pos"][k]
            a, b = s["range"]
            m = (s["end_s"] >= a + 0.64) & (s["end_s"] <= b)
            out.append(s["X"][np.flatnonzero(m)[::stride]])
        return out

    def none_windows(neg_keys, stride=2):
        return torch.cat([f["Xd"]] + [s["X"][::stride] for k in neg_keys for s in f["negs"][k]])

    def prototype(pos_keys, neg_keys, cap):
        rows = []
        for c in range(NONE):
            Xc = f["Xs"][f["ys"] == c]
            rho = 1 / (Xc.std(0) + eps_)
            mu = kmeans(Xc, args.k)
            rows.append([c, mu, rho, float(torch.quantile(d2(Xc, mu, rho).min(1).values,
                                                          0.98)) * 1.5])
        W = wave_windows(pos_keys)
        rho_w = 1 / (torch.cat(W).std(0) + eps_)
        muw = torch.stack([w.mean(0) for w in W])
        loo = torch.cat([d2(w, torch.cat([muw[:i], muw[i + 1:]]), rho_w).min(1).values
                         for i, w in enumerate(W)])
        rows.append([RHW, muw, rho_w, float(torch.quantile(loo, 0.95))])
        Xn = none_windows(neg_keys)
        if cap:
            for r in rows:
                r[3] = min(r[3], float(torch.quantile(d2(Xn, r[1], r[2]).min(1).values, 0.02)))
        rho_n = 1 / (Xn.std(0) + eps_)
        mun = kmeans(Xn, 16)
        rows.append([NONE, mun, rho_n,
                     float(torch.quantile(d2(Xn, mun, rho_n).min(1).values, 0.9))])

        def probs(X):
            L = torch.full((len(X), len(CL)), -1e9)
            for c, mu, rho, tau in rows:
                s = math.log(32) / max(0.5 * tau, 1e-6)
                L[:, c] = torch.maximum(L[:, c], (s * (tau - d2(X, mu, rho))).max(1).values)
            L[:, NONE] = L[:, NONE].clamp(min=0.0)
            return L.softmax(1)
        return probs

    def linear(pos_keys, neg_keys):
        X = torch.cat([f["Xs"], none_windows(neg_keys)] + wave_windows(pos_keys))
        n_none = len(X) - len(f["Xs"]) - sum(len(w) for w in wave_windows(pos_keys))
        y = torch.cat([f["ys"], torch.full((n_none,), NONE),
                       torch.full((len(X) - len(f["Xs"]) - n_none,), RHW)])
        mu, sd = X.mean(0), X.std(0) + 1e-3
        lin = torch.nn.Linear(X.shape[1], len(CL))
        opt = torch.optim.AdamW(lin.parameters(), lr=0.01, weight_decay=1e-2)
        w = (len(y) / (len(CL) * torch.bincount(y, minlength=len(CL)).clamp(min=1))).float()
        for _ in range(300):
            loss = F.cross_entropy(lin((X - mu) / sd), y, weight=w)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return lambda Z: lin((Z - mu) / sd).softmax(1).detach()

    def episodes(s, probs):
        log = {"source": "x", "dec_t": (s["end_s"] * 1e9).astype(np.int64),
               "probs": probs(s["X"]).numpy(), "t_first": 0,
               "t_last": int(s["end_s"][-1] * 1e9), "classes": CL,
               "duration_s": float(s["end_s"][-1])}
        return simulate_controller(log, {})["episodes"]

    pos_keys = sorted(f["pos"])
    trainable = [k for k in f["negs"] if "nmnist" not in k and "prophesee" not in k]
    never = [k for k in f["negs"] if k not in trainable]
    order = np.random.default_rng(0).permutation(len(pos_keys))
    arms = {"prototype": lambda p, n: prototype(p, n, cap=False),
            "prototype_capped": lambda p, n: prototype(p, n, cap=True),
            "linear": linear}
    out = {}
    for arm, fit in arms.items():
        rec, syn, neg = 0, [], {}
        for fo in range(4):
            test_pos = [pos_keys[i] for i in order[fo::4]]
            train_pos = [k for k in pos_keys if k not in test_pos]
            held = [k for j, k in enumerate(trainable) if j % 4 == fo]
            probs = fit(train_pos, [k for k in trainable if k not in held])
            syn.append(float((probs(f["Xte"]).argmax(1) == f["yte"]).float().mean()))
            for k in test_pos:
                a, b = f["pos"][k]["range"]
                rec += any(e[2] == "right_hand_wave" and a <= e[0] / 1e9 <= b
                           for e in episodes(f["pos"][k], probs))
            for k in held + never:
                n = sum(len(episodes(s, probs)) for s in f["negs"][k])
                d = sum(float(s["end_s"][-1]) for s in f["negs"][k])
                e0, d0 = neg.get(k, (0, 0.0))
                neg[k] = (e0 + n, d0 + d)
        per = {k: {"episodes": e, "duration_s": round(d, 1),
                   "episodes_per_min": round(60 * e / d, 2) if d else 0.0}
               for k, (e, d) in neg.items()}
        out[arm] = {"synthetic_accuracy": round(float(np.mean(syn)), 3), "n_synthetic": 330,
                    "waves_recognised": f"{rec}/{len(pos_keys)}", "negatives_held_out": per,
                    "max_episodes_per_min": max(p["episodes_per_min"] for p in per.values())}
        print(f"{arm:<17} synthetic {out[arm]['synthetic_accuracy']:.3f} (330 clips)  waves "
              f"{rec}/{len(pos_keys)}  worst held-out negative "
              f"{out[arm]['max_episodes_per_min']:.1f} episodes/min", flush=True)
        for k, p in per.items():
            print(f"    {k:<32} {p['duration_s']:6.1f} s {p['episodes']:4d} episodes "
                  f"{p['episodes_per_min']:7.2f}/min", flush=True)
    from _common import emit

    emit("one_readout", {"bench": "one_readout", "k": args.k, "arms": out})


if __name__ == "__main__":
    main()
