"""The forms the runtime keeps a model's matrices in while it runs.

A file stores each matrix in the form its objective chose, usually the smallest (a Huffman-
coded HCSR, say): right for disk and transfer, but decoding Huffman codes is the slowest
product there is.  With forms="fast" (the default) the runtime re-encodes, once at load,
each matrix whose weights an Index Map or HCSR's fixed layout multiplies much faster by the
cost model of this CPU's kernels (compression/costs.py): the same weights, bit for bit, still
compressed (at most a quarter of their float32 bytes).  forms="stored" keeps the file's forms:
the least memory."""
from __future__ import annotations

from ..compression.costs import expected_ns
from ..matrix.formats import HCSR, CompressedMatrix, IndexMap

FORMS = ("fast", "stored")
SPEEDUP = 1.5  # a re-encoded matrix must be modelled at least this much faster


def check_forms(forms) -> str:
    if forms not in FORMS:
        raise ValueError(f"forms must be one of {list(FORMS)}, got {forms!r}")
    return forms


def _alternatives(m: CompressedMatrix):
    """m's weights as an Index Map and in HCSR's fixed layout, where they can be."""
    try:
        yield m if isinstance(m, IndexMap) else m.to(IndexMap)
    except ValueError:  # a codebook too large for an Index Map
        pass
    try:
        h = m if isinstance(m, HCSR) else m.to(HCSR)
        yield h if h.layout == "fixed" else h.with_layout("fixed")
    except ValueError:  # more than 32 values, or no zero among them
        pass


def fastest(m: CompressedMatrix) -> CompressedMatrix:
    """m, or its weights in the form the cost model ranks fastest, if that is at least SPEEDUP
    times faster and takes at most a quarter of the float32 bytes (or no more than m)."""
    limit = max(m.nbytes, m.nbytes_dense // 4)
    best, best_ns = m, expected_ns(m) / SPEEDUP
    for alt in _alternatives(m):
        ns = expected_ns(alt)
        if alt.nbytes <= limit and ns < best_ns:
            best, best_ns = alt, ns
    return best


def in_memory(matrices: dict[str, CompressedMatrix], forms: str) -> dict[str, CompressedMatrix]:
    """The matrices the runtime multiplies by, for `forms` ("fast" or "stored")."""
    if check_forms(forms) == "stored":
        return matrices
    return {name: fastest(m) for name, m in matrices.items()}
