"""Latency of a compressed model against its dense counterpart, measured side by side."""
from __future__ import annotations

from typing import Callable

import numpy as np

from .timing import median_time


def side_by_side(dense: Callable, compressed: Callable, make_input: Callable,
                 batches=(1, 64), rounds: int = 5, budget: float = 0.3) -> list[dict]:
    """For each batch size: the median over `rounds` of each model's median time, the two
    measured in turn (so slow phases of a noisy machine hit both), and the median of the
    per-round speed-ups dense / compressed (above 1: the compressed model is faster)."""
    rows = []
    for b in batches:
        x = make_input(b)
        dense(x), compressed(x)  # warm up: first calls allocate and start threads
        t_dense, t_ours, speedups = [], [], []
        for _ in range(rounds):
            td = median_time(lambda: dense(x), budget=budget)
            tc = median_time(lambda: compressed(x), budget=budget)
            t_dense.append(td)
            t_ours.append(tc)
            speedups.append(td / tc)
        rows.append(dict(batch=b, dense_ms=1e3 * float(np.median(t_dense)),
                         ours_ms=1e3 * float(np.median(t_ours)),
                         speedup=float(np.median(speedups))))
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = ["| batch | dense ms | compressed ms | speed-up (dense / compressed) |",
             "|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['dense_ms']:.3f} | {r['ours_ms']:.3f} | "
                     f"{r['speedup']:.3g}x |")
    return "\n".join(lines)


def torch_layer_times(dense, compressed, make_input: Callable, batches=(1, 64),
                      budget: float = 0.05) -> list[dict]:
    """Each layer that compress_model handled (compressed, or kept dense), timed alone on the
    input it gets in the dense model, beside the dense layer on the same input."""
    import torch

    from ..torch.layers import CompressedModule

    names = [n for n, m in compressed.named_modules()
             if isinstance(m, CompressedModule) or getattr(m, "compactnn_kept_dense", False)]
    rows = []
    for b in batches:
        inputs = {}
        hooks = [dense.get_submodule(n).register_forward_hook(
            lambda mod, args, out, n=n: inputs.__setitem__(n, args[0])) for n in names]
        try:
            with torch.inference_mode():
                dense(make_input(b))
        finally:
            for h in hooks:
                h.remove()
        for n in names:
            ours, theirs, x = compressed.get_submodule(n), dense.get_submodule(n), inputs[n]
            m = getattr(ours, "matrix", None)
            form = "dense (kept)" if m is None else \
                type(m).__name__ + (f" {m.layout}" if hasattr(m, "layout") else "")
            with torch.inference_mode():
                td = median_time(lambda: theirs(x), budget=budget)
                tc = median_time(lambda: ours(x), budget=budget)
            rows.append(dict(batch=b, layer=n, form=form, dense_us=1e6 * td, ours_us=1e6 * tc))
    return rows


def format_layer_rows(rows: list[dict]) -> str:
    lines = ["| batch | layer | form | dense us | compressed us | speed-up |",
             "|---:|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['batch']} | {r['layer']} | {r['form']} | {r['dense_us']:.1f} | "
                     f"{r['ours_us']:.1f} | {r['dense_us'] / r['ours_us']:.2f}x |")
    return "\n".join(lines)
