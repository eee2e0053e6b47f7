"""`compactnn demo`: every format on a pruned and quantized random matrix."""
from __future__ import annotations

import numpy as np

from ..bench.timing import median_time
from ..compression.prune import prune
from ..compression.quantize import cws
from ..matrix.formats import HAM, HCSR, IndexMap


def demo_rows(n_rows: int, n_cols: int, amount: float, k: int, seed: int) -> list[dict]:
    """One row per (matrix, format): bytes, psi, bits per weight, error against numpy."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_rows, n_cols)).astype(np.float32)
    x = rng.standard_normal(n_cols).astype(np.float32)
    cases = [(f"dense, k={k}", cws(W, k).to_dense())]
    if amount > 0:
        pruned, _ = prune(W, amount)
        cases.append((f"{amount:.0%} pruned, k={k}", cws(pruned, k).to_dense()))
    rows = []
    for label, Q in cases:
        ref = Q.astype(np.float64) @ x
        scale = np.abs(Q).astype(np.float64) @ np.abs(x) + 1e-30
        t_dense = median_time(lambda: Q @ x, budget=0.2)
        rows.append(dict(matrix=label, format="numpy float32", bytes=Q.nbytes, psi=1.0,
                         bits=32.0, err=float(np.max(np.abs(Q @ x - ref) / scale)),
                         ms=1e3 * t_dense))
        for fmt in (IndexMap, HAM, HCSR):
            m = fmt.from_dense(Q)
            y = m @ x
            rows.append(dict(matrix=label, format=fmt.__name__, bytes=m.nbytes, psi=m.psi,
                             bits=m.bits_per_weight,
                             err=float(np.max(np.abs(y - ref) / scale)),
                             ms=1e3 * median_time(lambda: m.dot(x), budget=0.2)))
    return rows


def format_table(rows: list[dict]) -> str:
    head = "| matrix | format | bytes | psi | bits/weight | max rel. error | matvec ms |"
    lines = [head, "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['matrix']} | {r['format']} | {r['bytes']:,} | {r['psi']:.4f} | "
            f"{r['bits']:.2f} | {r['err']:.1e} | {r['ms']:.2f} |"
        )
    return "\n".join(lines)
