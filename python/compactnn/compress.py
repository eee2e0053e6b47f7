"""One call from a trained matrix to a compressed one, and a size report over formats."""
from __future__ import annotations

import sys
import time

import numpy as np

from . import bounds
from ._checks import codebook_and_indices, finite_matrix
from .cer import CER, CSER
from .formats import HAM, HCSR, CompressedMatrix, IndexMap
from .prune import prune as _prune
from .quantize import cws, ecsq, pws, uq

QUANTIZERS = {"cws": cws, "pws": pws, "uq": uq, "ecsq": ecsq}
# Ties in size go to the format whose products are faster (compactnn bench).
CANDIDATES = (IndexMap, HCSR, HAM)
_NAMES = {"indexmap": IndexMap, "im": IndexMap, "ham": HAM, "hcsr": HCSR, "sham": HCSR}


def compress(W, prune: float = 0.9, quantize: str | None = "cws", k: int = 32,
             format="auto", **quantizer_options) -> CompressedMatrix:
    """Prune by magnitude, quantize by weight sharing, and store in a compact format.

    prune: fraction of weights set to zero (0 for none).  quantize: "cws", "pws", "uq",
    "ecsq" (their options, e.g. bits= for ecsq, pass through), or None when W already has
    at most 65536 distinct values.  format: "auto" keeps the smallest candidate by exact
    nbytes; "fastest" the fastest (timed here, on this machine) among those within 10% of
    the smallest; or a format class or name ("indexmap", "ham", "hcsr")."""
    W = finite_matrix(W)
    if prune:
        W, _ = _prune(W, prune)
    if quantize is None:
        codebook, idx = codebook_and_indices(W)
    elif quantize in QUANTIZERS:
        q = QUANTIZERS[quantize]
        if quantize == "ecsq" and not {"lam", "bits"} & set(quantizer_options):
            quantizer_options["lam"] = 0.0
        codebook, idx = q(W, k, **quantizer_options)
    else:
        raise ValueError(f"quantize must be one of {sorted(QUANTIZERS)} or None, got {quantize!r}")
    return _choose([f.from_codebook(codebook, idx) for f in _formats(format)], format)


def _formats(format):
    if isinstance(format, type) and issubclass(format, CompressedMatrix):
        return (format,)
    if format in ("auto", "fastest"):
        return CANDIDATES
    if isinstance(format, str) and format.lower() in _NAMES:
        return (_NAMES[format.lower()],)
    raise ValueError(f"format must be 'auto', 'fastest', a format class or one of "
                     f"{sorted(_NAMES)}, got {format!r}")


def _choose(candidates, format):
    smallest = min(candidates, key=lambda m: m.nbytes)  # min keeps the first of ties
    if format != "fastest":
        return smallest
    close = [m for m in candidates if m.nbytes <= 1.1 * smallest.nbytes]
    x = np.random.default_rng(0).standard_normal(smallest.shape[1]).astype(np.float32)
    return min(close, key=lambda m: _quick_time(m, x))


def _quick_time(m, x) -> float:
    m.dot(x)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        m.dot(x)
        best = min(best, time.perf_counter() - t)
    return best


def report(W, file=sys.stdout) -> list[dict]:
    """Print, for one quantized matrix (at most 65536 distinct values), its size in every
    format with psi (bytes over dense float32 bytes), bits per weight and the published
    bound where there is one; returns the rows."""
    W = finite_matrix(W)
    n, m = W.shape
    if W.size == 0:
        raise ValueError("report needs a non-empty matrix")
    rows = []

    def add(name, nbytes, bound=None):
        rows.append(dict(format=name, bytes=int(nbytes), psi=nbytes / W.nbytes,
                         bits=8 * nbytes / W.size, bound=bound))

    fmts = {f.__name__: f.from_dense(W) for f in (IndexMap, HAM, HCSR)}
    k, nnz = fmts["IndexMap"].k, fmts["HCSR"].nnz
    add("dense float32", W.nbytes, 1.0)
    add("IndexMap", fmts["IndexMap"].nbytes, bounds.index_map(n, m, k))
    add("HAM", fmts["HAM"].nbytes, bounds.ham(n, m, k))
    add("HCSR (sHAM, rows)", fmts["HCSR"].nbytes, bounds.sham(m, n, k, nnz))
    # scipy's CSR and CSC with float32 values and int32 indices
    add("CSR (scipy)", 8 * nnz + 4 * (n + 1), bounds.csr(n, m, nnz))
    add("CSC (scipy)", 8 * nnz + 4 * (m + 1), bounds.csc(n, m, nnz))
    add("CER", CER(W).nbytes)
    add("CSER", CSER(W).nbytes)
    print(f"{n} x {m} matrix, k = {k} distinct values, {nnz} nonzeros "
          f"(density {nnz / W.size:.4f})", file=file)
    print("| format | bytes | psi | bits/weight | bound on psi |", file=file)
    print("|---|---:|---:|---:|---:|", file=file)
    for r in rows:
        b = f"{r['bound']:.4f}" if r["bound"] is not None else ""
        print(f"| {r['format']} | {r['bytes']:,} | {r['psi']:.4f} | {r['bits']:.3f} | {b} |",
              file=file)
    return rows
