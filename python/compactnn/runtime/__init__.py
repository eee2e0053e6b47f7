"""Run a saved model with numpy alone: the graph of a model file, executed by the native
core.

    import compactnn.runtime
    rt = compactnn.runtime.load("model.cnnm")   # written by compactnn.torch.save(..., example_input=)
    y = rt(x)                                    # numpy in, numpy out, any batch size

Importing this module imports neither PyTorch nor Keras.  Each batch size is planned once
(every value placed in one arena, docs/runtime.md); a call copies the input in, runs every
step natively, and copies the output out.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

from ..matrix.formats import FormatError
from ..model import file_format
from .forms import check_forms, in_memory
from .graph import Graph
from .plan import Plan

__all__ = ["Runtime", "load"]


class Runtime:
    """A model's graph, ready to run: `rt(x)` for x of shape (batch, *rt.input_shape), or
    `rt((x1, x2, ...))` for a model of several inputs (rt.inputs: their shapes and dtypes)."""

    _CACHED = 8  # batch sizes planned and kept

    def __init__(self, graph: Graph, meta: dict):
        self.graph, self.meta = graph, meta
        self._plans: OrderedDict[int, tuple[Plan, np.ndarray, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()
        self._plan(1)  # every shape and offset checked at load (and batch 1 planned)

    @property
    def inputs(self) -> list[tuple[tuple, str]]:
        """(one example's shape, dtype) of each input."""
        return [(shape, dtype) for _, shape, dtype in self.graph.inputs]

    @property
    def input_shape(self) -> tuple:
        """One example's shape (the batch left out), for a model of one input."""
        if len(self.graph.inputs) != 1:
            raise ValueError(f"the model takes {len(self.graph.inputs)} inputs: see .inputs")
        return self.graph.inputs[0][1]

    def _plan(self, batch: int):
        with self._lock:
            entry = self._plans.get(batch)
            if entry is None:
                plan = Plan(self.graph, batch)
                entry = (plan, np.empty(plan.arena_size, np.float32), threading.Lock())
                self._plans[batch] = entry
                if len(self._plans) > self._CACHED:
                    self._plans.popitem(last=False)
            self._plans.move_to_end(batch)
            return entry

    def _arrays(self, x) -> list[np.ndarray]:
        """The inputs checked against the graph's (shape, dtype), one batch size."""
        specs = self.graph.inputs
        xs = list(x) if isinstance(x, (tuple, list)) else [x]
        if len(xs) != len(specs):
            raise ValueError(f"the model takes {len(specs)} input(s), got {len(xs)}")
        out = []
        for a, (name, shape, dtype) in zip(xs, specs):
            a = np.asarray(a)
            want = f"(batch, {', '.join(map(str, shape))})"
            if a.ndim != len(shape) + 1 or a.shape[1:] != shape or not len(a):
                raise ValueError(f"the model takes inputs of shape {want}, got {a.shape}"
                                 + (f" for {name!r}" if len(specs) > 1 else ""))
            if dtype == "float32" and a.dtype.kind != "f":
                raise TypeError(f"the model takes floating-point inputs, got dtype {a.dtype}")
            if dtype == "int64":
                if a.dtype.kind not in "iu":
                    raise TypeError(f"input {name!r} holds indices: integers, not {a.dtype}")
                if a.size and (a.min() < 0 or a.max() >= 1 << 24):  # exact as float32
                    raise ValueError(f"input {name!r} holds indices outside 0 .. 2^24")
            out.append(a)
        if len({len(a) for a in out}) > 1:
            raise ValueError(f"the inputs have different batch sizes: {[len(a) for a in out]}")
        return out

    def __call__(self, x, threads: int | None = None) -> np.ndarray:
        xs = self._arrays(x)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        plan, arena, busy = self._plan(len(xs[0]))
        if not busy.acquire(blocking=False):  # another thread runs this plan: an arena of its own
            arena, busy = np.empty(plan.arena_size, np.float32), threading.Lock()
            busy.acquire()
        try:
            g = self.graph
            for a, (name, _, _) in zip(xs, g.inputs):
                start = plan.offsets[name]
                arena[start:start + a.size] = a.reshape(-1)
            plan.program.run(arena, threads or 0)
            shape = plan.shapes[g.output]
            start = plan.offsets[g.output]
            return arena[start:start + int(np.prod(shape))].reshape(shape).copy()
        finally:
            busy.release()

    def describe(self) -> list[tuple[str, str, str, tuple]]:
        """(value, op, module, shape for one example) for every node."""
        shapes = self.graph.infer(1)
        return [(n["name"], n["op"], n.get("module", ""), shapes[n["name"]][1:])
                for n in self.graph.nodes]


def load(path, forms: str = "fast") -> Runtime:
    """The runtime of a model file that holds a graph (compactnn.torch.save with
    example_input=).  FormatError for a file that is not valid or holds no graph.

    forms: "fast" re-encodes, at load, each compressed matrix that an Index Map or HCSR's
    fixed layout multiplies at least 1.5x faster on this CPU (the same weights, still
    compressed: at most a quarter of their float32 bytes; runtime/forms.py); "stored" keeps
    the forms the file holds, the least memory.  rt.graph.matrices holds the ones in use."""
    path = os.fspath(path)
    check_forms(forms)
    meta, matrices, tensors = file_format.read(path)
    if "graph" not in meta:
        raise FormatError(f"{path} holds no graph for the runtime: save the model with "
                          "compactnn.torch.save(model, path, example_input=x)")
    try:
        return Runtime(Graph(meta["graph"], in_memory(matrices, forms), tensors), meta)
    except FormatError as e:
        raise FormatError(f"{path}: {e}") from None
    except ValueError as e:  # the native core's own check of the planned steps
        raise FormatError(f"{path}: model graph: {e}") from None
