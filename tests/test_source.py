"""The source folder (``biasvar.ensemble.source``) and the import source
(``biasvar.analysis.imported.import_source``): what decompose → … → plot read.

The import path is checked against the train path's own reader: an imported config
reads back exactly the arrays the file held (float32), and decomposing the import
folder gives the per-example terms of ``biasvar.decompose`` on the same arrays. The bad
files of the import source are in the fault catalogue (``test_faults_analyze.py``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from biasvar.analysis.imported import config_axes, import_source
from biasvar.core.errors import InputError
from biasvar.ensemble.logits import read_config
from biasvar.ensemble.source import read_source, write_source

K, N, C = 8, 30, 4  # members (4 draws x 2 seeds), examples, classes


def _ensemble(seed: int = 0, classes: int = C) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"labels": rng.integers(0, classes, N), "draw": np.repeat(np.arange(4), 2),
            "seed": np.tile(np.arange(2), 4)}


def _logits(seed: int) -> np.ndarray:
    # (members, examples, classes), exactly representable in float32
    return np.random.default_rng(seed).normal(size=(K, N, C)).astype(np.float32)


def test_write_and_read_a_train_source_round_trip(tmp_path):
    noisy = {0.0: np.zeros(10, bool), 0.2: np.arange(10) % 3 == 0}
    in_bag = {0: np.array([1, 2, 5]), 3: np.array([0, 9])}
    write_source(tmp_path, "train", [0.0, 0.2], [4, 8], ("test", "train"),
                 {"name": "mnist1d", "n_classes": 10}, blocks=[1, 0], noisy=noisy,
                 in_bag=in_bag)
    src = read_source(tmp_path)
    assert (src.kind, src.label_noise, src.widths, src.partitions, src.blocks) == (
        "train", [0.0, 0.2], [4, 8], ("test", "train"), [0, 1])
    for p in noisy:
        np.testing.assert_array_equal(src.noisy[p], noisy[p])
    assert sorted(src.in_bag) == [0, 3]
    np.testing.assert_array_equal(src.in_bag[3], [0, 9])
    assert src.logits == tmp_path / "logits"


def test_a_train_source_needs_its_flags_and_indices(tmp_path):
    with pytest.raises(ValueError, match="noisy flags and in-bag indices"):
        write_source(tmp_path, "train", [0.0], [4], ("test", "train"), {})


@pytest.mark.parametrize("name, axes", [
    ("noise-0.15_width-64", (0.15, 64)), ("width-8", (0.0, 8)), ("noise-0_width-1", (0.0, 1)),
])
def test_config_names_place_configs_on_the_sweep(name, axes):
    assert config_axes(name, 3, 0.5, 99, "f.npz") == axes


def test_one_unnamed_config_takes_the_params_axes():
    assert config_axes("ensemble", 1, 0.1, 16, "f.npz") == (0.1, 16)
    with pytest.raises(InputError, match=r"^f.npz: config 'resnet' does not name its place"):
        config_axes("resnet", 2, 0.0, 1, "f.npz")


def test_import_reads_back_exactly_and_decomposes_as_the_api(tmp_path):
    import biasvar
    from biasvar.analysis.tables import decompose_all

    arrays = _ensemble()
    logits = {w: _logits(w) for w in (4, 16)}
    for level in (0.0, 0.3):
        for w, x in logits.items():
            arrays[f"logits__noise-{level:g}_width-{w}"] = x + np.float32(level)
    np.savez(tmp_path / "mine.npz", **arrays)
    assert import_source(tmp_path / "mine.npz", tmp_path / "src") == {"configs": 4,
                                                                      "members": 4 * K}
    src = read_source(tmp_path / "src")
    assert (src.kind, src.label_noise, src.widths, src.partitions) == (
        "import", [0.0, 0.3], [4, 16], ("test",))
    assert src.in_bag is None and src.noisy == {} and src.blocks is None
    assert src.data["n_classes"] == C and src.file["path"] == str(tmp_path / "mine.npz")
    import hashlib

    assert src.file["sha256"] == hashlib.sha256((tmp_path / "mine.npz").read_bytes()).hexdigest()
    c = read_config(src.logits, 0.3, 16, "test")
    np.testing.assert_array_equal(c.logits, logits[16] + np.float32(0.3))
    np.testing.assert_array_equal(c.labels, arrays["labels"])
    np.testing.assert_array_equal(c.draws, arrays["draw"])
    np.testing.assert_array_equal(c.seeds, arrays["seed"])
    examples, summary, _ = decompose_all(src.logits, src.noisy, src.label_noise, src.widths,
                                         True, 0.95, 5, src.in_bag, src.partitions)
    ex = examples.to_pandas()
    assert set(ex.partition) == {"test"} and len(ex) == 4 * N
    one = ex[(ex.label_noise == np.float32(0.3)) & (ex.width == 4)].reset_index(drop=True)
    ref = biasvar.decompose(logits[4] + np.float32(0.3), labels=arrays["labels"],
                            draw=arrays["draw"], seed=arrays["seed"])
    for col in ("mse_bias2", "mse_var", "ce_bias", "ce_var", "var_sampling",
                "mse_bias2_unbiased"):
        np.testing.assert_allclose(one[col], ref[col], rtol=1e-12, atol=1e-15, err_msg=col)


def test_import_of_probabilities_and_of_a_npy_directory(tmp_path):
    """Probabilities are stored as log-probabilities (softmax gives them back); a
    directory of per-member .npy files is one config at the params' axes."""
    arrays = _ensemble(classes=2)
    z = np.random.default_rng(3).normal(size=(K, N, 2))
    probs = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    probs[0, 0] = [1.0, 0.0]  # an exact zero: log 0 must not reach the logits file
    np.savez(tmp_path / "p.npz", probs=probs, labels=arrays["labels"] % 2, draw=arrays["draw"])
    import_source(tmp_path / "p.npz", tmp_path / "a", label_noise=0.1, width=32)
    c = read_config(tmp_path / "a" / "logits", 0.1, 32, "test")
    back = np.exp(c.logits - c.logits.max(-1, keepdims=True))
    back /= back.sum(-1, keepdims=True)
    np.testing.assert_allclose(back, probs, atol=1e-6)
    d = tmp_path / "members"
    d.mkdir()
    for m in range(K):
        np.save(d / f"m{m}.npy", _logits(7)[m])
    np.save(d / "labels.npy", arrays["labels"])
    import_source(d, tmp_path / "b", label_noise=0.0, width=5)
    src = read_source(tmp_path / "b")
    assert (src.label_noise, src.widths) == ([0.0], [5])
    np.testing.assert_array_equal(read_config(src.logits, 0.0, 5).draws, np.arange(K))


def test_source_json_is_written_valid_and_names_the_format(tmp_path):
    np.savez(tmp_path / "e.npz", logits=_logits(1), **_ensemble())
    import_source(tmp_path / "e.npz", tmp_path / "s")
    meta = json.loads((tmp_path / "s" / "source.json").read_text())
    assert meta["version"] == 1 and meta["source"] == "import" and meta["blocks"] is None
