"""Magnitude pruning."""
from __future__ import annotations

import numpy as np

from ._checks import check_finite, real_array


def prune(W, amount: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero the `round(amount * W.size)` entries of smallest magnitude.

    Returns (pruned copy, mask) with mask True where a weight is kept.  Among equal
    magnitudes the earlier entries (row-major) are pruned first, so exactly that many are
    removed.  Pruned entries are +0.0.
    """
    W = real_array(W, "W")
    if not 0.0 <= float(amount) <= 1.0:
        raise ValueError(f"amount must be in [0, 1], got {amount}")
    W = np.array(W, dtype=np.result_type(W.dtype, np.float32))
    check_finite(W, "W")
    n_prune = int(round(float(amount) * W.size))
    mask = np.ones(W.shape, bool)
    if n_prune:
        order = np.argsort(np.abs(W).ravel(), kind="stable")
        mask.ravel()[order[:n_prune]] = False
    W[~mask] = 0
    return W, mask
