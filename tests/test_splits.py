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


def test_round_trip(tmp_path):
    s = make_split("bootstrap", 100, [0, 1, 2], seed=0)
    save_split(s, tmp_path / "s.npz")
    back = load_split(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.indices, s.indices)
    assert back.method == "bootstrap" and back.n_train == 100
