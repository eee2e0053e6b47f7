"""Per-layer tables of compressed models, shared by the framework adapters and the CLI."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..matrix.formats import CompressedMatrix


@dataclass
class LayerRow:
    name: str
    kind: str
    shape: tuple  # the weight's shape as the framework holds it
    format: str  # a format's name, or "dense"
    k: int | None
    density: float  # nonzero weights over all weights
    nbytes: int  # the weight's bytes as stored (biases not included)
    layout: str = ""  # HAM's and HCSR's layout
    model_us: float = float("nan")  # a one-thread product by the cost model (costs.py)

    @property
    def psi(self) -> float:
        size = int(np.prod(self.shape))
        return self.nbytes / (4 * size) if size else float("nan")


def compressed_row(name: str, kind: str, shape, m: CompressedMatrix) -> LayerRow:
    return LayerRow(name, kind, tuple(shape), type(m).__name__, m.k,
                    m.nnz / m.size if m.size else 0.0, m.nbytes,
                    getattr(m, "layout", ""), _model_us(m, m.shape))


# The format column of a layer that compress_model left dense because its compact form was
# no smaller than its float32 weights.
KEPT_DENSE = "dense (kept: no compact form smaller, or faster dense)"


def dense_row(name: str, kind: str, shape, nonzeros: int, nbytes: int,
              format: str = "dense", rows: int | None = None) -> LayerRow:
    """A float32 weight of `shape` (`rows` outputs: default shape[0])."""
    size = int(np.prod(shape))
    rows = shape[0] if rows is None else rows
    return LayerRow(name, kind, tuple(shape), format, None,
                    nonzeros / size if size else 0.0, int(nbytes),
                    model_us=_model_us(None, (rows, size // rows if rows else 0)))


def _model_us(m, shape) -> float:
    from ..compression.costs import expected_ns

    try:
        return expected_ns(m, shape) / 1e3
    except ValueError:  # a kernel set without a cost model
        return float("nan")


def format_table(rows: list[LayerRow], model_bytes: int, dense_bytes: int) -> str:
    """A markdown table, one line per layer and one for the whole model: `model_bytes`
    (every parameter, buffer and compressed matrix) against `dense_bytes` (the same model
    with float32 weights), and the cost model's time of each layer's one-thread
    matrix-vector product on this CPU's kernels (a guide to compare forms, not a
    measurement: `compactnn bench --model` measures)."""
    lines = ["| layer | kind | weight shape | format | layout | k | density | bytes | psi "
             "| model us |",
             "|---|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        shape = "x".join(str(s) for s in r.shape)
        k = "" if r.k is None else str(r.k)
        lines.append(f"| {r.name} | {r.kind} | {shape} | {r.format} | {r.layout} | {k} "
                     f"| {r.density:.4f} | {r.nbytes:,} | {r.psi:.4f} | {r.model_us:.1f} |")
    psi = model_bytes / dense_bytes if dense_bytes else float("nan")
    total = sum(r.model_us for r in rows)
    lines.append(f"| whole model | | | | | | | {model_bytes:,} | {psi:.4f} | {total:.1f} |")
    return "\n".join(lines)


# Layers of a PyTorch model file, read without PyTorch (for `compactnn info`).
_TORCH_WEIGHTED = {"torch.nn.Linear": "Linear", "torch.nn.Conv1d": "Conv1d",
                   "torch.nn.Conv2d": "Conv2d"}


def torch_file_rows(meta: dict, matrices: dict, tensors: dict) -> list[LayerRow]:
    """Per-layer rows of a compressed PyTorch model file (compactnn.torch.save)."""
    rows = []

    def walk(node, name):
        if not isinstance(node, dict):
            return
        kind = node.get("type", "")
        if kind.startswith("compactnn.Compressed") and name in matrices:
            m, args = matrices[name], node.get("args") or {}
            shape = m.shape
            if "kernel_size" in args:
                shape = (m.shape[0], args.get("in_channels"), *args["kernel_size"])
            rows.append(compressed_row(name, kind[len("compactnn.Compressed"):], shape, m))
        elif kind in _TORCH_WEIGHTED and f"{name}.weight" in tensors:
            w = tensors[f"{name}.weight"]
            rows.append(dense_row(name, _TORCH_WEIGHTED[kind], w.shape,
                                  int(np.count_nonzero(w)), w.nbytes))
        for child in node.get("children") or []:
            if isinstance(child, list) and len(child) == 2:
                walk(child[1], f"{name}.{child[0]}" if name else str(child[0]))

    walk(meta.get("root"), "")
    return rows
