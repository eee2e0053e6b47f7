"""Measure the cost model of compactnn.compression.costs on this machine: for each kind of
storage (format and layout, and dense float32 through numpy), the time of a one-thread
matrix-vector product through the native call (as compactnn.torch makes it) fitted as  per_call + per_row * rows + per_entry * entries  over layers
of 10^3 to 10^7 weights.  Prints the table to paste into costs.py under the active kernel set.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/measure_costs.py
"""
from __future__ import annotations

import time

import numpy as np
from scipy.optimize import nnls
from threadpoolctl import threadpool_limits

import compactnn as cn
from compactnn import _core
from compactnn.compression.costs import kind, stored_entries
from compactnn.compression.quantize import cws

SHAPES = [(4, 16), (8, 72), (16, 144), (64, 288), (128, 1152), (360, 2048), (512, 4608), (2048, 2048),
          (1024, 1024), (128, 3136)]


def median_ns(f, budget=0.05) -> float:
    f()
    t = time.perf_counter()
    f()
    once = max(time.perf_counter() - t, 1e-7)
    reps = max(1, int(0.01 / once))
    samples = []
    for _ in range(max(5, int(budget / (once * reps)))):
        t = time.perf_counter()
        for _ in range(reps):
            f()
        samples.append((time.perf_counter() - t) / reps)
    return float(np.median(samples)) * 1e9


def forms(rng, rows, cols):
    """(kind, rows, entries, ns) of every storage of one random layer."""
    W = rng.standard_normal((rows, cols)).astype(np.float32)
    x = rng.standard_normal(cols).astype(np.float32)
    y = np.empty(rows, np.float32)
    out = []
    with threadpool_limits(1):
        out.append(("dense", rows, rows * cols, median_ns(lambda: np.dot(W, x, out=y))))
    for k in (16, 64, 256):
        m = cn.IndexMap.from_codebook(*cws(W, k))
        out.append((kind(m), rows, stored_entries(m), median_ns(lambda: m._c.matvec(x, y, 1))))
    for density, k in ((1.0, 16), (0.3, 16), (0.1, 31)):
        P = W.copy()
        P[np.abs(P) < np.quantile(np.abs(P), 1 - density)] = 0 if density < 1 else P[0, 0]
        codebook, idx = cws(P, k)
        fmts = [(cn.HCSR, "rows"), (cn.HCSR, "lanes"), (cn.HCSR, "fixed")]
        if density == 1.0:
            fmts = [(cn.HAM, "rows"), (cn.HAM, "lanes")]
        for fmt, layout in fmts:
            try:
                m = fmt.from_codebook(codebook, idx, layout)
            except ValueError:
                continue
            out.append((kind(m), rows, stored_entries(m), median_ns(lambda: m._c.matvec(x, y, 1))))
    return out


def main():
    rng = np.random.default_rng(0)
    data: dict[str, list] = {}
    for rows, cols in SHAPES:
        for name, r, e, ns in forms(rng, rows, cols):
            data.setdefault(name, []).append((r, e, ns))
    print(f'    "{_core.isa()}": {{  # {time.strftime("%Y-%m-%d")}, {cn.cpu_info()}')
    for name, points in sorted(data.items()):
        A = np.array([[1.0, r, e] for r, e, _ in points])
        t = np.array([ns for _, _, ns in points])
        coef, _ = nnls(A / t[:, None], np.ones_like(t))  # relative error, not absolute
        fit = A @ coef
        worst = float(np.max(np.abs(fit / t - 1)))
        print(f'        "{name}": ({coef[0]:.0f}, {coef[1]:.2f}, {coef[2]:.4f}),  '
              f'# worst fit {worst:.0%}')
    print("    },")


if __name__ == "__main__":
    main()
