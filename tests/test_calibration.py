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


def test_batched_equals_one_at_a_time():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 300, 10))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, 10, 300)
    np.testing.assert_allclose(ece_batched(probs, labels, 15),
                               [ece(p, labels, 15) for p in probs], rtol=1e-12)
