"""Magnitude pruning, per matrix or with one threshold across matrices."""
from __future__ import annotations

import numpy as np

from ..matrix.checks import check_finite, real_array


def _as_float(W, name):
    W = real_array(W, name)
    W = np.array(W, dtype=np.result_type(W.dtype, np.float32))
    check_finite(W, name)
    return W


def _check_amount(amount) -> float:
    if isinstance(amount, bool) or not 0.0 <= float(amount) <= 1.0:
        raise ValueError(f"amount must be in [0, 1], got {amount!r}")
    return float(amount)


def _prune_flat(magnitudes: np.ndarray, amount: float) -> np.ndarray:
    """Keep-mask removing the round(amount * n) smallest magnitudes; among equal
    magnitudes the earlier entries go first, so exactly that many are removed."""
    n_prune = int(round(amount * magnitudes.size))
    keep = np.ones(magnitudes.size, bool)
    if n_prune:
        keep[np.argsort(magnitudes, kind="stable")[:n_prune]] = False
    return keep


def prune(W, amount: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero the `round(amount * W.size)` entries of smallest magnitude.

    Returns (pruned copy, mask) with mask True where a weight is kept.  Pruned entries
    are +0.0; the input is left untouched."""
    amount = _check_amount(amount)
    W = _as_float(W, "W")
    mask = _prune_flat(np.abs(W).ravel(), amount).reshape(W.shape)
    W[~mask] = 0
    return W, mask


def prune_global(matrices, amount: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Magnitude pruning with one threshold across several matrices: the
    `round(amount * total size)` smallest magnitudes of all of them are zeroed (ties in
    the order the matrices are given).  Returns (pruned copies, masks)."""
    amount = _check_amount(amount)
    mats = [_as_float(W, f"matrices[{i}]") for i, W in enumerate(matrices)]
    if not mats:
        raise ValueError("prune_global needs at least one matrix")
    keep = _prune_flat(np.concatenate([np.abs(W).ravel() for W in mats]), amount)
    masks, start = [], 0
    for W in mats:
        mask = keep[start:start + W.size].reshape(W.shape)
        W[~mask] = 0
        masks.append(mask)
        start += W.size
    return mats, masks
