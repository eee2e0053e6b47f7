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

    @property
    def psi(self) -> float:
        size = int(np.prod(self.shape))
        return self.nbytes / (4 * size) if size else float("nan")


def compressed_row(name: str, kind: str, shape, m: CompressedMatrix) -> LayerRow:
    return LayerRow(name, kind, tuple(shape), type(m).__name__, m.k,
                    m.nnz / m.size if m.size else 0.0, m.nbytes)


# The format column of a layer that compress_model left dense because its compact form was
# no smaller than its float32 weights.
KEPT_DENSE = "dense (compact form not smaller)"


def dense_row(name: str, kind: str, shape, nonzeros: int, nbytes: int,
              format: str = "dense") -> LayerRow:
    size = int(np.prod(shape))
    return LayerRow(name, kind, tuple(shape), format, None,
                    nonzeros / size if size else 0.0, int(nbytes))


def format_table(rows: list[LayerRow], model_bytes: int, dense_bytes: int) -> str:
    """A markdown table, one line per layer and one for the whole model: `model_bytes`
    (every parameter, buffer and compressed matrix) against `dense_bytes` (the same model
    with float32 weights)."""
    lines = ["| layer | kind | weight shape | format | k | density | bytes | psi |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        shape = "x".join(str(s) for s in r.shape)
        k = "" if r.k is None else str(r.k)
        lines.append(f"| {r.name} | {r.kind} | {shape} | {r.format} | {k} | {r.density:.4f} "
                     f"| {r.nbytes:,} | {r.psi:.4f} |")
    psi = model_bytes / dense_bytes if dense_bytes else float("nan")
    lines.append(f"| whole model | | | | | | {model_bytes:,} | {psi:.4f} |")
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
