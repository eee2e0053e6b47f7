"""From a trained matrix to a compact one: magnitude pruning, the four weight-sharing
quantizers, the `compress` pipeline and its choice of format, and size accounting (the
published bounds, the `report` table, the CER/CSER comparators)."""
from . import bounds
from .cer import CER, CSER
from .pipeline import compress
from .prune import prune, prune_global
from .quantize import Quantized, cws, ecsq, pws, uq
from .size_report import report

__all__ = ["CER", "CSER", "Quantized", "bounds", "compress", "cws", "ecsq", "prune",
           "prune_global", "pws", "report", "uq"]
