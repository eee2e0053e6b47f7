"""The graph a model file holds for the runtime (docs/runtime.md): its op set, the checks a
graph from a file passes before anything runs, and shape inference.

A graph is JSON: {"inputs": [{"name", "shape", "dtype"}], "outputs": [name], "nodes":
[node]}; an input's shape has null for the batch, its dtype is float32 or int64 (indices).  Each node has a "name", an "op", its "inputs" (names
of the graph's input or of earlier nodes: nodes come in the order they run, so a graph from
a file cannot hold a cycle), the "module" that produced it (for messages) and the op's
arguments.  Weights are named: "matrix" (a compressed matrix of the file), "weight",
"bias", "scale", "shift", "constant" (its tensors).  Nothing here needs more than numpy."""
from __future__ import annotations

import math

import numpy as np

from ..matrix.formats import CompressedMatrix, FormatError

# op -> its arguments besides name, op, inputs and module (all required, in this order).
OPS = {
    "linear": ("matrix", "weight", "bias"),
    "conv2d": ("matrix", "weight", "bias", "kernel", "stride", "padding", "dilation", "dims"),
    "relu": (), "sigmoid": (), "tanh": (), "gelu": ("approximate",),
    "affine": ("scale", "shift"),
    "max_pool2d": ("kernel", "stride", "padding", "dilation", "ceil_mode"),
    "avg_pool2d": ("kernel", "stride", "padding", "ceil_mode", "count_include_pad", "divisor"),
    "adaptive_avg_pool2d": ("size",),
    "softmax": ("dim",),
    "add": ("constant", "scalar"), "mul": ("constant", "scalar"),
    "cat": ("dim",),
    "reshape": ("shape",), "flatten": ("start", "end"), "unsqueeze": ("dim",),
    "squeeze": ("dims",), "identity": (),
    "permute": ("perm",), "reduce": ("kind", "dims", "keepdim"), "embedding": ("weight",),
}
DTYPES = ("float32", "int64")  # of the graph's inputs (integers: indices for embeddings)
MAX_INPUTS = 8
ALIASES = ("reshape", "flatten", "unsqueeze", "squeeze", "identity")  # share their input's data
MAX_NODES = 1 << 16
MAX_DIM = 1 << 31
MAX_NDIM = 8
MAX_EXAMPLE = 1 << 28  # floats of one value for one example (1 GiB): a file cannot ask for more


def _bad(where: str, what: str):
    return FormatError(f"model graph: {where}: {what}")


