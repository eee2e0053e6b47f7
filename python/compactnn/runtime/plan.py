"""A graph planned for one batch size: every value placed in one float32 arena (values whose
lifetimes do not overlap share space; reshapes share their input's), and the steps the
native core runs over it (_core.Program, which checks every offset again).  A relu whose
input is a linear or convolution output read by nothing else is done by that step, on its
output while it is still in cache, and shares its place; a 2x2 max pool of stride 2 right
after a convolution (and its relu) that nothing else reads is done by the convolution, image
by image, whose unpooled output is then never stored."""
from __future__ import annotations

import math

import numpy as np

from .. import _core
from .graph import ALIASES, Graph

_CODES = dict(linear=1, conv2d=2, relu=3, gelu=4, gelu_tanh=5, sigmoid=6, tanh=7, affine=8,
              max_pool2d=9, avg_pool2d=10, adaptive_avg_pool2d=11, softmax=12, add=13, mul=14,
              cat=15, permute=16, reduce_max=17, reduce_mean=18, embedding=19)


class Plan:
    """shapes: every value's; offsets: the arena offset of every value; program: the steps."""

    def __init__(self, graph: Graph, batch: int):
        self.shapes = shapes = graph.infer(batch)
        nodes = graph.nodes
        by_name = {node["name"]: node for node in nodes}
        readers = _readers(graph)
        fused = _fused_relus(graph, readers)
        pools = _fused_pools(graph, shapes, fused, readers)  # pool -> the conv2d it ends
        absorbed = set(pools.values())  # convolutions done by their pool's step
        root = {name: name for name, _, _ in graph.inputs}
        for node in nodes:
            shared = node["op"] in ALIASES or node["name"] in fused
            root[node["name"]] = root[node["inputs"][0]] if shared else node["name"]
        last = {name: -1 for name in root}
        for i, node in enumerate(nodes):
            reads = node["inputs"] if node["name"] not in pools else \
                by_name[pools[node["name"]]]["inputs"]  # the step runs the convolution here
            for n in reads:
                last[root[n]] = i
        last[root[graph.output]] = len(nodes)
        offsets, live, start = {}, [], 0  # live: (start, end, root)
        for name, _, _ in graph.inputs:  # the inputs first, side by side
            offsets[name] = start
            live.append((start, start + math.prod(shapes[name]), name))
            start = live[-1][1]
        for i, node in enumerate(nodes):
            name = node["name"]
            if root[name] in absorbed:  # the convolution and its relu: never stored
                continue
            if root[name] != name:
                offsets[name] = offsets[root[name]]
                continue
            live = sorted(a for a in live if last[a[2]] >= i)  # (an unread output: freed here)
            size, start = math.prod(shapes[name]), 0
            for a in live:  # first fit
                if a[0] - start >= size:
                    break
                start = max(start, a[1])
            offsets[name] = start
            live.append((start, start + size, name))
        self.offsets = offsets
        self.arena_size = max(offsets[n] + math.prod(shapes[n]) for n in offsets)
        relu_after = {node["inputs"][0] for node in nodes if node["name"] in fused}
        steps = []
        for node in nodes:
            name = node["name"]
            if root[name] != name or name in absorbed:
                continue
            if name in pools:  # the convolution, writing the pooled value
                conv = by_name[pools[name]]
                steps.append((*_step(graph, conv, shapes, {**offsets, conv["name"]: offsets[name]},
                                     conv["name"] in relu_after), True))
            else:
                steps.append((*_step(graph, node, shapes, offsets, name in relu_after), False))
        self.program = _core.Program(steps, self.arena_size)


def _readers(graph: Graph) -> dict[str, int]:
    """How many node inputs read each value."""
    readers: dict[str, int] = {}
    for node in graph.nodes:
        for n in node["inputs"]:
            readers[n] = readers.get(n, 0) + 1
    return readers


def _fused_relus(graph: Graph, readers: dict[str, int]) -> set[str]:
    """The relu nodes their producing linear or conv2d step does: the only reader of a
    value that is not the graph's output."""
    ops = {node["name"]: node["op"] for node in graph.nodes}
    return {node["name"] for node in graph.nodes
            if node["op"] == "relu" and ops.get(node["inputs"][0]) in ("linear", "conv2d")
            and readers[node["inputs"][0]] == 1 and node["inputs"][0] != graph.output}


