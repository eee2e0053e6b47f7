"""A PyTorch model's graph for compactnn.runtime: torch.export captures the forward pass
(with a dynamic batch), and each operation becomes a node of the runtime's op set
(runtime/graph.py).  Batch norms are folded into a scale and a shift; tensors the graph
needs that the state dict lacks (those, constants, buffers not saved) are returned to be
stored beside it under "#graph/" names.  An operation outside the set raises ValueError
naming it and the module that produced it."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..runtime.graph import OPS
from . import layers as L
from .io import GRAPH_TENSORS as PREFIX


class CaptureError(ValueError):
    """The model's graph cannot be captured for the runtime (an operation outside its set,
    a model torch.export cannot trace with a free batch size, training mode)."""


def capture(model: nn.Module, example_input) -> tuple[dict, dict[str, np.ndarray]]:
    """(graph, extra tensors) of `model` called as model(example_input): a batch (its first
    dimension is the batch, any size in the graph), or a tuple of batches passed as one
    argument (a model of several inputs, such as DeepDTA's pair).  Floating-point inputs
    run as float32; integer ones are indices (embeddings)."""
    if model.training:
        raise CaptureError("the graph is captured in evaluation mode: call model.eval() first")
    several = isinstance(example_input, (tuple, list))
    xs = [_batch(x) for x in (example_input if several else [example_input])]
    if len({len(x) for x in xs}) != 1:
        raise CaptureError(f"the example inputs have different batch sizes: "
                           f"{[len(x) for x in xs]}")
    batch = torch.export.Dim("batch", min=1)
    shapes = tuple({0: batch} for _ in xs)
    arg = tuple(xs) if several else xs[0]
    try:
        ep = torch.export.export(model, (arg,), dynamic_shapes=(shapes if several else shapes[0],))
    except Exception as e:
        raise CaptureError(f"torch.export could not capture the model with a free batch size: "
                           f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    return _Translator(model, ep).run()


def _batch(x) -> torch.Tensor:
    """An example batch as float32 or int64, of at least 2 (a batch of 1 would be
    specialised by torch.export)."""
    x = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if x.ndim < 1 or len(x) < 1 or x.dtype == torch.bool or x.is_complex():
        raise CaptureError(f"example_input must be a floating-point or integer batch (batch, "
                           f"...), got {x.dtype} of shape {tuple(x.shape)}")
    x = x.float() if x.is_floating_point() else x.long()
    return torch.cat([x[:1], x[:1]]) if len(x) == 1 else x


class _Translator:
    def __init__(self, model: nn.Module, ep):
        self.ep, self.sig = ep, ep.graph_signature
        self.handles = {m._handle: name for name, m in model.named_modules()
                        if isinstance(m, L.CompressedModule)}
        self.saved = set(model.state_dict())
        self.extra: dict[str, np.ndarray] = {}
        self.values: dict[str, object] = {}  # fx node name -> graph value name | SymInt marker
        self.nodes: list[dict] = []

    def run(self):
        user = self.sig.user_inputs
        out_spec = self.sig.user_outputs
        if len(out_spec) != 1:
            raise CaptureError(f"the runtime takes models of one output tensor; this one gives "
                               f"{len(out_spec)}")
        inputs = []
        for node in self.ep.graph.nodes:
            if node.op == "placeholder":
                if node.name in user:
                    val = node.meta["val"]
                    shape = [None, *(int(d) for d in val.shape[1:])]
                    dtype = "float32" if val.is_floating_point() else "int64"
                    inputs.append(dict(name=node.name, shape=shape, dtype=dtype))
                    self.values[node.name] = node.name
            elif node.op == "call_function":
                self._call(node)
            elif node.op == "output":
                (result,) = node.args[0]
                output = self._value(result, "the output")
            else:
                raise CaptureError(f"graph node {node.name} ({node.op}) is not an operation")
        return dict(inputs=inputs, outputs=[output], nodes=self.nodes), self.extra

    # -- arguments --------------------------------------------------------------------
    def _value(self, arg, where):
        if not isinstance(arg, torch.fx.Node) or arg.name not in self.values \
                or not isinstance(self.values[arg.name], str):
            raise CaptureError(f"{where} is not a tensor computed by the graph")
        return self.values[arg.name]

    def _tensor(self, arg, where, transform=None) -> str | None:
        """The file tensor a placeholder stands for (a new "#graph/" one if the state dict
        does not hold it, or `transform` changes it)."""
        if arg is None:
            return None
        if not isinstance(arg, torch.fx.Node) or arg.op != "placeholder":
            raise CaptureError(f"{where} is computed, not a parameter")
        name = (self.sig.inputs_to_parameters.get(arg.name)
                or self.sig.inputs_to_buffers.get(arg.name)
                or self.sig.inputs_to_lifted_tensor_constants.get(arg.name))
        if name is None:
            raise CaptureError(f"{where} is not a parameter, buffer or constant")
        t = self.ep.state_dict.get(name, self.ep.constants.get(name))
        value = t.detach().float().numpy()
        if transform is None and name in self.saved and t.dtype == torch.float32:
            return name
        key = f"{PREFIX}{name}"
        self.extra[key] = np.ascontiguousarray(value if transform is None else transform(value),
                                               np.float32)
        return key

    def _module(self, node) -> str:
        stack = node.meta.get("nn_module_stack") or {}
        return list(stack.values())[-1][0] if stack else ""

    def _emit(self, node, op, inputs, **args):
        entry = dict(name=node.name, op=op, inputs=inputs, module=self._module(node))
        entry.update({k: args.get(k) for k in OPS[op]})
        self.nodes.append(entry)
        self.values[node.name] = node.name

    # -- operations -------------------------------------------------------------------
    def _call(self, node):
        name = str(node.target)
        if name == "aten.sym_size.int" and node.args[1] == 0:  # the batch, for views
            self.values[node.name] = _BATCH
            return
        handler = _HANDLERS.get(name)
        if handler is None:
            raise CaptureError(f"the runtime does not run {name} (node {node.name}, module "
                               f"{self._module(node) or '(root)'!r}); it runs: "
                               f"{', '.join(sorted(OPS))}")
        args = _arguments(node)
        try:
            handler(self, node, args)
        except CaptureError as e:
            raise CaptureError(f"{name} in module {self._module(node) or '(root)'!r}: {e}") from None


class _Batch:
    """The batch size, as the graph sees it (a view's first size)."""


_BATCH = _Batch()


def _arguments(node) -> dict:
    """The node's arguments by schema name, defaults filled in."""
    schema = node.target._schema
    out = {}
    for i, a in enumerate(schema.arguments):
        if i < len(node.args):
            out[a.name] = node.args[i]
        elif a.name in node.kwargs:
            out[a.name] = node.kwargs[a.name]
        else:
            out[a.name] = a.default_value if a.has_default_value() else None
    return out


def _pair(v, n=2):
    v = [int(i) for i in (v if isinstance(v, (list, tuple)) else [v])]
    return v * n if len(v) == 1 else v


def _conv(t, node, a, compressed: bool):
    x = t._value(a["x"] if compressed else a["input"], "the input")
    if compressed:
        return t._emit(node, "conv2d", [x], matrix=t.handles[a["matrix"]],
                       bias=t._tensor(a["bias"], "the bias"), kernel=list(a["kernel_size"]),
                       stride=list(a["stride"]), padding=list(a["padding"]),
                       dilation=list(a["dilation"]), dims=2)
    if a["groups"] != 1:
        raise CaptureError(f"groups={a['groups']}")
    if isinstance(a["padding"], str):
        raise CaptureError(f"padding={a['padding']!r} (give it as numbers)")
    dims = len(a["weight"].meta["val"].shape) - 2
    one = (lambda v: [1, *_pair(v, 1)]) if dims == 1 else _pair
    zero = (lambda v: [0, *_pair(v, 1)]) if dims == 1 else _pair
    kernel = list(a["weight"].meta["val"].shape[2:])
    t._emit(node, "conv2d", [x], weight=t._tensor(a["weight"], "the weight"),
            bias=t._tensor(a["bias"], "the bias"),
            kernel=[1, *kernel] if dims == 1 else kernel, stride=one(a["stride"]),
            padding=zero(a["padding"]), dilation=one(a["dilation"]), dims=dims)


def _linear(t, node, a, compressed: bool):
    x = t._value(a["x"] if compressed else a["input"], "the input")
    if compressed:
        return t._emit(node, "linear", [x], matrix=t.handles[a["matrix"]],
                       bias=t._tensor(a["bias"], "the bias"))
    t._emit(node, "linear", [x], weight=t._tensor(a["weight"], "the weight"),
            bias=t._tensor(a["bias"], "the bias"))


def _unary(op):
    return lambda t, node, a: t._emit(node, op, [t._value(a["self"], "the input")])


def _gelu(t, node, a):
    t._emit(node, "gelu", [t._value(a["self"], "the input")], approximate=a["approximate"])


def _batch_norm(t, node, a):
    if a["training"]:
        raise CaptureError("batch norm in training mode")
    eps = float(a["eps"])

    def get(arg, default):
        if arg is None:
            return default
        name = t.sig.inputs_to_parameters.get(arg.name) or t.sig.inputs_to_buffers[arg.name]
        return t.ep.state_dict[name].detach().double().numpy()

    var, mean = get(a["running_var"], None), get(a["running_mean"], None)
    w, b = get(a["weight"], np.ones_like(var)), get(a["bias"], np.zeros_like(var))
    scale = w / np.sqrt(var + eps)
    key = f"{PREFIX}{node.name}"
    t.extra[f"{key}/scale"] = scale.astype(np.float32)
    t.extra[f"{key}/shift"] = (b - mean * scale).astype(np.float32)
    t._emit(node, "affine", [t._value(a["input"], "the input")], scale=f"{key}/scale",
            shift=f"{key}/shift")


def _max_pool(t, node, a):
    k = _pair(a["kernel_size"])
    t._emit(node, "max_pool2d", [t._value(a["self"], "the input")], kernel=k,
            stride=_pair(a["stride"]) if a["stride"] else k, padding=_pair(a["padding"]),
            dilation=_pair(a["dilation"]), ceil_mode=bool(a["ceil_mode"]))


def _avg_pool(t, node, a):
    k = _pair(a["kernel_size"])
    t._emit(node, "avg_pool2d", [t._value(a["self"], "the input")], kernel=k,
            stride=_pair(a["stride"]) if a["stride"] else k, padding=_pair(a["padding"]),
            ceil_mode=bool(a["ceil_mode"]), count_include_pad=bool(a["count_include_pad"]),
            divisor=a["divisor_override"])


def _adaptive(t, node, a):
    size = _pair(a["output_size"])
    t._emit(node, "adaptive_avg_pool2d", [t._value(a["self"], "the input")], size=size)


def _softmax(t, node, a):
    t._emit(node, "softmax", [t._value(a["self"], "the input")], dim=int(a["dim"]))


def _binary(op):
    def handle(t, node, a):
        x, other = a["self"], a["other"]
        if a.get("alpha", 1) != 1:
            raise CaptureError("alpha other than 1")
        ins = [t._value(x, "the first operand")]
        if isinstance(other, torch.fx.Node) and other.op == "placeholder" \
                and other.name not in t.values:
            return t._emit(node, op, ins, constant=t._tensor(other, "the second operand"))
        if isinstance(other, (int, float)):
            return t._emit(node, op, ins, scalar=float(other))
        t._emit(node, op, ins + [t._value(other, "the second operand")])
    return handle


def _cat(t, node, a):
    t._emit(node, "cat", [t._value(v, "an input") for v in a["tensors"]], dim=int(a["dim"]))


def _view(t, node, a):
    shape = list(a["size"] if "size" in a else a["shape"])
    if not (shape and isinstance(shape[0], torch.fx.Node)
            and t.values.get(shape[0].name) is _BATCH):
        raise CaptureError("a view that does not keep the batch first")
    rest = []
    for d in shape[1:]:
        if not isinstance(d, int):
            raise CaptureError("a view whose sizes depend on the input beyond the batch")
        rest.append(d)
    t._emit(node, "reshape", [t._value(a["self"], "the input")], shape=rest)


def _flatten(t, node, a):
    t._emit(node, "flatten", [t._value(a["self"], "the input")], start=int(a["start_dim"]),
            end=int(a["end_dim"]))


def _unsqueeze(t, node, a):
    t._emit(node, "unsqueeze", [t._value(a["self"], "the input")], dim=int(a["dim"]))


def _squeeze(t, node, a):
    x, dim = a["self"], a.get("dim")
    if isinstance(dim, int):
        dims = [dim]
    elif dim is not None:
        dims = [int(d) for d in dim]
    else:
        dims = [i for i, s in enumerate(x.meta["val"].shape) if i and s == 1]
    t._emit(node, "squeeze", [t._value(x, "the input")], dims=dims)


def _identity(t, node, a):
    if a.get("train"):
        raise CaptureError("dropout in training mode")
    t._emit(node, "identity", [t._value(a["self"] if "self" in a else a["input"], "the input")])


def _embedding(t, node, a):
    t._emit(node, "embedding", [t._value(a["indices"], "the indices")],
            weight=t._tensor(a["weight"], "the table"))


def _permute(t, node, a):
    n = len(a["self"].meta["val"].shape)
    if "dims" in a:
        perm = [int(d) % n for d in a["dims"]]
    else:
        perm = list(range(n))
        i, j = int(a["dim0"]) % n, int(a["dim1"]) % n
        perm[i], perm[j] = perm[j], perm[i]
    t._emit(node, "permute", [t._value(a["self"], "the input")], perm=perm)


def _reduce(kind):
    def handle(t, node, a):
        dims = a["dim"]
        if dims is None or not len(dims):
            raise CaptureError("a reduction over every dimension (the batch included)")
        t._emit(node, "reduce", [t._value(a["self"], "the input")], kind=kind,
                dims=[int(d) for d in dims], keepdim=bool(a["keepdim"]))
    return handle


_HANDLERS = {
    "aten.conv2d.default": lambda t, n, a: _conv(t, n, a, False),
    "aten.conv1d.default": lambda t, n, a: _conv(t, n, a, False),
    "compactnn.conv2d.default": lambda t, n, a: _conv(t, n, a, True),
    "aten.linear.default": lambda t, n, a: _linear(t, n, a, False),
    "compactnn.linear.default": lambda t, n, a: _linear(t, n, a, True),
    "aten.relu.default": _unary("relu"), "aten.relu_.default": _unary("relu"),
    "aten.sigmoid.default": _unary("sigmoid"), "aten.tanh.default": _unary("tanh"),
    "aten.gelu.default": _gelu,
    "aten.batch_norm.default": _batch_norm,
    "aten.max_pool2d.default": _max_pool, "aten.avg_pool2d.default": _avg_pool,
    "aten.adaptive_avg_pool2d.default": _adaptive,
    "aten.softmax.int": _softmax,
    "aten.add.Tensor": _binary("add"), "aten.add_.Tensor": _binary("add"),
    "aten.mul.Tensor": _binary("mul"), "aten.mul_.Tensor": _binary("mul"),
    "aten.cat.default": _cat,
    "aten.view.default": _view, "aten.reshape.default": _view,
    "aten.flatten.using_ints": _flatten, "aten.unsqueeze.default": _unsqueeze,
    "aten.squeeze.dim": _squeeze, "aten.squeeze.dims": _squeeze,
    "aten.squeeze.default": _squeeze,
    "aten.dropout.default": _identity, "aten.clone.default": _identity,
    "aten.contiguous.default": _identity, "aten.detach.default": _identity,
    "aten.alias.default": _identity,
    "aten.embedding.default": _embedding,
    "aten.transpose.int": _permute, "aten.permute.default": _permute,
    "aten.amax.default": _reduce("max"), "aten.mean.dim": _reduce("mean"),
}
