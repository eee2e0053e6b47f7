"""Whole-model compression plans, independent of any framework.

A model adapter (compactnn.torch, compactnn.keras) lists its compressible layers as
`Layer`s, each with its weight as a 2-D matrix (one row per output); this module decides
each layer's settings, prunes (per layer or with one global threshold), quantizes and picks
the format, and turns convolution kernels into matrices and back.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..compression.costs import expected_ns
from ..compression.objective import check_objective, pick
from ..compression.pipeline import QUANTIZERS, candidates, forms_for
from ..compression.prune import prune_global
from ..matrix.formats import CompressedMatrix

DENSE = "dense"  # a layer setting: leave this layer uncompressed
_SETTINGS = ("prune", "quantize", "k", "format")


@dataclass(frozen=True)
class Plan:
    """How one layer is compressed.  `options` go to the quantizer (e.g. bits= for ecsq)."""

    prune: float = 0.0
    quantize: str | None = "cws"
    k: int = 32
    format: object = "auto"
    options: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        fmt = self.format if isinstance(self.format, str) else self.format.__name__
        return dict(prune=self.prune, quantize=self.quantize, k=self.k, format=fmt,
                    options=dict(self.options))

    @classmethod
    def from_json(cls, d: dict) -> "Plan":
        return cls(prune=float(d["prune"]), quantize=d["quantize"], k=int(d["k"]),
                   format=d["format"], options=dict(d.get("options", {})))


@dataclass
class Layer:
    """A compressible layer as the adapters see it: its name, kind (e.g. "Conv2d"), the
    framework object (for callables in `layers=`) and its weight as a 2-D matrix."""

    name: str
    kind: str
    module: object
    matrix: np.ndarray


def check_plan(plan: Plan, where: str) -> Plan:
    """A Plan with every setting checked, so bad settings fail before any work is done."""
    if isinstance(plan.prune, bool) or not isinstance(plan.prune, (int, float)) \
            or not 0.0 <= plan.prune < 1.0:
        raise ValueError(f"{where}: prune must be a fraction in [0, 1), got {plan.prune!r}")
    if plan.quantize is not None and plan.quantize not in QUANTIZERS:
        raise ValueError(f"{where}: quantize must be one of {sorted(QUANTIZERS)} or None, "
                         f"got {plan.quantize!r}")
    if isinstance(plan.k, bool) or not isinstance(plan.k, (int, np.integer)) \
            or not 2 <= plan.k <= 65536:
        raise ValueError(f"{where}: k must be an integer in 2..65536, got {plan.k!r}")
    try:
        forms_for(plan.format)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    return replace(plan, prune=float(plan.prune), k=int(plan.k))


def plans_for(layers: list[Layer], default: Plan, overrides) -> dict[str, Plan | None]:
    """Each layer's Plan, or None where it stays dense.

    overrides: None; a dict from layer name to "dense" or a dict of settings (prune,
    quantize, k, format, and quantizer options); or a callable (name, module) returning one
    of those or None for the defaults."""
    default = check_plan(default, "model settings")
    names = {layer.name for layer in layers}
    if overrides is None:
        overrides = {}
    if isinstance(overrides, dict):
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"layers= names {unknown} are not compressible layers of this "
                             f"model; they are: {sorted(names)}")
        lookup: Callable = lambda layer: overrides.get(layer.name)
    elif callable(overrides):
        lookup = lambda layer: overrides(layer.name, layer.module)
    else:
        raise TypeError(f"layers must be a dict or a callable, got {type(overrides).__name__}")
    plans = {}
    for layer in layers:
        plans[layer.name] = _override(default, lookup(layer), layer.name)
    return plans


def _override(default: Plan, setting, name: str) -> Plan | None:
    if setting is None:
        return default
    if setting == DENSE or setting is False:
        return None
    if not isinstance(setting, dict):
        raise TypeError(f"layer {name!r}: settings must be a dict, 'dense' or None, "
                        f"got {setting!r}")
    setting = dict(setting)
    if setting.pop(DENSE, False):
        return None
    known = {key: setting.pop(key) for key in _SETTINGS if key in setting}
    options = {**default.options, **setting}  # the rest goes to the quantizer
    return check_plan(replace(default, **known, options=options), f"layer {name!r}")


def compress_layers(layers: list[Layer], plans: dict[str, Plan | None],
                    scope: str = "layer", progress=None,
                    objective: str = "fast") -> dict[str, CompressedMatrix]:
    """Compress every layer that has a Plan.

    scope "layer" prunes each matrix by its own plan; "global" prunes all layers whose
    plans share the default amount with one magnitude threshold (layers given their own
    amount in `layers=` are pruned by it alone).  `progress(name)` is called per layer.
    Each layer's form (format and layout, or its float32 weights) is the objective's choice
    over the whole model (compression/objective.py): "small" keeps the smallest, "fast" the
    fastest forms within 15% of the smallest model.  A layer left dense is left out of the
    result, its weights unchanged (see `kept_dense`); so is, under either objective, a
    layer whose compact forms are none smaller than its float32 weights."""
    if scope not in ("layer", "global"):
        raise ValueError(f"prune_scope must be 'layer' or 'global', got {scope!r}")
    check_objective(objective)
    todo = [layer for layer in layers if plans[layer.name] is not None]
    pruned = {}
    if scope == "global":
        groups: dict[float, list[Layer]] = {}
        for layer in todo:
            groups.setdefault(plans[layer.name].prune, []).append(layer)
        for amount, group in groups.items():
            if amount:
                mats, _ = prune_global([layer.matrix for layer in group], amount)
                pruned.update({layer.name: m for layer, m in zip(group, mats)})
    forms = {}
    for layer in todo:
        plan = plans[layer.name]
        if progress is not None:
            progress(layer.name)
        W = pruned.get(layer.name)
        amount = 0.0 if W is not None else plan.prune
        W = layer.matrix if W is None else W
        try:
            forms[layer.name] = candidates(W, amount, plan.quantize, plan.k, plan.format,
                                           objective, **plan.options)
        except (TypeError, ValueError) as e:
            raise type(e)(f"layer {layer.name!r}: {e}") from None
    # Option 0 of each layer: its float32 weights; then the compact forms smaller than them.
    for layer in todo:
        forms[layer.name] = [m for m in forms[layer.name] if m.nbytes < m.nbytes_dense]
    options = [[(4 * layer.matrix.size, expected_ns(None, layer.matrix.shape))] +
               [(m.nbytes, expected_ns(m)) for m in forms[layer.name]] for layer in todo]
    choice = pick(options, objective)
    return {layer.name: forms[layer.name][i - 1] for layer, i in zip(todo, choice) if i}


def kept_dense(plans: dict[str, Plan | None], compressed: dict) -> list[str]:
    """The layers that had a plan but stay dense: no compact form was smaller than float32
    (a tiny layer: the codebook and tables outweigh its weights), or, under objective
    "fast", keeping the layer dense was the objective's choice."""
    return [name for name, plan in plans.items() if plan is not None and name not in compressed]


# -- convolution kernels as matrices ------------------------------------------------------
# A kernel becomes the matrix that multiplies im2col patches (the native conv2d's layout):
# one row per output channel, one column per (input channel, kernel position), channel
# slowest.  "oi..." is PyTorch's (out, in, *spatial), "...io" Keras's (*spatial, in, out).

def kernel_to_matrix(kernel: np.ndarray, layout: str) -> np.ndarray:
    kernel = np.asarray(kernel)
    if layout == "...io":
        kernel = np.moveaxis(kernel, (-1, -2), (0, 1))
    elif layout != "oi...":
        raise ValueError(f"unknown kernel layout {layout!r}")
    return kernel.reshape(kernel.shape[0], -1)


def matrix_to_kernel(matrix: np.ndarray, shape: tuple, layout: str) -> np.ndarray:
    """The inverse of kernel_to_matrix for a kernel of `shape` in `layout`."""
    if layout == "oi...":
        return matrix.reshape(shape)
    if layout == "...io":
        out_first = (shape[-1], shape[-2], *shape[:-2])
        return np.moveaxis(matrix.reshape(out_first), (0, 1), (-1, -2))
    raise ValueError(f"unknown kernel layout {layout!r}")
