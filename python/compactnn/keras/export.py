"""A Keras model's graph for compactnn.runtime: the layers of a Sequential or Functional
model, walked from its outputs back to its inputs, become nodes of the runtime's op set
(runtime/graph.py) in a model file with the compressed matrices and every other weight.

The runtime convolves and pools channels first; Keras defaults to channels last.  Each value
is tracked as it is in Keras ("as is") or with its channels moved to dimension 1 ("first"):
a channels-last convolution takes its input first (one permute) and leaves it so, activations,
batch norms, pools, adds and concatenations work on either, and a value goes back to Keras'
order only where the order matters (Flatten, Reshape, Dense on more than two dimensions, the
output), so a convolutional stack pays one permute in and one out."""
from __future__ import annotations

import os

import keras
import numpy as np

from ..model import file_format
from ..runtime.graph import OPS
from .layers import CompressedConv, CompressedDense, CompressedLayer

FRAMEWORK = "keras"
PREFIX = "#graph/"


class CaptureError(ValueError):
    """The model's graph cannot be written for the runtime (a layer or setting outside the
    runtime's op set)."""


def save(model, path) -> None:
    """Write `model` (a built Sequential or Functional Keras model, compressed or not) as a
    model file for compactnn.runtime.  CaptureError names a layer it cannot express."""
    if not isinstance(model, keras.Model) or not getattr(model, "outputs", None):
        raise CaptureError("save needs a built Sequential or Functional keras.Model (give "
                           "Sequential models a keras.Input)")
    g = _Graph()
    g.run(model)
    file_format.write(os.fspath(path), dict(framework=FRAMEWORK, graph=g.doc()), g.matrices,
                      g.tensors)


def _numpy(v) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(v), np.float32)


class _Graph:
    def __init__(self):
        self.nodes, self.inputs, self.output = [], [], None
        self.matrices, self.tensors = {}, {}
        self.values = {}  # keras tensor name -> (graph value, "as is" | "first", ndim)
        self.moved = {}  # (keras tensor name, order) -> its permuted graph value
        self.count = 0

    def doc(self) -> dict:
        return dict(inputs=self.inputs, outputs=[self.output], nodes=self.nodes)

    def run(self, model):
        if len(model.outputs) != 1:
            raise CaptureError(f"the runtime takes models of one output; this one has "
                               f"{len(model.outputs)}")
        for t in model.inputs:
            if t.dtype not in ("float32", "float16", "float64"):
                raise CaptureError(f"input {t.name} has dtype {t.dtype}: the runtime takes "
                                   "floating-point inputs from Keras models")
            self.inputs.append(dict(name=t.name, shape=[None, *map(int, t.shape[1:])],
                                    dtype="float32"))
            self.values[t.name] = (t.name, "as is", len(t.shape))
        out = model.outputs[0]
        self._visit(out)
        self.output = self._as_is(out.name)

    # -- values -------------------------------------------------------------------------
    def _emit(self, op, inputs, layer, **args) -> str:
        self.count += 1
        name = f"{layer.name}/{op}/{self.count}"
        node = dict(name=name, op=op, inputs=inputs, module=layer.name)
        node.update({k: args.get(k) for k in OPS[op]})
        self.nodes.append(node)
        return name

    def _tensor(self, layer, what, value) -> str:
        key = f"{PREFIX}{layer.name}/{what}"
        self.tensors[key] = np.ascontiguousarray(value, np.float32)
        return key

    def _as_is(self, name, layer=None) -> str:
        """Value `name` in Keras' order."""
        return self._in(name, "as is", layer or _Root)

    def _first(self, name, layer) -> str:
        """Value `name` with Keras' last dimension (the channels) at dimension 1."""
        return self._in(name, "first", layer)

    def _in(self, name, want, layer) -> str:
        value, layout, nd = self.values[name]
        if layout == want:
            return value
        if (name, want) not in self.moved:  # one permute per value and order
            perm = [0, *range(2, nd), 1] if want == "as is" else [0, nd - 1, *range(1, nd - 1)]
            self.moved[name, want] = self._emit("permute", [value], layer, perm=perm)
        return self.moved[name, want]

    def _visit(self, tensor):
        """Emits the layers that tensor depends on, then its own."""
        if tensor.name in self.values:
            return
        op, node_index, _ = tensor._keras_history
        node = op._inbound_nodes[node_index]
        for t in node.input_tensors:
            self._visit(t)
        if len(node.output_tensors) != 1:
            raise CaptureError(f"layer {op.name} has several outputs")
        self._layer(op, node.input_tensors, node.output_tensors[0])

    # -- layers -------------------------------------------------------------------------
    def _layer(self, layer, ins, out):
        kind = type(layer).__name__
        handler = _LAYERS.get(kind)
        if handler is None:
            raise CaptureError(f"the runtime does not run Keras layer {layer.name} ({kind}); it "
                               f"runs {', '.join(sorted(_LAYERS))}")
        result = handler(self, layer, ins, len(out.shape))
        value, layout = result if isinstance(result, tuple) else (result, "as is")
        self.values[out.name] = (value, layout, len(out.shape))

    def activation(self, layer, value, layout, nd):
        name = keras.activations.serialize(layer.activation) if layer.activation else "linear"
        if name == "linear":
            return value
        if name in ("relu", "sigmoid", "tanh"):
            return self._emit(name, [value], layer)
        if name == "gelu":
            return self._emit("gelu", [value], layer, approximate="none")
        if name == "softmax":
            return self._emit("softmax", [value], layer, dim=_axis(-1, nd, layout))
        raise CaptureError(f"layer {layer.name}: activation {name!r} is not in the runtime's set")


