"""compactnn: pruned and quantized weight matrices stored compactly (HAM, HCSR, IndexMap),
with matrix products computed directly on the compact form."""
from . import _core
from .compression import (
    CER,
    CSER,
    Quantized,
    bounds,
    compress,
    cws,
    ecsq,
    prune,
    prune_global,
    pws,
    report,
    uq,
)
from .matrix import HAM, HCSR, CompressedMatrix, FormatError, IndexMap, frombytes, load

__version__ = "0.1.0"

_core.isa()  # choose the kernel set now, so a bad COMPACTNN_ISA fails at import


def cpu_info() -> dict:
    """The architecture of this build ("x86_64", "aarch64", ...), the kernel set in use
    (COMPACTNN_ISA=scalar|avx2|avx512|neon forces one; x86 builds have scalar, avx2 and
    avx512, aarch64 builds scalar and neon), the sets this CPU supports (and whether the AVX-512 set uses
    VBMI byte permutes), the default number of threads and what runs them ("pool": compactnn's own;
    "openmp": PyTorch's OpenMP threads, once compactnn.torch is imported).
    `avx512_emulated` is True only in a test build whose AVX-512 kernels run on SIMDe's
    emulation (COMPACTNN_EMULATE_AVX512)."""
    return {"arch": _core.arch, "isa": _core.isa(), "supported": list(_core.supported_isas()),
            "avx512_vbmi": bool(_core.vbmi()), "threads": _core.num_threads(),
            "thread_runtime": "openmp" if _core.using_openmp() else "pool",
            "avx512_emulated": bool(_core.avx512_emulated)}


def set_num_threads(n: int) -> None:
    """Threads used by products that do not pass `threads=` (0: all cores)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"the number of threads must be a non-negative integer, got {n!r}")
    _core.set_num_threads(min(n, 1024))


def get_num_threads() -> int:
    return _core.num_threads()
__all__ = [
    "CER",
    "CSER",
    "CompressedMatrix",
    "FormatError",
    "HAM",
    "HCSR",
    "IndexMap",
    "Quantized",
    "bounds",
    "compress",
    "cpu_info",
    "get_num_threads",
    "cws",
    "ecsq",
    "frombytes",
    "load",
    "prune",
    "prune_global",
    "pws",
    "report",
    "set_num_threads",
    "uq",
]
