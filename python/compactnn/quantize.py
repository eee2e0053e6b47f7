"""Weight sharing: replace a matrix's values by a small codebook."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import MAX_CODEBOOK, check_finite, real_array


@dataclass(frozen=True)
class Quantized:
    """`codebook[indices]` is the quantized matrix; formats take it via `from_codebook`."""

    codebook: np.ndarray  # float32, (k,)
    indices: np.ndarray  # uint32, the matrix's shape

    def to_dense(self) -> np.ndarray:
        return self.codebook[self.indices]


def cws(W, k: int, *, keep_zero: bool = True, max_iter: int = 300) -> Quantized:
    """k-means weight sharing: one-dimensional Lloyd iterations from quantile centroids.

    Runs on the sorted values with prefix sums, so an iteration costs O(k log n) after one
    sort.  With `keep_zero`, entries equal to 0 stay exactly 0 as a symbol of their own and
    the other values get k - 1 centroids (k when there are no zeros).  Deterministic.
    """
    W = real_array(W, "W")
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= MAX_CODEBOOK:
        raise ValueError(f"k must be an integer in 1..{MAX_CODEBOOK}, got {k!r}")
    W = np.asarray(W, dtype=np.float64)
    check_finite(W, "W")
    zero = (W == 0) if keep_zero else np.zeros(W.shape, bool)
    has_zero = bool(zero.any())
    values = np.sort(W[~zero])
    n_centroids = k - 1 if has_zero else k
    if values.size == 0 or n_centroids == 0:
        centroids = np.zeros(0) if values.size == 0 else np.array([values.mean()])
    else:
        centroids = _lloyd_1d(values, n_centroids, max_iter)
    if has_zero and values.size and n_centroids == 0:
        raise ValueError("k=1 with keep_zero leaves no value for the nonzero weights")
    bounds = (centroids[:-1] + centroids[1:]) / 2
    idx = np.searchsorted(bounds, W).astype(np.uint32)
    codebook = centroids.astype(np.float32)
    if has_zero:
        codebook = np.append(codebook, np.float32(0))
        idx[zero] = len(codebook) - 1
    if codebook.size == 0:
        codebook = np.zeros(1, np.float32)
    return Quantized(codebook, idx)


def _lloyd_1d(s: np.ndarray, k: int, max_iter: int) -> np.ndarray:
    """k centroids (fewer only if `s` has fewer distinct values) of sorted values `s`.

    A cluster that empties is replaced by splitting the cluster of largest squared error.
    """
    n = len(s)
    k = min(k, int(np.count_nonzero(np.diff(s))) + 1)
    prefix = np.concatenate(([0.0], np.cumsum(s)))
    prefix2 = np.concatenate(([0.0], np.cumsum(s * s)))
    edges = np.linspace(0, n, k + 1).round().astype(np.int64)
    c = (prefix[edges[1:]] - prefix[edges[:-1]]) / np.maximum(np.diff(edges), 1)
    for _ in range(max_iter):
        cut = np.searchsorted(s, (c[:-1] + c[1:]) / 2, side="right")
        starts = np.concatenate(([0], cut))
        ends = np.concatenate((cut, [n]))
        keep = ends > starts
        starts, ends = list(starts[keep]), list(ends[keep])
        while len(starts) < k:  # re-seed emptied clusters
            a, b = np.array(starts), np.array(ends)
            sse = prefix2[b] - prefix2[a] - (prefix[b] - prefix[a]) ** 2 / (b - a)
            sse[b - a < 2] = -1
            j = int(np.argmax(sse))
            mid = (starts[j] + ends[j]) // 2
            starts.insert(j + 1, mid)
            ends.insert(j, mid)
        a, b = np.array(starts), np.array(ends)
        new = (prefix[b] - prefix[a]) / (b - a)
        if np.array_equal(new, c):
            break
        c = new
    return c
