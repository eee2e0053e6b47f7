"""Published upper bounds of psi, the ratio of a format's bits to the dense matrix's
32 bits per entry, for an n x m matrix with k distinct values and density s.

HAM and sHAM: Marino et al., "Compact representations of convolutional neural networks
via weight pruning and quantization" (2021), with B = 32-bit words.  The sHAM bound is the
CSC one (index arrays of B-bit words) with the stored values Huffman coded instead.
"""
from __future__ import annotations

import math

WORD_BITS = 32


def _check(n: int, m: int, k: int) -> None:
    if n <= 0 or m <= 0:
        raise ValueError(f"bounds need a non-empty matrix, got {n} x {m}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def ham(n: int, m: int, k: int) -> float:
    """psi <= (1 + log2 k) / B + 6k / (n m): Huffman codes average under entropy + 1 bits,
    plus about 6 words per codebook entry for the codebook and code."""
    _check(n, m, k)
    return (1 + math.log2(k)) / WORD_BITS + 6 * k / (n * m)


def sham(n: int, m: int, k: int, nnz: int) -> float:
    """psi <= s (1 + log2 k) / B + 6k / (n m) + (q + m + 1) / (n m), with q = nnz stored
    entries and s = q / (n m): coded values plus a word per index and per pointer.

    For the row orientation (HCSR) the m + 1 column pointers become n + 1 row pointers;
    use `sham(m, n, k, nnz)` (psi is symmetric in the rest)."""
    _check(n, m, k)
    s = nnz / (n * m)
    return s * (1 + math.log2(k)) / WORD_BITS + 6 * k / (n * m) + (nnz + m + 1) / (n * m)


def csc(n: int, m: int, nnz: int) -> float:
    """psi = (2q + m + 1) / (n m): one word per value, per row index and per column pointer."""
    _check(n, m, 1)
    return (2 * nnz + m + 1) / (n * m)


def csr(n: int, m: int, nnz: int) -> float:
    """psi = (2q + n + 1) / (n m), the row-oriented twin of `csc`."""
    return csc(m, n, nnz)


def index_map(n: int, m: int, k: int) -> float:
    """psi = (32 k + ceil(log2 k) n m) / (32 n m): the codebook plus a b-bit index each."""
    _check(n, m, k)
    return (WORD_BITS * k + math.ceil(math.log2(k)) * n * m) / (WORD_BITS * n * m)
