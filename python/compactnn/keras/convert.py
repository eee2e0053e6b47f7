"""Whole Keras models to compressed ones, their sizes and per-layer tables."""
from __future__ import annotations

import sys

import keras
import numpy as np

from .._progress import bar
from ..model.plan import Layer, Plan, compress_layers, kernel_to_matrix, kept_dense, plans_for
from ..model.summary import KEPT_DENSE, LayerRow, compressed_row, dense_row, format_table
from .layers import CompressedConv1D, CompressedConv2D, CompressedDense, CompressedLayer

_KINDS = {keras.layers.Dense: "Dense", keras.layers.Conv1D: "Conv1D",
          keras.layers.Conv2D: "Conv2D"}


def _check_model(model) -> None:
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")


def _all_layers(model):
    return list(model._flatten_layers(include_self=False, recursive=True))


def compressible_layers(model) -> list:
    """Dense, Conv1D and Conv2D layers (exact classes, groups=1, not quantized by Keras)."""
    return [layer for layer in _all_layers(model)
            if type(layer) in _KINDS and getattr(layer, "groups", 1) == 1
            and getattr(layer, "quantization_mode", None) is None]


def _matrix(layer) -> np.ndarray:
    kernel = keras.ops.convert_to_numpy(layer.kernel).astype(np.float32)
    if isinstance(layer, keras.layers.Dense):
        return kernel.T
    return kernel_to_matrix(kernel, "...io")


def compress_model(model, prune: float = 0.0, quantize: str | None = "cws", k: int = 32,
                   format="auto", prune_scope: str = "layer", layers=None,
                   objective: str = "fast", progress: bool = True, **quantizer_options):
    """A copy of a Sequential or Functional Keras model whose Dense, Conv1D and Conv2D
    layers are compressed; the arguments are those of compactnn.torch.compress_model,
    with `layers` keyed by layer name."""
    _check_model(model)
    found = compressible_layers(model)
    entries = [Layer(layer.name, _KINDS[type(layer)], layer, _matrix(layer)) for layer in found]
    plans = plans_for(entries, Plan(prune, quantize, k, format, quantizer_options), layers)
    with bar(total=sum(p is not None for p in plans.values()), desc="compressing",
             unit="layer", disable=not progress) as b:
        matrices = compress_layers(entries, plans, prune_scope,
                                   progress=lambda name: b.update(), objective=objective)
    by_name = {layer.name: layer for layer in _all_layers(model)}
    out = clone_with(model, "compress_model", lambda layer: _compressed(
        layer, matrices[layer.name], plans[layer.name]) if layer.name in matrices else None)
    for layer in _all_layers(out):
        if isinstance(layer, CompressedLayer) and layer.use_bias:
            layer.bias.assign(keras.ops.convert_to_numpy(by_name[layer.name].bias))
    for name in kept_dense(plans, matrices):
        out.get_layer(name).compactnn_kept_dense = True
    return out


def clone_with(model, caller: str, replace):
    """A clone of a Sequential or Functional model in which `replace(layer)` stands in for
    each layer it returns a layer for; every other layer is rebuilt from its config and
    given the original's variables."""
    def clone(layer):
        new = replace(layer)
        return layer.__class__.from_config(layer.get_config()) if new is None else new

    try:
        out = keras.models.clone_model(model, clone_function=clone, recursive=True)
    except Exception as e:
        raise ValueError(f"{caller} handles Sequential and Functional models; this one could "
                         f"not be cloned: {e}") from None
    by_name = {layer.name: layer for layer in _all_layers(model)}
    for layer in _all_layers(out):
        old = by_name.get(layer.name)
        if type(old) is type(layer) and not isinstance(layer, keras.Model):  # not replaced
            layer.set_weights(old.get_weights())
    return out


def _compressed(layer, m, plan: Plan):
    common = dict(matrix=m, use_bias=layer.use_bias, activation=layer.activation,
                  plan=plan.to_json(), name=layer.name)
    if isinstance(layer, keras.layers.Dense):
        return CompressedDense(layer.units, **common)
    cls = CompressedConv1D if isinstance(layer, keras.layers.Conv1D) else CompressedConv2D
    return cls(layer.filters, layer.kernel_size, layer.strides, layer.padding,
               layer.data_format, layer.dilation_rate, **common)


def _variables_nbytes(model) -> int:
    seen = {}
    for v in model.weights:
        seen[id(v)] = v
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in seen.values())


def _matrices(model) -> dict:
    return {id(layer.matrix): layer.matrix for layer in _all_layers(model)
            if isinstance(layer, CompressedLayer) and layer.matrix is not None}


def model_nbytes(model) -> int:
    """Bytes of every variable and compressed matrix (each counted once)."""
    _check_model(model)
    return _variables_nbytes(model) + sum(m.nbytes for m in _matrices(model).values())


def dense_nbytes(model) -> int:
    """model_nbytes of the same model with float32 kernels in place of compressed ones."""
    return _variables_nbytes(model) + sum(m.nbytes_dense for m in _matrices(model).values())


def layer_rows(model) -> list[LayerRow]:
    rows = []
    for layer in _all_layers(model):
        if isinstance(layer, CompressedLayer):
            kind = type(layer).__name__.replace("Compressed", "")
            shape = _kernel_shape(layer)
            rows.append(compressed_row(layer.name, kind, shape, layer.matrix))
        elif type(layer) in _KINDS:
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            fmt = KEPT_DENSE if getattr(layer, "compactnn_kept_dense", False) else "dense"
            rows.append(dense_row(layer.name, _KINDS[type(layer)], kernel.shape,
                                  int(np.count_nonzero(kernel)), kernel.nbytes, fmt,
                                  rows=kernel.shape[-1]))
    return rows


def _kernel_shape(layer) -> tuple:
    """The kernel's shape in the dense Keras layer."""
    out, cols = layer.matrix.shape
    if isinstance(layer, CompressedDense):
        return (cols, out)
    size = int(np.prod(layer.kernel_size))
    return (*layer.kernel_size, cols // size, out)


def summary(model, file=None) -> list[LayerRow]:
    """Print the per-layer table (name, kind, kernel shape, format, k, density, bytes,
    psi) and the whole model's bytes and psi against float32; returns the rows."""
    file = sys.stdout if file is None else file  # the stdout of the moment
    _check_model(model)
    rows = layer_rows(model)
    print(format_table(rows, model_nbytes(model), dense_nbytes(model)), file=file)
    return rows
