"""What a product costs on each kernel set: a model that the size/speed objective uses to
choose each layer's format and layout, the same choice every time on one kind of CPU.

The time of a one-thread matrix-vector product is modelled as
    per_call + per_row * rows + per_entry * entries        (nanoseconds)
where entries are the stored entries (HCSR: nnz; the other formats and dense: every weight).
The numbers were measured once per kernel set with tools/measure_costs.py (a fit over layers
of 64 to 4.2 M weights) and are written down here, so tests can pin the choices.
"""
from __future__ import annotations

from ..matrix.formats import HCSR, CompressedMatrix, IndexMap, form_name

# kind: (per_call, per_row, per_entry) in ns, through the native call (no Python wrapper).
# Measured 2026-12-04 on an AMD EPYC family 23 model 1 (Zen 1, AVX2, 2 vCPUs); "dense" is
# numpy's sgemv (OpenBLAS, one thread).  The fits are within 41% of every measured point
# (layers of 64 to 4.2 M weights), except HAM's row layout (up to 76%) and dense (up to
# 55%: from cache on small layers, from memory on large ones): good enough to rank forms
# whose times differ severalfold, which is what they are for.
COSTS = {
    "avx2": {
        "dense": (1553, 0.0, 0.1205),
        "ham-lanes": (2424, 0.0, 2.1057),
        "ham-rows": (0, 608.5, 1.0624),
        "ham-rows-untabled": (0, 527.6, 3.9763),
        "hcsr-fixed": (1831, 5.2, 1.4904),
        "hcsr-lanes": (2420, 9.1, 5.9311),
        "hcsr-rows": (9078, 99.7, 2.6910),
        "hcsr-rows-untabled": (1913, 0.0, 13.8138),
        "indexmap4": (2239, 4.3, 0.2451),
        "indexmap6": (1843, 63.2, 0.5478),
        "indexmap8": (2755, 0.0, 1.1009),
    },
    "scalar": {
        "dense": (1483, 0.0, 0.1072),
        "ham-lanes": (2451, 0.0, 9.0214),
        "ham-rows": (1478, 67.7, 6.6904),
        "ham-rows-untabled": (0, 317.2, 5.6624),
        "hcsr-fixed": (1861, 3.9, 1.2111),
        "hcsr-lanes": (1914, 0.0, 13.4767),
        "hcsr-rows": (23587, 74.9, 2.7652),
        "hcsr-rows-untabled": (1685, 0.0, 14.3790),
        "indexmap4": (2001, 8.4, 2.1293),
        "indexmap6": (1961, 15.6, 2.5529),
        "indexmap8": (1651, 29.0, 2.1426),
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
    info = m.info()
    # The row layouts of small matrices have small decode tables (or none), and codes past
    # them take the slow canonical decoder: another cost regime.
    if m.layout == "rows" and (info.get("table_entries") == 0 or
                               info.get("table_bits", 99) < info["max_code_length"]):
        return f"{form_name(m)}-untabled"
    return form_name(m)


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