def _fused_pools(graph: Graph, shapes: dict, fused: set,
                 readers: dict[str, int]) -> dict[str, str]:
    """{max_pool2d node: conv2d node} for each 2x2 max pool of stride 2 that the convolution
    right before it (and its fused relu) does on each image's output while it is in cache:
    the pool is the only reader of that output, which is not the graph's output."""
    out, nodes = {}, graph.nodes
    for i, node in enumerate(nodes):
        if node["op"] != "max_pool2d" or i == 0:
            continue
        src = nodes[i - 1]  # the pool's input, made by the node before
        if src["name"] != node["inputs"][0]:
            continue
        if src["name"] in fused:  # conv2d, its relu, max_pool2d: the conv right before
            src = nodes[i - 2] if i >= 2 and nodes[i - 2]["name"] == src["inputs"][0] else None
        if src is None or src["op"] != "conv2d" or src["dims"] != 2:
            continue
        h, w = shapes[src["name"]][2:]
        if (list(node["kernel"]), list(node["stride"]), list(node["padding"]),
                list(node["dilation"])) != ([2, 2], [2, 2], [0, 0], [1, 1]) \
                or shapes[node["name"]][2:] != (h // 2, w // 2):
            continue
        values = {src["name"], node["inputs"][0]}  # the convolution's (and its relu's)
        if all(readers[v] == 1 for v in values) and graph.output not in values:
            out[node["name"]] = src["name"]
    return out


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _contiguous_strides(shape) -> list[int]:
    strides, s = [], 1
    for d in reversed(shape):
        strides.append(s)
        s *= d
    return strides[::-1]


def _broadcast_strides(shape, out) -> list[int]:
    shape = (1,) * (len(out) - len(shape)) + tuple(shape)
    return [0 if d == 1 and o != 1 else s
            for d, o, s in zip(shape, out, _contiguous_strides(shape))]


def _step(g: Graph, node: dict, shapes: dict, offsets: dict, relu: bool):
    op, name = node["op"], node["name"]
    ins = [shapes[n] for n in node["inputs"]]
    x, out = ins[0], shapes[name]
    matrix = weight = bias = None
    if op in ("linear", "conv2d"):
        matrix = g.matrices[node["matrix"]]._c if node["matrix"] is not None else None
        weight = None if node["weight"] is None else _f32(g.tensors[node["weight"]]).reshape(-1)
        bias = None if node["bias"] is None else _f32(g.tensors[node["bias"]])
    if op == "gelu" and node["approximate"] == "tanh":
        code = _CODES["gelu_tanh"]
    else:
        code = _CODES[f"reduce_{node['kind']}" if op == "reduce" else op]
    if op == "linear":
        p = [math.prod(x[:-1]), x[-1], out[-1]]
    elif op == "conv2d":
        n, c, h, w = x if len(x) == 4 else (x[0], x[1], 1, x[2])
        p = [n, c, h, w, *node["kernel"], *node["stride"], *node["padding"], *node["dilation"],
             out[1]]
    elif op in ("relu", "gelu", "sigmoid", "tanh"):
        p = [math.prod(x)]
    elif op == "affine":
        p = [x[0], x[1], math.prod(x[2:])]
        weight, bias = _f32(g.tensors[node["scale"]]), _f32(g.tensors[node["shift"]])
    elif op == "max_pool2d":
        p = [x[0] * x[1], x[2], x[3], *node["kernel"], *node["stride"], *node["padding"],
             *node["dilation"], out[2], out[3]]
    elif op == "avg_pool2d":
        p = [x[0] * x[1], x[2], x[3], *node["kernel"], *node["stride"], *node["padding"],
             out[2], out[3], int(node["count_include_pad"]), node["divisor"] or 0]
    elif op == "adaptive_avg_pool2d":
        p = [x[0] * x[1], x[2], x[3], out[2], out[3]]
    elif op == "softmax":
        d = node["dim"] % len(x)
        p = [math.prod(x[:d]), x[d], math.prod(x[d + 1:])]
    elif op in ("add", "mul"):
        if len(ins) == 2:
            b = ins[1]
        elif node["constant"] is not None:
            weight = _f32(g.tensors[node["constant"]])
            b = weight.shape
            weight = weight.reshape(-1)
        else:
            weight, b = np.array([node["scalar"]], np.float32), ()
        p = [len(out), *out, *_broadcast_strides(x, out), *_broadcast_strides(b, out)]
    elif op == "cat":
        d = node["dim"] % len(x)
        p = [math.prod(x[:d]), *(math.prod(s[d:]) for s in ins)]
    elif op == "permute":
        p = [len(x), *x, *node["perm"]]
    elif op == "reduce":
        ds = sorted(d % len(x) for d in node["dims"])
        p = [math.prod(x[:ds[0]]), math.prod(x[ds[0]:ds[-1] + 1]), math.prod(x[ds[-1] + 1:])]
    else:  # embedding
        weight = _f32(g.tensors[node["weight"]])
        p = [math.prod(x), *weight.shape]
        weight = weight.reshape(-1)
    return (code, [offsets[n] for n in node["inputs"]], offsets[name], [int(v) for v in p],
            matrix, weight, bias, relu)
