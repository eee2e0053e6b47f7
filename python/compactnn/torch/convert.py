"""Whole PyTorch models to compressed ones and back, and their sizes."""
from __future__ import annotations

import copy
import itertools
import sys

import torch
from torch import nn

from .._progress import bar
from ..model.plan import Layer, Plan, compress_layers, kept_dense, plans_for
from ..model.summary import KEPT_DENSE, LayerRow, compressed_row, dense_row, format_table
from .layers import COMPRESSED, CompressedModule, replace_module


def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")


def compressible_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers compress_model can replace: nn.Linear, nn.Conv1d and nn.Conv2d with
    groups=1 (exact types: subclasses may use their weight in ways a compressed matrix
    cannot serve)."""
    return [(name, mod) for name, mod in model.named_modules()
            if type(mod) in COMPRESSED and getattr(mod, "groups", 1) == 1]


def compress_model(model: nn.Module, prune: float = 0.0, quantize: str | None = "cws",
                   k: int = 32, format="auto", prune_scope: str = "layer", layers=None,
                   objective: str = "fast", progress: bool = True, **quantizer_options) -> nn.Module:
    """A copy of `model` whose Linear, Conv1d and Conv2d layers are compressed.

    prune: fraction of each layer's weights zeroed by magnitude ("layer" scope), or of all
    compressed layers' weights together with one threshold (prune_scope="global").
    quantize, k, format and quantizer options: as in `compactnn.compress`.
    layers: per-layer settings, a dict from layer name (as in `named_modules`) to "dense"
    (leave it as it is) or a dict of settings (prune, quantize, k, format, quantizer
    options), or a callable (name, module) returning one of those or None (defaults).
    objective: "fast" (each layer's form, dense included, the fastest the model can take
    within 15% of its smallest size, by the cost model of compression/costs.py) or
    "small" (the smallest forms).  A layer whose compact forms are none smaller than its
    float32 weights, or that the objective keeps dense, stays dense, unchanged (`summary`
    says so).  Biases stay float32; every other module and tensor is
    copied unchanged."""
    _check_model(model)
    found = compressible_layers(model)
    entries = [Layer(name, type(mod).__name__, mod,
                     mod.weight.detach().to("cpu", torch.float32).numpy().reshape(
                         mod.weight.shape[0], -1))
               for name, mod in found]
    plans = plans_for(entries, Plan(prune, quantize, k, format, quantizer_options), layers)
    with bar(total=sum(p is not None for p in plans.values()), desc="compressing",
             unit="layer", disable=not progress) as b:
        matrices = compress_layers(entries, plans, prune_scope,
                                   progress=lambda name: b.update(), objective=objective)
    out = copy.deepcopy(model)
    for name, m in matrices.items():
        old = out.get_submodule(name)
        out = replace_module(out, old, COMPRESSED[type(old)].from_dense(old, m, plans[name]))
    for name in kept_dense(plans, matrices):
        out.get_submodule(name).compactnn_kept_dense = True
    return out


def decompress(model: nn.Module) -> nn.Module:
    """A copy of `model` with every compressed layer replaced by the dense layer holding
    its decoded weights: the reference a compressed model's outputs are checked against."""
    _check_model(model)
    out = copy.deepcopy(model)
    for mod in list(out.modules()):
        if isinstance(mod, CompressedModule):
            dense = mod.to_dense()
            dense.train(mod.training)
            out = replace_module(out, mod, dense)
    return out


def model_nbytes(model: nn.Module) -> int:
    """Bytes of every parameter, buffer and compressed matrix (each counted once)."""
    _check_model(model)
    total = sum(t.numel() * t.element_size()
                for t in itertools.chain(model.parameters(), model.buffers()))
    matrices = {id(m.matrix): m.matrix for m in model.modules() if isinstance(m, CompressedModule)}
    return total + sum(m.nbytes for m in matrices.values())


def dense_nbytes(model: nn.Module) -> int:
    """model_nbytes of the same model with float32 weights in place of the compressed ones."""
    matrices = {id(m.matrix): m.matrix for m in model.modules() if isinstance(m, CompressedModule)}
    return model_nbytes(model) + sum(m.nbytes_dense - m.nbytes for m in matrices.values())


def layer_rows(model: nn.Module) -> list[LayerRow]:
    rows = []
    for name, mod in model.named_modules():
        if isinstance(mod, CompressedModule):
            kind = type(mod).__name__.replace("Compressed", "")
            rows.append(compressed_row(name, kind, mod.weight_shape(), mod.matrix))
        elif isinstance(mod, tuple(COMPRESSED)) and isinstance(mod.weight, torch.Tensor):
            w = mod.weight.detach()
            fmt = KEPT_DENSE if getattr(mod, "compactnn_kept_dense", False) else "dense"
            rows.append(dense_row(name, type(mod).__name__, w.shape,
                                  int(torch.count_nonzero(w)), w.numel() * w.element_size(), fmt))
    return rows


def summary(model: nn.Module, file=None) -> list[LayerRow]:
    """Print a per-layer table (name, kind, weight shape, format, layout, k, density,
    bytes, psi, the cost model's product time) and the whole model's bytes and psi against
    float32; returns the rows."""
    file = sys.stdout if file is None else file  # the stdout of the moment
    _check_model(model)
    rows = layer_rows(model)
    print(format_table(rows, model_nbytes(model), dense_nbytes(model)), file=file)
    return rows
