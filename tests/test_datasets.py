"""The real datasets: Fashion-MNIST from the Debian package dataset-fashion-mnist and the
KIBA sample of pydebiaseddta, both installed by the test set-up (see README)."""
import csv
import gzip
import os

import numpy as np
import pytest

from compactnn.evaluation import datasets
from compactnn.evaluation.datasets import (PROTEIN_CHARS, PROTEIN_LEN, PROTEIN_VOCAB, SMILES_CHARS,
                                SMILES_LEN, SMILES_VOCAB, encode, fashion_mnist, kiba_sample)

FASHION_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


# -- Fashion-MNIST -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fashion():
    return fashion_mnist()


def test_fashion_mnist_shapes_types_and_classes(fashion):
    X, y, Xt, yt = fashion
    assert X.shape == (60000, 28, 28) and Xt.shape == (10000, 28, 28)
    assert X.dtype == Xt.dtype == np.float32 and y.dtype == yt.dtype == np.int64
    for images in (X, Xt):
        assert images.min() == 0.0 and images.max() == 1.0
        # bytes / 255: every value is a multiple of 1/255
        sample = images[:100]
        assert np.allclose(sample * 255, np.round(sample * 255), atol=1e-4)
    assert np.array_equal(np.bincount(y), np.full(10, 6000))
    assert np.array_equal(np.bincount(yt), np.full(10, 1000))
    assert not np.array_equal(X[0], X[1])  # real images, not one repeated