class Graph:
    """A validated graph with the file's matrices and tensors it names."""

    def __init__(self, doc, matrices: dict[str, CompressedMatrix], tensors: dict[str, np.ndarray]):
        if not isinstance(doc, dict) or not all(k in doc for k in ("inputs", "outputs", "nodes")):
            raise _bad("graph", "lacks its inputs, outputs or nodes")
        inputs, outputs, nodes = doc["inputs"], doc["outputs"], doc["nodes"]
        if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_INPUTS:
            raise _bad("inputs", f"not a list of 1 to {MAX_INPUTS} inputs")
        self.inputs = [self._input(i, spec) for i, spec in enumerate(inputs)]
        if not isinstance(nodes, list) or len(nodes) > MAX_NODES:
            raise _bad("nodes", "not a list of at most 65536 nodes")
        self.matrices, self.tensors = matrices, tensors
        known = set()
        for name, _, _ in self.inputs:
            if name in known:
                raise _bad("inputs", f"{name!r} named twice")
            known.add(name)
        self.nodes = []
        for i, node in enumerate(nodes):
            self.nodes.append(self._node(i, node, known))
            known.add(self.nodes[-1]["name"])
        if not (isinstance(outputs, list) and len(outputs) == 1 and outputs[0] in known):
            raise _bad("outputs", f"{outputs!r} is not one value of the graph")
        self.output = outputs[0]

    @staticmethod
    def _input(i: int, spec) -> tuple[str, tuple, str]:
        """(name, one example's shape, dtype) of input i."""
        if not isinstance(spec, dict):
            raise _bad(f"input {i}", "is not an object")
        name = _name(spec.get("name"), f"input {i}")
        shape, dtype = spec.get("shape"), spec.get("dtype", "float32")
        if not (isinstance(shape, list) and 1 <= len(shape) <= MAX_NDIM and shape[0] is None
                and all(_int(d, 1) for d in shape[1:])):
            raise _bad(f"input {name!r}", f"shape {shape!r} is not [null, positive sizes...]")
        if math.prod(shape[1:]) > MAX_EXAMPLE:
            raise _bad(f"input {name!r}", f"shape {shape} is larger than the runtime takes")
        if dtype not in DTYPES:
            raise _bad(f"input {name!r}", f"dtype {dtype!r} is not one of {DTYPES}")
        return name, tuple(shape[1:]), dtype

    def _node(self, i: int, node, known: set) -> dict:
        where = f"node {i}"
        if not isinstance(node, dict):
            raise _bad(where, "is not an object")
        name = _name(node.get("name"), where)
        where = f"node {name!r}"
        op = node.get("op")
        if op not in OPS:
            raise _bad(where, f"unknown op {op!r}")
        if name in known:
            raise _bad(where, "names a value twice")
        ins = node.get("inputs")
        if not (isinstance(ins, list) and 1 <= len(ins) <= 64 and all(isinstance(n, str) for n in ins)):
            raise _bad(where, "inputs must be a list of names")
        for n in ins:
            if n not in known:
                raise _bad(where, f"input {n!r} is not an earlier value (dangling, or a cycle)")
        if op in ("add", "mul"):
            operands = (node.get("constant") is not None) + (node.get("scalar") is not None)
            if operands > 1:
                raise _bad(where, f"{op} has both a constant and a scalar")
            want = 2 - operands
        else:
            want = len(ins) if op == "cat" else 1
        if len(ins) != want:
            raise _bad(where, f"{op} has {len(ins)} inputs, not {want}")
        if not isinstance(node.get("module", ""), str):
            raise _bad(where, "module must be a string")
        for key in OPS[op]:
            if key not in node:
                raise _bad(where, f"{op} lacks its argument {key!r}")
        for key in ("matrix",):
            if node.get(key) is not None and node[key] not in self.matrices:
                raise _bad(where, f"names matrix {node[key]!r}, which the file does not hold")
        for key in ("weight", "bias", "scale", "shift", "constant"):
            v = node.get(key)
            if v is None:
                continue
            t = self.tensors.get(v) if isinstance(v, str) else None
            if t is None or t.dtype != np.float32:
                raise _bad(where, f"{key} {v!r} is not a float32 tensor of the file")
        if op in ("linear", "conv2d") and (node["matrix"] is None) == (node["weight"] is None):
            raise _bad(where, f"{op} needs a matrix or a weight")
        if op in ("add", "mul") and node["scalar"] is not None and not _real(node["scalar"]):
            raise _bad(where, "scalar is not a finite number")
        if op == "gelu" and node["approximate"] not in ("none", "tanh"):
            raise _bad(where, f"gelu approximation {node['approximate']!r}")
        return node

    def infer(self, batch: int) -> dict[str, tuple]:
        """Every value's shape for a batch of `batch` inputs; FormatError where the graph
        does not fit together (a weight of the wrong shape, a reshape of the wrong size)."""
        shapes = {name: (batch, *shape) for name, shape, _ in self.inputs}
        for node in self.nodes:
            ins = [shapes[n] for n in node["inputs"]]
            try:
                shape = _OUT[node["op"]](self, node, *ins)
            except FormatError:
                raise
            except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError) as e:
                raise _bad(f"node {node['name']!r} ({node['op']})", str(e)) from None
            if len(shape) > MAX_NDIM or any(not 0 < d < MAX_DIM for d in shape[1:]) \
                    or math.prod(shape[1:]) > MAX_EXAMPLE:
                raise _bad(f"node {node['name']!r} ({node['op']})", f"output shape {shape}")
            shapes[node["name"]] = tuple(int(d) for d in shape)
        return shapes


def _name(v, where: str) -> str:
    if not isinstance(v, str) or not v or len(v) > 256:
        raise _bad(where, f"name {v!r} is not a short string")
    return v


