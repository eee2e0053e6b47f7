"""CER and CSER (Wiedemann et al., "Compact and computationally efficient representation of
deep neural networks", 2019), for size accounting and a reference product.

Both keep the codebook Omega ordered by decreasing frequency and leave its most frequent
value (usually 0) implicit; every other entry is stored as its column index, grouped per row
by value, so a row's product multiplies each distinct value once:
y_i = sum over groups g of row i of Omega[g] * sum(x[j] for j in g).

- CER: per row, group pointers for value ranks 1..R_i (R_i: the row's largest rank; empty
  groups keep a pointer), so the value of a group is implied by its position.
- CSER: per row, only the non-empty groups, each with an explicit value index.

Index arrays are counted with the smallest of 8, 16 or 32 bits per element that holds their
largest value; Omega with 32 bits per value.
"""
from __future__ import annotations

import numpy as np

from ..matrix.checks import codebook_and_indices, finite_matrix


def _width(top: int) -> int:
    """Bytes of the smallest unsigned integer (8, 16 or 32 bits) that holds `top`."""
    return 1 if top < 2**8 else 2 if top < 2**16 else 4


class _Grouped:
    """Entries other than the most frequent value, sorted by (row, value rank, column)."""

    def __init__(self, W):
        W = finite_matrix(W)
        self.shape = W.shape
        codebook, idx = codebook_and_indices(W)
        counts = np.bincount(idx.ravel(), minlength=len(codebook))
        order = np.argsort(-counts, kind="stable")  # rank 0: most frequent, implicit
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        self.omega = codebook[order]
        r = rank[idx]
        rows, cols = np.nonzero(r)
        ranks = r[rows, cols]
        key = np.lexsort((cols, ranks, rows))
        self.rows, self.ranks, self.col = rows[key], ranks[key], cols[key]
        new = np.ones(len(self.rows), bool)  # groups: runs of equal (row, rank)
        new[1:] = (self.rows[1:] != self.rows[:-1]) | (self.ranks[1:] != self.ranks[:-1])
        self.group_start = np.flatnonzero(new)
        self.group_row = self.rows[self.group_start]
        self.group_rank = self.ranks[self.group_start]

    @property
    def nnz(self) -> int:
        return len(self.col)

    def dot(self, x) -> np.ndarray:
        """Reference product: each group's x entries summed, then times its value once."""
        x = np.asarray(x, np.float64)
        if x.shape != (self.shape[1],):
            raise ValueError(f"x must have shape ({self.shape[1]},), got {x.shape}")
        y = np.zeros(self.shape[0])
        if len(self.col):
            sums = np.add.reduceat(x[self.col], self.group_start)
            np.add.at(y, self.group_row, sums * self.omega[self.group_rank])
        if self.omega[0] != 0:  # the implicit value sits wherever nothing is stored
            stored = np.zeros(self.shape[0])
            np.add.at(stored, self.rows, x[self.col])
            y += self.omega[0] * (x.sum() - stored)
        return y

    def _index_bytes(self) -> int:
        return 4 * len(self.omega) + _width(max(self.shape[1] - 1, 0)) * self.nnz


class CER(_Grouped):
    """Compressed Entropy Row: per row a group pointer for every value rank up to the
    row's largest, so group values are implied by position."""

    @property
    def nbytes(self) -> int:
        max_rank = np.zeros(self.shape[0], np.int64)
        np.maximum.at(max_rank, self.group_row, self.group_rank)
        n_ptr = int(max_rank.sum()) + 1
        return (self._index_bytes() + _width(self.nnz) * n_ptr
                + _width(n_ptr) * (self.shape[0] + 1))


class CSER(_Grouped):
    """Compressed Shared Elements Row: non-empty groups only, each with its value index."""

    @property
    def nbytes(self) -> int:
        n_groups = len(self.group_start)
        return (self._index_bytes() + _width(len(self.omega)) * n_groups
                + _width(self.nnz) * (n_groups + 1) + _width(n_groups + 1) * (self.shape[0] + 1))
