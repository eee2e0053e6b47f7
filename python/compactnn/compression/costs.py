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
# Measured 2026-12-04 on an AMD EPYC family 26 model 2 (Zen 5, 2 vCPUs, KVM) with each
# kernel set forced (COMPACTNN_ISA); "dense" is numpy's sgemv (OpenBLAS, one thread).  The
# fits are within 40% of every measured point (layers of 64 to 4.2 M weights), except HAM's
# row layout (up to 86%), HAM's lanes on AVX-512 (58%), dense on the scalar set (56%: from
# cache on small layers, from memory on large ones) and HCSR's lanes there (50%): good
# enough to rank forms whose times differ severalfold, which is what they are for.  (The
# earlier AVX2 model, fitted on a Zen 1, where 256-bit instructions run as two halves, had
# every compact form 2-5x slower against dense: docs/performance.md.)
COSTS = {
    "avx512": {
        "dense": (515, 0.0, 0.0448),
        "ham-lanes": (659, 51.7, 0.2839),
        "ham-rows": (0, 186.8, 0.4192),
        "ham-rows-untabled": (0, 101.7, 3.3124),
        "hcsr-fixed": (587, 0.2, 0.2368),
        "hcsr-lanes": (718, 0.0, 1.3451),
        "hcsr-rows": (0, 0.0, 1.4357),
        "hcsr-rows-untabled": (566, 0.0, 5.2982),
        "indexmap4": (602, 2.2, 0.0169),
        "indexmap6": (540, 0.0, 0.1103),
        "indexmap8": (705, 11.3, 0.0350),
    },
    "avx2": {
        "dense": (417, 0.0, 0.0440),
        "ham-lanes": (406, 73.3, 0.5162),
        "ham-rows": (0, 197.5, 0.4787),
        "ham-rows-untabled": (0, 207.0, 3.0554),
        "hcsr-fixed": (548, 1.4, 0.2418),
        "hcsr-lanes": (712, 0.0, 1.9487),
        "hcsr-rows": (0, 5.6, 1.4155),
        "hcsr-rows-untabled": (455, 0.0, 5.6953),
        "indexmap4": (621, 4.0, 0.0541),
        "indexmap6": (569, 12.0, 0.1983),
        "indexmap8": (639, 0.0, 0.2817),
    },
    "scalar": {
        "dense": (463, 0.0, 0.0441),
        "ham-lanes": (883, 0.0, 3.7680),
        "ham-rows": (478, 0.0, 4.2315),
        "ham-rows-untabled": (0, 72.4, 3.8201),
        "hcsr-fixed": (585, 3.0, 0.5635),
        "hcsr-lanes": (603, 0.0, 4.9888),
        "hcsr-rows": (0, 3.3, 1.4282),
        "hcsr-rows-untabled": (549, 0.0, 5.3077),
        "indexmap4": (434, 34.3, 0.8607),
        "indexmap6": (371, 47.5, 1.0451),
        "indexmap8": (604, 0.0, 0.9028),
    },
}


# Sets without measurements of their own.  NEON: no ARM CPU here to time it on (emulation
# proves results, not speed).  Its kernels follow the scalar set's schedules, vectorised, so
# the scalar model stands in: it undervalues every NEON kernel by factors not measured.
FALLBACK = {"neon": "scalar"}


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
