"""Conversion and validation of user input, shared by the formats and the pipeline."""
from __future__ import annotations

import numpy as np

MAX_CODEBOOK = 65536


def real_array(a, name: str) -> np.ndarray:
    """`a` as an array of real numbers (bool, int or float); TypeError otherwise."""
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def float32_input(a, name: str) -> np.ndarray:
    """A C-contiguous float32 copy (or view) of real-valued input."""
    return np.ascontiguousarray(real_array(a, name), dtype=np.float32)


def finite_matrix(W, name: str = "W") -> np.ndarray:
    """`W` as a C-contiguous 2-D float32 matrix of finite values."""
    arr = real_array(W, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got {arr.ndim}-D with shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    check_finite(arr, name)
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} holds {int(bad.sum())} non-finite values (NaN or inf), "
            f"the first at {where}: {arr[where]}"
        )


def check_codebook_size(k: int, what: str) -> None:
    if k > MAX_CODEBOOK:
        raise ValueError(
            f"{what} has {k} distinct values; at most {MAX_CODEBOOK} are supported: "
            "quantize it first (weight sharing, e.g. compactnn.cws)"
        )


def codebook_and_indices(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a finite float32 array, sorted, and the index of each entry.

    Values are told apart by their bits, so -0.0 and 0.0 stay distinct and the array
    is rebuilt bit for bit.  One hashing pass in C++: the only large allocation is the
    uint32 index array (np.unique's sort would need about 8 times the input).
    """
    from .. import _core

    if values.size == 0:
        return np.zeros(1, np.float32), np.zeros(values.shape, np.uint32)
    bits = np.ascontiguousarray(values, np.float32).view(np.uint32).reshape(-1)
    codebook, idx = _core.distinct_values(bits)
    return codebook, idx.reshape(values.shape)
