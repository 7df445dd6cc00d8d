"""ECE and reliability bins."""

from __future__ import annotations

import numpy as np
import pytest

from biasvar.analysis.calibration import ece, ece_batched, reliability


def _predictor(conf: np.ndarray, correct: np.ndarray, c: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities with top probability ``conf`` on class 0; label 0 where ``correct``."""
    n = len(conf)
    probs = np.empty((n, c))
    probs[:, 0] = conf
    probs[:, 1:] = ((1 - conf) / (c - 1))[:, None]
    labels = np.where(correct, 0, 1)
    return probs, labels


def test_perfectly_calibrated_predictor_has_ece_near_zero():
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 200_000)
    correct = rng.uniform(size=conf.size) < conf  # right with probability = confidence
    probs, labels = _predictor(conf, correct)
    assert ece(probs, labels, 15) < 0.005


def test_known_miscalibration_matches_hand_computation():
    # 10 examples at confidence 0.9 of which 6 correct (bin 14: |0.6 - 0.9| = 0.3)
    # 10 examples at confidence 0.5 of which 5 correct (bin 7: 0)
    conf = np.array([0.9] * 10 + [0.5] * 10)
    correct = np.array([True] * 6 + [False] * 4 + [True] * 5 + [False] * 5)
    probs, labels = _predictor(conf, correct)
    assert ece(probs, labels, 10) == pytest.approx(0.5 * 0.3 + 0.5 * 0.0)
    rel = reliability(probs, labels, 10)
    assert rel.count.sum() == 20
    assert rel.count[8] == 10 and rel.count[4] == 10  # 0.9 in (0.8, 0.9], 0.5 in (0.4, 0.5]
    assert rel.accuracy[8] == pytest.approx(0.6) and rel.confidence[8] == pytest.approx(0.9)
    assert np.isnan(rel.accuracy[0])  # empty bin


def _slow_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int):
    """Reliability bins by a plain loop over bins and examples, from the definition:
    example i is in bin b when b/B < conf_i <= (b+1)/B (bin 0 also takes conf 0)."""
    n = len(labels)
    conf = [max(row) for row in probs.tolist()]
    right = [int(np.argmax(row)) == int(y) for row, y in zip(probs, labels, strict=True)]
    count, confidence, accuracy = [], [], []
    for b in range(n_bins):
        lower, upper = b / n_bins, (b + 1) / n_bins
        members = [i for i in range(n)
                   if (lower < conf[i] <= upper) or (b == 0 and conf[i] == 0.0)]
        count.append(len(members))
        confidence.append(sum(conf[i] for i in members) / len(members) if members else np.nan)
        accuracy.append(sum(right[i] for i in members) / len(members) if members else np.nan)
    return np.array(count), np.array(confidence), np.array(accuracy)


def _slow_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    count, confidence, accuracy = _slow_bins(probs, labels, n_bins)
    return sum(c / len(labels) * abs(a - f)
               for c, a, f in zip(count, accuracy, confidence, strict=True) if c)


def test_batched_ece_and_bins_match_a_plain_loop():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=2.0, size=(5, 300, 10))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, 10, 300)
    want = [_slow_ece(p, labels, 15) for p in probs]
    np.testing.assert_allclose(ece_batched(probs, labels, 15), want, rtol=1e-12)
    assert ece(probs[2], labels, 15) == pytest.approx(want[2], rel=1e-12)
    rel = reliability(probs[0], labels, 15)
    count, confidence, accuracy = _slow_bins(probs[0], labels, 15)
    np.testing.assert_array_equal(rel.count, count)
    np.testing.assert_allclose(rel.confidence, confidence, rtol=1e-12)
    np.testing.assert_allclose(rel.accuracy, accuracy, rtol=1e-12)


def test_confidence_on_a_bin_edge_goes_to_the_lower_bin():
    # top probabilities exactly 0.5 and 0.75 with 4 bins: (0.25, 0.5] and (0.5, 0.75]
    probs = np.array([[0.5, 0.3, 0.2], [0.75, 0.125, 0.125], [0.25, 0.25, 0.5]])
    labels = np.array([0, 1, 2])
    rel = reliability(probs, labels, 4)
    np.testing.assert_array_equal(rel.count, [0, 2, 1, 0])
    np.testing.assert_array_equal(rel.count, _slow_bins(probs, labels, 4)[0])
    # bin 1: conf 0.5 and 0.5 (third row), both right -> |1 - 0.5|; bin 2: 0.75, wrong
    assert ece(probs, labels, 4) == pytest.approx(2 / 3 * 0.5 + 1 / 3 * 0.75)
