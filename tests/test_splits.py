"""Each draw's training indices."""

from __future__ import annotations

import numpy as np

from biasvar.data.splits import draw_indices, load_split, make_split, save_split


def test_bootstrap_is_with_replacement():
    idx = draw_indices("bootstrap", 1000, draw=3, seed=0)
    assert idx.shape == (1000,)
    assert idx.min() >= 0 and idx.max() < 1000
    # With replacement: about 1 - 1/e = 63.2 % distinct indices.
    assert 0.60 < len(np.unique(idx)) / 1000 < 0.66


def test_draws_differ_and_are_deterministic():
    a = draw_indices("bootstrap", 500, 0, seed=0)
    np.testing.assert_array_equal(a, draw_indices("bootstrap", 500, 0, seed=0))
    assert not np.array_equal(a, draw_indices("bootstrap", 500, 1, seed=0))
    assert not np.array_equal(a, draw_indices("bootstrap", 500, 0, seed=1))


def test_a_draw_is_the_same_whichever_block_asks():
    one = make_split("bootstrap", 400, [4, 5], seed=0)
    other = make_split("bootstrap", 400, [5, 6, 7], seed=0)
    np.testing.assert_array_equal(one.for_draw(5), other.for_draw(5))


def test_disjoint_parts_are_disjoint_and_equal():
    parts = [draw_indices("disjoint", 1003, d, seed=0, parts=4) for d in range(4)]
    assert all(len(p) == 1003 // 4 for p in parts)
    allidx = np.concatenate(parts)
    assert len(np.unique(allidx)) == len(allidx)  # no index in two parts


def test_full_is_everything():
    np.testing.assert_array_equal(draw_indices("full", 50, 7, seed=3), np.arange(50))


def test_half_is_half_without_replacement_and_independent_across_draws():
    """Half-sampling: n // 2 distinct indices per draw; two draws overlap like two
    independent halves (expected overlap n/4, sd ~ sqrt(n)/4 for large n)."""
    n = 4001
    draws = [draw_indices("half", n, d, seed=0) for d in range(20)]
    for idx in draws:
        assert len(idx) == n // 2 == len(np.unique(idx))
        assert idx.min() >= 0 and idx.max() < n
    overlaps = [len(np.intersect1d(draws[0], d)) for d in draws[1:]]
    # hypergeometric mean (n//2)^2 / n = 500, sd ~ 16: all 19 within 5 sd
    assert all(abs(o - (n // 2) ** 2 / n) < 5 * 16 for o in overlaps)
    # every example is in about half of the draws
    counts = np.bincount(np.concatenate(draws), minlength=n) / len(draws)
    assert abs(counts.mean() - 0.5) < 1e-3
    np.testing.assert_array_equal(draws[3], make_split("half", n, [2, 3], seed=0).for_draw(3))
    assert not np.array_equal(draws[0], draw_indices("half", n, 0, seed=1))


def test_round_trip(tmp_path):
    s = make_split("bootstrap", 100, [0, 1, 2], seed=0)
    save_split(s, tmp_path / "s.npz")
    back = load_split(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.indices, s.indices)
    assert back.method == "bootstrap" and back.n_train == 100
