"""Confidence calibration: temperature scaling fitted on held-out real decisions.

Why: the controller gates motion on a decision's confidence (``min_confidence``), and the
dashboard shows it to a person, so "0.8" should mean "right about 8 times in 10" on the
scenes the robot meets. A model taught on a few real clips is not calibrated by
construction: its prototype readout's scale comes from the demonstrations it was taught on.
Temperature scaling (Guo et al., ICML 2017) divides the logits by one scalar ``T`` fitted by
minimising the negative log-likelihood on held-out data; it never changes the top class, so
recognition and abstention are untouched, only the confidence attached to them.

The held-out real data are unbalanced (minutes of "nothing" against seconds of gesture),
so the fit weighs each class equally; otherwise "none" alone would set ``T``.

With two classes (a gesture and "none"), the confidence is a monotone function of the logit
gap divided by ``T``: a controller threshold on calibrated confidence is exactly a different
threshold on raw confidence. ``equivalent_threshold`` gives that threshold, so a calibrated
model can keep the commands its cross-validation measured.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

LOG_T_RANGE = (-4.0, 4.0)             # T in [0.018, 55]: beyond that the fit is degenerate


def log_probs(probs: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Log-probabilities of softmax outputs: the logits up to a per-row constant, which is
    all temperature scaling needs (softmax(log p / T) = softmax(z / T))."""
    return np.log(np.clip(np.asarray(probs, np.float64), eps, 1.0))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax outputs recomputed at temperature ``T`` (rows of ``probs`` as the model gave
    them at T = 1)."""
    z = log_probs(probs) / float(temperature)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(probs: np.ndarray, labels: np.ndarray, temperature: float = 1.0,
        balanced: bool = True) -> float:
    """Mean negative log-likelihood of ``labels`` at temperature ``T``; ``balanced`` weighs
    every class present equally."""
    p = apply_temperature(probs, temperature)
    labels = np.asarray(labels, np.int64)
    ll = -np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1.0))
    if not balanced:
        return float(ll.mean())
    return float(np.mean([ll[labels == c].mean() for c in np.unique(labels)]))


def fit_temperature(probs: np.ndarray, labels: np.ndarray, balanced: bool = True,
                    iters: int = 60) -> float:
    """The ``T`` minimising the (class-balanced) NLL: golden-section search on log T (the
    NLL is convex in 1/T, so unimodal in log T)."""
    if len(labels) == 0:
        raise ValueError("no decisions to fit a temperature on")
    if len(np.unique(labels)) < 2:
        raise ValueError("a temperature needs held-out decisions of at least two classes")
    f = lambda lt: nll(probs, labels, math.exp(lt), balanced)  # noqa: E731
    a, b = LOG_T_RANGE
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return float(math.exp((a + b) / 2))


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict:
    """Expected calibration error (equal-width confidence bins, weighted by count) and the
    per-bin confidence/accuracy/count a reliability diagram draws."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels, np.int64)
    conf = probs.max(1)
    right = probs.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for k in range(bins):
        m = idx == k
        if not m.any():
            continue
        c, a = float(conf[m].mean()), float(right[m].mean())
        ece += m.mean() * abs(c - a)
        rows.append({"lo": float(edges[k]), "hi": float(edges[k + 1]), "confidence": c,
                     "accuracy": a, "n": int(m.sum())})
    return {"ece": float(ece), "accuracy": float(right.mean()) if len(right) else 0.0,
            "mean_confidence": float(conf.mean()) if len(conf) else 0.0, "bins": rows,
            "n": int(len(labels))}


def equivalent_threshold(raw_threshold: float, temperature: float) -> float:
    """For two classes: the calibrated-confidence threshold that passes exactly the
    decisions a raw-confidence threshold passed (conf = sigmoid(gap), gap -> gap / T)."""
    if not 0.5 <= raw_threshold < 1.0:
        raise ValueError("a two-class confidence threshold lies in [0.5, 1)")
    gap = math.log(raw_threshold / (1.0 - raw_threshold))
    return 1.0 / (1.0 + math.exp(-gap / temperature))


@dataclass
class Calibration:
    """What a model card records about its temperature."""

    temperature: float
    fitted_on: str
    decisions: int
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float

    def as_dict(self) -> dict:
        return asdict(self)
