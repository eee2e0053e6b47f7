"""compactnn: pruned and quantized weight matrices stored compactly (HAM, HCSR, IndexMap),
with matrix products computed directly on the compact form."""
from . import bounds
from .formats import HAM, HCSR, CompressedMatrix, FormatError, IndexMap, frombytes, load
from .prune import prune
from .quantize import Quantized, cws

__version__ = "0.1.0"
__all__ = [
    "CompressedMatrix",
    "FormatError",
    "HAM",
    "HCSR",
    "IndexMap",
    "Quantized",
    "bounds",
    "cws",
    "frombytes",
    "load",
    "prune",
]