def test_fashion_mnist_missing_package_names_the_install(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPACTNN_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(ImportError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist()


def _copy_with(tmp_path, name, payload: bytes):
    """The package's Fashion-MNIST directory linked into tmp_path, `name` replaced by the
    gzipped `payload`."""
    for f in FASHION_FILES:
        os.symlink(os.path.join(datasets.FASHION_MNIST_DIR, f), tmp_path / f)
    (tmp_path / name).unlink()
    with gzip.open(tmp_path / name, "wb") as f:
        f.write(payload)
    return str(tmp_path / name)


def _idx_header(magic: int, *dims: int) -> bytes:
    return np.array([magic, *dims], ">u4").tobytes()


@pytest.mark.parametrize("name, payload, message", [
    ("t10k-labels-idx1-ubyte.gz", _idx_header(0x0803, 10000, 28, 28), "magic number"),
    ("train-labels-idx1-ubyte.gz", b"\0\0", "shorter than an IDX header"),
    ("train-images-idx3-ubyte.gz", _idx_header(0x0803, 60000, 28, 28) + bytes(100),
     "the file holds 100"),
    ("t10k-images-idx3-ubyte.gz", _idx_header(0x0803, 2, 28, 28) + bytes(2 * 784),
     r"expected \(10000, 28, 28\)"),
    ("t10k-labels-idx1-ubyte.gz", _idx_header(0x0801, 10000) + bytes([12]) * 10000,
     "label 12"),
])
def test_malformed_idx_file_is_named(tmp_path, monkeypatch, name, payload, message):
    path = _copy_with(tmp_path, name, payload)
    monkeypatch.setenv("COMPACTNN_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(ValueError, match=message) as e:
        fashion_mnist()
    assert path in str(e.value)


def test_file_that_is_not_gzip_is_named(tmp_path, monkeypatch):
    path = _copy_with(tmp_path, "train-labels-idx1-ubyte.gz", b"")
    with open(path, "wb") as f:
        f.write(b"plain bytes, not gzip")
    monkeypatch.setenv("COMPACTNN_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="not a readable gzip file") as e:
        fashion_mnist()
    assert path in str(e.value)


# -- KIBA sample ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kiba():
    return kiba_sample()


def _csv_rows(split):
    with open(os.path.join(datasets._kiba_dir(), f"{split}.csv"), newline="") as f:
        return list(csv.DictReader(f))


def _decode(codes, chars):
    return "".join(chars[c - 1] for c in codes if c)


def test_vocabularies():
    assert len(set(SMILES_CHARS)) == len(SMILES_CHARS) == 64  # DeepDTA's CHARISOSMISET
    assert len(set(PROTEIN_CHARS)) == len(PROTEIN_CHARS) == 25  # DeepDTA's CHARPROTSET
    assert (SMILES_VOCAB, PROTEIN_VOCAB) == (66, 27)
    assert (SMILES_LEN, PROTEIN_LEN) == (100, 1000)


def test_kiba_splits_shapes_and_types(kiba):
    assert set(kiba) == {"train", "val", "test"}
    for split, n in (("train", 3000), ("val", 1000), ("test", 1000)):
        drugs, proteins, y = kiba[split]
        assert drugs.shape == (n, SMILES_LEN) and proteins.shape == (n, PROTEIN_LEN)
        assert drugs.dtype == proteins.dtype == np.int64 and y.dtype == np.float32
        assert y.shape == (n,) and np.all(np.isfinite(y))
        assert 5 < y.min() < y.max() < 20  # KIBA scores
        assert drugs.min() == 0 and drugs.max() < SMILES_VOCAB
        assert proteins.min() == 0 and proteins.max() < PROTEIN_VOCAB


def test_kiba_encoding_matches_the_csv(kiba):
    for split in ("train", "test"):
        drugs, proteins, y = kiba[split]
        rows = _csv_rows(split)
        for codes, length, chars, key in ((drugs, SMILES_LEN, SMILES_CHARS, "smiles"),
                                          (proteins, PROTEIN_LEN, PROTEIN_CHARS, "aa_sequence")):
            lengths = np.array([min(len(r[key]), length) for r in rows])
            # the codes are a nonzero prefix of the string's length, then 0 padding
            assert np.array_equal((codes != 0).sum(1), lengths)
            assert np.array_equal(codes != 0, np.arange(length) < lengths[:, None])
            for i in (0, 1, len(rows) - 1):
                assert _decode(codes[i], chars) == rows[i][key][:length]
        assert np.allclose(y, [float(r["affinity_score"]) for r in rows])
    # some training SMILES and sequences are longer than DeepDTA's lengths: cut, not dropped
    drugs, proteins, _ = kiba["train"]
    assert (drugs[:, -1] != 0).any()
    assert (proteins[:, -1] != 0).any()


def test_unknown_characters_get_their_own_code():
    codes = encode(["C?c", "é"], SMILES_CHARS, 5)
    c, lower_c = SMILES_CHARS.index("C") + 1, SMILES_CHARS.index("c") + 1
    unknown = len(SMILES_CHARS) + 1
    assert unknown == SMILES_VOCAB - 1
    assert codes.tolist() == [[c, unknown, lower_c, 0, 0], [unknown, 0, 0, 0, 0]]


def test_kiba_missing_package_names_the_install(monkeypatch):
    monkeypatch.setattr(datasets, "_kiba_dir", lambda: None)
    with pytest.raises(ImportError, match=r"pip install --no-deps pydebiaseddta==0\.1\.0"):
        kiba_sample()


def test_kiba_lookup_without_the_package(monkeypatch):
    monkeypatch.setattr(datasets.importlib.util, "find_spec", lambda name: None)
    assert datasets._kiba_dir() is None


def _pairs(part):
    """Each pair of a part as one bytes key (drug codes, protein codes, score)."""
    drugs, proteins, y = part
    return [d.tobytes() + p.tobytes() + s.tobytes() for d, p, s in zip(drugs, proteins, y)]


def test_kiba_warm_split_is_a_seeded_random_split_of_all_pairs(kiba):
    warm = kiba_sample("warm")
    assert set(warm) == {"train", "val", "test"}
    for split in warm:
        assert [a.shape for a in warm[split]] == [a.shape for a in kiba[split]]
        assert [a.dtype for a in warm[split]] == [a.dtype for a in kiba[split]]
    every = sorted(sum((_pairs(kiba[s]) for s in kiba), []))
    parts = {s: _pairs(warm[s]) for s in warm}
    assert sorted(sum(parts.values(), [])) == every  # all 5,000 pairs, each once
    assert len(set(every)) == 5000  # so the parts are disjoint
    # random: every cold part's pairs are spread over the warm parts
    cold_test = set(_pairs(kiba["test"]))
    assert all(100 < len(cold_test & set(p)) < 900 for p in parts.values())
    # the cold test pairs' drugs are all new to training, nearly none of the warm ones are
    for split, seen in ((kiba, 0.0), (warm, 0.95)):
        train_drugs = {d.tobytes() for d in split["train"][0]}
        share = np.mean([d.tobytes() in train_drugs for d in split["test"][0]])
        assert share == 0.0 if seen == 0.0 else share > seen
    # reproducible, and another seed is another split
    assert all(np.array_equal(a, b) for s in warm
               for a, b in zip(warm[s], kiba_sample("warm", seed=0)[s]))
    assert _pairs(kiba_sample("warm", seed=1)["test"]) != parts["test"]


def test_kiba_unknown_split():
    with pytest.raises(ValueError, match=r"split must be one of \('cold', 'warm'\), got 'hot'"):
        kiba_sample("hot")