def _int(v, low: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v < MAX_DIM


def _real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _pair(v, name: str, low: int) -> tuple[int, int]:
    if not (isinstance(v, list) and len(v) == 2 and all(_int(d, low) for d in v)):
        raise ValueError(f"{name} {v!r} is not two integers >= {low}")
    return v[0], v[1]


def _dim(d, ndim: int) -> int:
    if isinstance(d, bool) or not isinstance(d, int) or not -ndim <= d < ndim:
        raise ValueError(f"dim {d!r} is outside {ndim} dimensions")
    return d % ndim


def _weights(g: Graph, node, rows_cols) -> None:
    """The matrix or weight has rows_cols = (outputs, inputs); the bias one per output."""
    if node["matrix"] is not None:
        shape = g.matrices[node["matrix"]].shape
    else:
        w = g.tensors[node["weight"]]
        shape = (w.shape[0], int(np.prod(w.shape[1:]))) if w.ndim >= 2 else None
    if shape != tuple(rows_cols):
        raise ValueError(f"weights of shape {shape} do not fit {rows_cols[1]} inputs"
                         f" and {rows_cols[0]} outputs")
    if node["bias"] is not None and g.tensors[node["bias"]].shape != (rows_cols[0],):
        raise ValueError(f"bias of shape {g.tensors[node['bias']].shape} for {rows_cols[0]} outputs")


def _outputs(g: Graph, node) -> int:
    if node["matrix"] is not None:
        return g.matrices[node["matrix"]].shape[0]
    return g.tensors[node["weight"]].shape[0]


def _linear(g, node, x):
    rows = _outputs(g, node)
    _weights(g, node, (rows, x[-1]))
    return (*x[:-1], rows)


def _conv(g, node, x):
    kh, kw = _pair(node["kernel"], "kernel", 1)
    sh, sw = _pair(node["stride"], "stride", 1)
    ph, pw = _pair(node["padding"], "padding", 0)
    dh, dw = _pair(node["dilation"], "dilation", 1)
    if node["dims"] not in (1, 2) or len(x) != node["dims"] + 2:
        raise ValueError(f"a {node['dims']}-D convolution of a {len(x)}-D input")
    n, c, h, w = x if len(x) == 4 else (x[0], x[1], 1, x[2])
    rows = _outputs(g, node)
    _weights(g, node, (rows, c * kh * kw))
    ho, wo = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"the kernel does not fit the input of shape {x}")
    return (n, rows, ho, wo) if len(x) == 4 else (n, rows, wo)


def _same(g, node, *xs):
    return xs[0]


def _affine(g, node, x):
    for key in ("scale", "shift"):
        if len(x) < 2 or g.tensors[node[key]].shape != (x[1],):
            raise ValueError(f"{key} does not have one value per channel of {x}")
    return x


