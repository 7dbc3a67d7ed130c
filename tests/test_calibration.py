"""Temperature scaling and calibration error (models/calibration.py), and the folds of the
real-camera recipe's cross-validation (eval/recognition.teach_folds)."""

from __future__ import annotations

import numpy as np
import pytest

from snn4_ros.eval.recognition import teach_folds
from snn4_ros.models.calibration import (apply_temperature, equivalent_threshold,
                                         fit_temperature, nll, reliability)


def _softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _overconfident(T0: float, n: int = 20000, classes: int = 3, seed: int = 0):
    """Labels drawn from softmax(z / T0); the model reports softmax(z): over-confident by T0."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 4.0, (n, classes))
    true = _softmax(z / T0)
    y = np.array([rng.choice(classes, p=p) for p in true])
    return _softmax(z), y


def test_fit_recovers_the_temperature_that_generated_the_labels():
    probs, y = _overconfident(2.5)
    T = fit_temperature(probs, y, balanced=False)
    assert T == pytest.approx(2.5, rel=0.08)
    before, after = reliability(probs, y), reliability(apply_temperature(probs, T), y)
    assert before["ece"] > 0.08 and after["ece"] < 0.02
    assert nll(probs, y, T, balanced=False) < nll(probs, y, 1.0, balanced=False)


def test_a_calibrated_model_keeps_a_temperature_near_one():
    probs, y = _overconfident(1.0, seed=1)
    assert fit_temperature(probs, y, balanced=False) == pytest.approx(1.0, rel=0.08)


def test_temperature_never_changes_the_top_class_and_one_is_the_identity():
    probs, _ = _overconfident(1.0, n=500, seed=2)
    assert np.allclose(apply_temperature(probs, 1.0), probs, atol=1e-9)
    for T in (0.3, 4.0):
        q = apply_temperature(probs, T)
        assert (q.argmax(1) == probs.argmax(1)).all()
        assert np.allclose(q.sum(1), 1.0)
    assert apply_temperature(probs, 4.0).max(1).mean() < probs.max(1).mean() \
        < apply_temperature(probs, 0.3).max(1).mean()


def test_reliability_bins_by_hand():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.65, 0.35], [0.35, 0.65]])
    y = np.array([0, 1, 0, 1])
    r = reliability(probs, y, bins=10)
    # bin 0.9-1.0: conf 0.95, accuracy 0.5 (2 of 4 decisions); bin 0.6-0.7: conf 0.65, acc 1
    assert r["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.35)
    assert [b["n"] for b in r["bins"]] == [2, 2]
    assert r["accuracy"] == pytest.approx(0.75)


def test_equivalent_threshold_passes_the_same_two_class_decisions():
    rng = np.random.default_rng(3)
    probs = _softmax(rng.normal(0, 3.0, (5000, 2)))
    for raw in (0.6, 0.8, 0.95):
        for T in (0.5, 2.0, 7.9):
            cal = apply_temperature(probs, T).max(1)
            thr = equivalent_threshold(raw, T)
            assert ((probs.max(1) >= raw) == (cal >= thr - 1e-12)).mean() > 0.999
    with pytest.raises(ValueError):
        equivalent_threshold(0.3, 2.0)


def test_a_fit_needs_two_classes_of_decisions():
    probs = np.array([[0.9, 0.1], [0.8, 0.2]])
    with pytest.raises(ValueError, match="two classes"):
        fit_temperature(probs, np.array([0, 0]))
    with pytest.raises(ValueError, match="no decisions"):
        fit_temperature(np.zeros((0, 2)), np.zeros(0, np.int64))


def test_the_balanced_fit_weighs_the_rare_class_like_the_common_one():
    # 1,900 "none" decisions confidently right; 100 gesture decisions, half of them
    # confidently called "none": the rare class's errors soften the balanced fit much more
    none = np.tile([0.02, 0.98], (1900, 1))
    gest = np.concatenate([np.tile([0.97, 0.03], (50, 1)), np.tile([0.02, 0.98], (50, 1))])
    probs = np.concatenate([none, gest])
    y = np.concatenate([np.ones(1900, int), np.zeros(100, int)])
    plain, balanced = fit_temperature(probs, y, balanced=False), fit_temperature(probs, y)
    assert balanced > 1.5 * plain
    assert nll(probs, y, balanced) < nll(probs, y, plain)


def test_the_shipped_recipe_folds_hold_every_clip_out_once():
    folds = teach_folds(12, k=9, step=3, folds=4, seed=0)
    held = sorted(i for _, h in folds for i in h)
    assert held == list(range(12))
    for taught, h in folds:
        assert len(taught) == 9 and len(h) == 3 and not set(taught) & set(h)
    assert teach_folds(12, 9, 3, 4, 0) == folds               # deterministic by seed
    assert teach_folds(12, 9, 3, 4, 1) != folds
