"""One call from a trained matrix to a compressed one: prune, quantize, choose a format."""
from __future__ import annotations

import time

import numpy as np

from ..matrix.checks import codebook_and_indices, finite_matrix
from ..matrix.formats import HAM, HCSR, CompressedMatrix, IndexMap
from .prune import prune as _prune
from .quantize import cws, ecsq, pws, uq

QUANTIZERS = {"cws": cws, "pws": pws, "uq": uq, "ecsq": ecsq}
# Ties in size go to the format whose products are faster (compactnn bench).
CANDIDATES = (IndexMap, HCSR, HAM)
FORMAT_NAMES = {"indexmap": IndexMap, "im": IndexMap, "ham": HAM, "hcsr": HCSR, "sham": HCSR}


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
    return choose([f.from_codebook(codebook, idx) for f in formats_for(format)], format)


def formats_for(format):
    if isinstance(format, type) and issubclass(format, CompressedMatrix):
        return (format,)
    if format in ("auto", "fastest"):
        return CANDIDATES
    if isinstance(format, str) and format.lower() in FORMAT_NAMES:
        return (FORMAT_NAMES[format.lower()],)
    raise ValueError(f"format must be 'auto', 'fastest', a format class or one of "
                     f"{sorted(FORMAT_NAMES)}, got {format!r}")


def choose(candidates, format):
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