def _pool_size(size, k, s, p, d, ceil_mode):
    """torch's output size: with ceil_mode the last window must start inside the input or
    its left padding."""
    span = d * (k - 1) + 1
    if p * 2 > k:
        raise ValueError("padding is more than half the kernel")
    out = (size + 2 * p - span + ((s - 1) if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    if out < 1:
        raise ValueError(f"the window does not fit {size}")
    return out


def _pool(g, node, x):
    if len(x) != 4:
        raise ValueError(f"pooling of a {len(x)}-D input")
    k = _pair(node["kernel"], "kernel", 1)
    s = _pair(node["stride"], "stride", 1)
    p = _pair(node["padding"], "padding", 0)
    d = _pair(node["dilation"], "dilation", 1) if node["op"] == "max_pool2d" else (1, 1)
    if not isinstance(node["ceil_mode"], bool):
        raise ValueError("ceil_mode is not a boolean")
    if node["op"] == "avg_pool2d":
        if not isinstance(node["count_include_pad"], bool) or not (
                node["divisor"] is None or _int(node["divisor"], 1)):
            raise ValueError("count_include_pad or divisor is malformed")
    return (*x[:2], *(_pool_size(x[2 + i], k[i], s[i], p[i], d[i], node["ceil_mode"])
                      for i in range(2)))


def _adaptive(g, node, x):
    if len(x) != 4:
        raise ValueError(f"pooling of a {len(x)}-D input")
    return (*x[:2], *_pair(node["size"], "size", 1))


def _softmax(g, node, x):
    _dim(node["dim"], len(x))
    return x


def _broadcast(g, node, a, b=None):
    if b is None:
        b = () if node["constant"] is None else g.tensors[node["constant"]].shape
    n = max(len(a), len(b))
    a1, b1 = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    out = []
    for u, v in zip(a1, b1):
        if u != v and 1 not in (u, v):
            raise ValueError(f"shapes {a} and {b} do not broadcast")
        out.append(max(u, v))
    if tuple(out) != tuple(a) and node["inputs"] and len(node["inputs"]) == 1:
        raise ValueError(f"the constant {b} would enlarge {a}")
    return tuple(out)


def _cat(g, node, *xs):
    d = _dim(node["dim"], len(xs[0]))
    if d == 0:
        raise ValueError("concatenating along the batch")
    for x in xs[1:]:
        if len(x) != len(xs[0]) or any(u != v for i, (u, v) in enumerate(zip(x, xs[0])) if i != d):
            raise ValueError(f"shapes {xs[0]} and {x} do not concatenate along {d}")
    return (*xs[0][:d], sum(x[d] for x in xs), *xs[0][d + 1:])


def _reshape(g, node, x):
    """Each example viewed as `shape` (the batch stays first; -1 once: the rest)."""
    shape = node["shape"]
    if not (isinstance(shape, list) and len(shape) < MAX_NDIM
            and all(_int(d, 1) or d == -1 for d in shape) and shape.count(-1) <= 1):
        raise ValueError(f"shape {shape!r} is malformed")
    size, known = math.prod(x[1:]), math.prod(d for d in shape if d != -1)
    out = [size // known if d == -1 else d for d in shape]
    if math.prod(out) != size:
        raise ValueError(f"examples of shape {x[1:]} cannot be viewed as {shape}")
    return (x[0], *out)


def _flatten(g, node, x):
    start, end = _dim(node["start"], len(x)), _dim(node["end"], len(x))
    if start == 0 or end < start:
        raise ValueError(f"flatten({start}, {end}) would merge the batch")
    return (*x[:start], math.prod(x[start:end + 1]), *x[end + 1:])


def _unsqueeze(g, node, x):
    d = _dim(node["dim"], len(x) + 1)
    if d == 0:
        raise ValueError("unsqueeze before the batch")
    return (*x[:d], 1, *x[d:])


def _squeeze(g, node, x):
    dims = node["dims"]
    if not isinstance(dims, list):
        raise ValueError("dims is not a list")
    drop = {_dim(d, len(x)) for d in dims}
    if 0 in drop:
        raise ValueError("squeezing the batch")
    return tuple(s for i, s in enumerate(x) if i not in drop or s != 1)


def _permute(g, node, x):
    perm = node["perm"]
    if not (isinstance(perm, list) and sorted(perm) == list(range(len(x)))
            and all(_int(d) for d in perm) and perm[0] == 0):
        raise ValueError(f"{perm!r} is not a permutation of {len(x)} dims keeping the batch")
    return tuple(x[d] for d in perm)


def _reduce(g, node, x):
    dims = node["dims"]
    if node["kind"] not in ("max", "mean") or not isinstance(node["keepdim"], bool) \
            or not (isinstance(dims, list) and dims):
        raise ValueError("kind, dims or keepdim is malformed")
    ds = sorted({_dim(d, len(x)) for d in dims})
    if ds[0] == 0 or ds != list(range(ds[0], ds[-1] + 1)):
        raise ValueError(f"dims {dims} are not adjacent dimensions after the batch")
    if node["keepdim"]:
        return tuple(1 if i in ds else s for i, s in enumerate(x))
    return tuple(s for i, s in enumerate(x) if i not in ds)


def _embedding(g, node, x):
    w = g.tensors[node["weight"]]
    if w.ndim != 2 or not w.size:
        raise ValueError(f"an embedding table of shape {w.shape}")
    return (*x, w.shape[1])


_OUT = {
    "linear": _linear, "conv2d": _conv, "relu": _same, "sigmoid": _same, "tanh": _same,
    "gelu": _same, "affine": _affine, "max_pool2d": _pool, "avg_pool2d": _pool,
    "adaptive_avg_pool2d": _adaptive, "softmax": _softmax, "add": _broadcast,
    "mul": _broadcast, "cat": _cat, "reshape": _reshape, "flatten": _flatten,
    "unsqueeze": _unsqueeze, "squeeze": _squeeze, "identity": _same,
    "permute": _permute, "reduce": _reduce, "embedding": _embedding,
}
assert set(_OUT) == set(OPS)
