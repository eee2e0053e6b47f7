"""What a product costs on each kernel set: a model that the size/speed objective uses to
choose each layer's format and layout, the same choice every time on one kind of CPU.

The time of a one-thread matrix-vector product is modelled as
    per_call + per_row * rows + per_entry * entries        (nanoseconds)
where entries are the stored entries (HCSR: nnz; the other formats and dense: every weight).
The numbers were measured once per kernel set with tools/measure_costs.py (a fit over layers
of 64 to 4.2 M weights) and are written down here, so tests can pin the choices.
"""
from __future__ import annotations

from ..matrix.formats import HAM, HCSR, CompressedMatrix, IndexMap

# kind: (per_call, per_row, per_entry) in ns, through the native call (no Python wrapper).
# Measured 2026-12-04 on an AMD EPYC family 23 model 1 (Zen 1, AVX2, 2 vCPUs); "dense" is
# numpy's sgemv (OpenBLAS, one thread).  The fits are within 35% of every measured point
# (layers of 64 to 4.2 M weights), except the row layouts (up to 78%: their per-row cost
# depends on the decode tables) and dense (up to 54%: from cache on small layers, from
# memory on large ones): good enough to rank forms whose times differ severalfold.
COSTS = {
    "avx2": {
        "dense": (1714, 0.0, 0.1252),
        "ham-lanes": (2346, 0.0, 2.2220),
        "ham-rows": (0, 721.3, 1.1462),
        "hcsr-fixed": (1817, 3.4, 1.5543),
        "hcsr-lanes": (2236, 39.6, 6.1538),
        "hcsr-rows": (568, 325.5, 2.4038),
        "indexmap4": (2238, 8.0, 0.2475),
        "indexmap6": (1961, 65.8, 0.5704),
        "indexmap8": (2557, 0.0, 1.1302),
    },
    "scalar": {
        "dense": (1576, 0.0, 0.1161),
        "ham-lanes": (2697, 0.0, 9.1573),
        "ham-rows": (1466, 106.5, 6.8790),
        "hcsr-fixed": (1921, 4.7, 1.2300),
        "hcsr-lanes": (2077, 0.0, 13.4636),
        "hcsr-rows": (760, 279.8, 2.5491),
        "indexmap4": (1323, 146.8, 2.3056),
        "indexmap6": (1921, 7.2, 2.9470),
        "indexmap8": (1424, 62.9, 2.3720),
    },
}
# Sets without measurements of their own: AVX-512 is unmeasured (no such CPU here); its
# kernels are at least as fast as AVX2's, so the AVX2 model is a safe guess.
FALLBACK = {"avx512": "avx2"}


def kind(m: CompressedMatrix | None) -> str:
    """The cost model's name for a matrix's storage; None: dense float32."""
    if m is None:
        return "dense"
    if isinstance(m, IndexMap):
        bits = m.info()["index_bits"]
        return "indexmap4" if bits <= 4 else "indexmap6" if bits <= 6 else "indexmap8"
    name = "ham" if isinstance(m, HAM) else "hcsr"
    return f"{name}-{m.layout}"


def stored_entries(m: CompressedMatrix) -> int:
    return m.nnz if isinstance(m, HCSR) else m.size


def table(isa: str | None = None) -> dict:
    from .. import _core

    isa = isa or _core.isa()
    isa = FALLBACK.get(isa, isa)
    if isa not in COSTS:
        raise ValueError(f"no cost model for the {isa!r} kernels; measured: {sorted(COSTS)}")
    return COSTS[isa]


def expected_ns(m: CompressedMatrix | None, shape: tuple[int, int] | None = None,
                isa: str | None = None) -> float:
    """Modelled one-thread matvec time of m (None: the dense float32 matrix of `shape`)."""
    rows, cols = shape if m is None else m.shape
    entries = rows * cols if m is None else stored_entries(m)
    call, row, entry = table(isa)[kind(m)]
    return call + row * rows + entry * entries
