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
