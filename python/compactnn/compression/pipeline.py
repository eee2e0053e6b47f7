"""One call from a trained matrix to a compressed one: prune, quantize, choose a format."""
from __future__ import annotations

from ..matrix.checks import codebook_and_indices, finite_matrix
from ..matrix.formats import HAM, HCSR, CompressedMatrix, IndexMap
from .costs import expected_ns
from .objective import check_objective, pick
from .prune import prune as _prune
from .quantize import cws, ecsq, pws, uq

QUANTIZERS = {"cws": cws, "pws": pws, "uq": uq, "ecsq": ecsq}
# Every form a matrix can take, smaller-first where sizes tie (min keeps the first).
LAYOUTS = {IndexMap: ("auto",), HCSR: ("rows", "lanes", "fixed"), HAM: ("rows", "lanes")}
FORMAT_NAMES = {"indexmap": IndexMap, "im": IndexMap, "ham": HAM, "hcsr": HCSR, "sham": HCSR}


def compress(W, prune: float = 0.9, quantize: str | None = "cws", k: int = 32,
             format="auto", objective: str = "fast", **quantizer_options) -> CompressedMatrix:
    """Prune by magnitude, quantize by weight sharing, and store in a compact format.

    prune: fraction of weights set to zero (0 for none).  quantize: "cws", "pws", "uq",
    "ecsq" (their options, e.g. bits= for ecsq, pass through), or None when W already has
    at most 65536 distinct values.  format: "auto" (every format and layout), a format
    class or name ("indexmap", "ham", "hcsr": that format's layouts), or a format and
    layout ("hcsr-fixed", "hcsr-lanes", "hcsr-rows", "ham-lanes", "ham-rows").  Among them
    objective "fast" keeps the fastest (by the cost model of compression/costs.py for this
    CPU's kernels) at most 15% larger than the smallest, "small" the smallest.
    ("fastest", the former timed choice, is format "auto" with objective "fast".)"""
    check_objective(objective)
    return choose(candidates(W, prune, quantize, k, format, objective, **quantizer_options),
                  objective)


def candidates(W, prune: float, quantize: str | None, k: int, format, objective: str,
               **quantizer_options) -> list[CompressedMatrix]:
    """W pruned, quantized and stored in each form the format and objective consider."""
    W = finite_matrix(W)
    forms = forms_for(format, objective)
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
    out = []
    for fmt, layout in forms:
        try:
            out.append(fmt.from_codebook(codebook, idx, layout))
        except ValueError:
            if len(forms) == 1:  # the one form asked for: say why it cannot be
                raise
    return out


def forms_for(format, objective: str = "fast") -> list[tuple[type, str]]:
    """The (format, layout) pairs `format` stands for: under objective "small" each format
    in the layout it picks itself (its smallest), under "fast" in every layout."""
    if format in ("auto", "fastest"):
        fmts, layout = (IndexMap, HCSR, HAM), ""
    elif isinstance(format, type) and issubclass(format, CompressedMatrix):
        fmts, layout = (format,), ""
    else:
        name, _, layout = format.lower().partition("-") if isinstance(format, str) else ("",) * 3
        if name not in FORMAT_NAMES or (layout and layout not in LAYOUTS[FORMAT_NAMES[name]]):
            raise ValueError(f"format must be 'auto', a format class or one of "
                             f"{sorted(FORMAT_NAMES)}, or a format and layout such as "
                             f"'hcsr-fixed', got {format!r}")
        fmts = (FORMAT_NAMES[name],)
    if layout:
        return [(fmts[0], layout)]
    if objective == "small":
        return [(f, "auto") for f in fmts]
    return [(f, lay) for f in fmts for lay in LAYOUTS[f]]


def choose(candidates: list[CompressedMatrix], objective: str = "fast",
           isa: str | None = None) -> CompressedMatrix:
    """The candidate the objective keeps (objective.py), from exact sizes and the times that
    the cost model of kernel set `isa` (default: the active one) gives."""
    options = [(m.nbytes, expected_ns(m, isa=isa)) for m in candidates]
    return candidates[pick([options], objective)[0]]