class _Root:
    name = "(output)"


def _dense(g: _Graph, layer, ins, nd):
    x = g._as_is(ins[0].name, layer)
    if isinstance(layer, CompressedDense):
        g.matrices[layer.name] = layer.matrix
        w = dict(matrix=layer.name)
    else:
        w = dict(weight=g._tensor(layer, "kernel", _numpy(layer.kernel).T))
    bias = g._tensor(layer, "bias", _numpy(layer.bias)) if layer.use_bias else None
    y = g._emit("linear", [x], layer, bias=bias, **w)
    return g.activation(layer, y, "as is", nd)


def _channels_first(g: _Graph, layer, t):
    """The input of a convolution or pool with its channels at dimension 1, and the layout
    that makes it ("first" where Keras has them last)."""
    if layer.data_format == "channels_last":
        return g._first(t.name, layer), "first"
    return g._as_is(t.name, layer), "as is"


def _same_pads(size, k, s, d, layer):
    span = d * (k - 1) + 1
    total = max((-(-size // s) - 1) * s + span - size, 0)
    if total % 2:
        raise CaptureError(f"layer {layer.name}: 'same' padding of {total} (uneven, which the "
                           "runtime's symmetric padding cannot express)")
    return total // 2


def _pads(layer, spatial, kernel, strides, dilation):
    if layer.padding == "valid":
        return [0] * len(spatial)
    if layer.padding == "same":
        return [_same_pads(n, k, s, d, layer) for n, k, s, d in zip(spatial, kernel, strides,
                                                                     dilation)]
    raise CaptureError(f"layer {layer.name}: padding {layer.padding!r}")


def _spatial(layer, t):
    shape = tuple(t.shape)[1:]  # the batch is None
    return shape[:-1] if layer.data_format == "channels_last" else shape[1:]


def _conv(g: _Graph, layer, ins, nd):
    if getattr(layer, "groups", 1) != 1:
        raise CaptureError(f"layer {layer.name}: groups={layer.groups}")
    dims = nd - 2
    x, layout = _channels_first(g, layer, ins[0])
    kernel, strides = list(layer.kernel_size), list(layer.strides)
    dilation = list(layer.dilation_rate)
    pads = _pads(layer, _spatial(layer, ins[0]), kernel, strides, dilation)
    if isinstance(layer, CompressedConv):
        g.matrices[layer.name] = layer.matrix
        w = dict(matrix=layer.name)
    else:  # (*size, in, out) -> (out, in, *size)
        k = _numpy(layer.kernel)
        w = dict(weight=g._tensor(layer, "kernel", np.moveaxis(k, (-1, -2), (0, 1))))
    bias = g._tensor(layer, "bias", _numpy(layer.bias)) if layer.use_bias else None
    one = (lambda v: [1, *v]) if dims == 1 else (lambda v: v)
    y = g._emit("conv2d", [x], layer, bias=bias, kernel=one(kernel), stride=one(strides),
                padding=[0, *pads] if dims == 1 else pads, dilation=one(dilation), dims=dims, **w)
    return g.activation(layer, y, layout, nd), layout


def _pool(kind):
    def handle(g: _Graph, layer, ins, nd):
        if nd != 4:
            raise CaptureError(f"layer {layer.name}: the runtime pools 2-D inputs")
        x, layout = _channels_first(g, layer, ins[0])
        size, strides = list(layer.pool_size), list(layer.strides or layer.pool_size)
        pads = _pads(layer, _spatial(layer, ins[0]), size, strides, [1, 1])
        common = dict(kernel=size, stride=strides, padding=pads, ceil_mode=False)
        if kind == "max":
            y = g._emit("max_pool2d", [x], layer, dilation=[1, 1], **common)
        else:  # Keras averages over the input only
            y = g._emit("avg_pool2d", [x], layer, count_include_pad=False, divisor=None, **common)
        return y, layout
    return handle


def _global_pool(kind):
    def handle(g: _Graph, layer, ins, nd):
        n = len(ins[0].shape)
        x, layout = _channels_first(g, layer, ins[0])
        keep = bool(getattr(layer, "keepdims", False))
        y = g._emit("reduce", [x], layer, kind=kind, dims=list(range(2, n)), keepdim=keep)
        return (y, layout) if keep else y
    return handle


def _batch_norm(g: _Graph, layer, ins, nd):
    """A per-channel scale and shift on dimension 1: channels last are moved there."""
    value, layout, n = g.values[ins[0].name]
    axis = layer.axis % n
    if n == 2 and axis == 1:
        x, out = value, "as is"
    elif axis == n - 1:
        x, out = g._first(ins[0].name, layer), "first"
    elif axis == 1:
        x, out = g._as_is(ins[0].name, layer), "as is"
    else:
        raise CaptureError(f"layer {layer.name}: batch norm over axis {layer.axis}")
    var, mean = _numpy(layer.moving_variance), _numpy(layer.moving_mean)
    gamma = _numpy(layer.gamma) if layer.scale else np.ones_like(var)
    beta = _numpy(layer.beta) if layer.center else np.zeros_like(var)
    scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + layer.epsilon)
    y = g._emit("affine", [x], layer, scale=g._tensor(layer, "scale", scale),
                shift=g._tensor(layer, "shift", beta - mean * scale))
    return y, out


def _activation(g: _Graph, layer, ins, nd):
    value, layout, _ = g.values[ins[0].name]
    return g.activation(layer, value, layout, nd), layout


def _relu(g: _Graph, layer, ins, nd):
    if layer.max_value is not None or layer.negative_slope or layer.threshold:
        raise CaptureError(f"layer {layer.name}: ReLU with a cap, slope or threshold")
    value, layout, _ = g.values[ins[0].name]
    return g._emit("relu", [value], layer), layout


def _softmax(g: _Graph, layer, ins, nd):
    value, layout, n = g.values[ins[0].name]
    axis = layer.axis if isinstance(layer.axis, int) else None
    if axis is None:
        raise CaptureError(f"layer {layer.name}: softmax over several axes")
    return g._emit("softmax", [value], layer, dim=_axis(axis, n, layout)), layout


def _identity(g: _Graph, layer, ins, nd):
    value, layout, _ = g.values[ins[0].name]
    return value, layout


def _flatten(g: _Graph, layer, ins, nd):
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise CaptureError(f"layer {layer.name}: Flatten with data_format channels_first")
    return g._emit("flatten", [g._as_is(ins[0].name, layer)], layer, start=1, end=-1)


def _reshape(g: _Graph, layer, ins, nd):
    return g._emit("reshape", [g._as_is(ins[0].name, layer)], layer,
                   shape=[int(d) for d in layer.target_shape])


def _axis(axis: int, nd: int, layout: str) -> int:
    """Keras' axis of an nd-dimensional value, in the graph's order of it."""
    axis %= nd
    if layout == "first":
        return 1 if axis == nd - 1 else axis + 1
    return axis


def _common(g: _Graph, layer, ins):
    """The inputs of a merge in one order: theirs where they agree, else Keras'."""
    layouts = {g.values[t.name][1] for t in ins}
    layout = layouts.pop() if len(layouts) == 1 else "as is"
    return [g._in(t.name, layout, layer) for t in ins], layout


def _merge(op):
    def handle(g: _Graph, layer, ins, nd):
        xs, layout = _common(g, layer, ins)
        y = xs[0]
        for x in xs[1:]:
            y = g._emit(op, [y, x], layer)
        return y, layout
    return handle


def _concatenate(g: _Graph, layer, ins, nd):
    xs, layout = _common(g, layer, ins)
    return g._emit("cat", xs, layer, dim=_axis(layer.axis, nd, layout)), layout


_LAYERS = {
    "Dense": _dense, "CompressedDense": _dense,
    "Conv1D": _conv, "Conv2D": _conv, "CompressedConv1D": _conv, "CompressedConv2D": _conv,
    "MaxPooling2D": _pool("max"), "AveragePooling2D": _pool("avg"),
    "GlobalAveragePooling1D": _global_pool("mean"), "GlobalAveragePooling2D": _global_pool("mean"),
    "GlobalMaxPooling1D": _global_pool("max"), "GlobalMaxPooling2D": _global_pool("max"),
    "BatchNormalization": _batch_norm, "Activation": _activation, "ReLU": _relu,
    "Softmax": _softmax, "Dropout": _identity, "Flatten": _flatten, "Reshape": _reshape,
    "Add": _merge("add"), "Multiply": _merge("mul"), "Concatenate": _concatenate,
}
