"""The size/speed objective: which of a layer's forms (formats, layouts, or dense float32) to
keep, from their exact sizes and the modelled product times of costs.py.

"small" keeps the smallest form of each layer.  "fast" (the default) keeps the fastest forms
whose total size stays within MARGIN of the smallest: for one matrix, the fastest form at
most 15% larger than its smallest; for a model, a layer may take more than 15% (a small layer
kept dense, say) where others take less, as long as the whole model stays within 15%."""
from __future__ import annotations

MARGIN = 0.15
OBJECTIVES = ("fast", "small")


def check_objective(objective) -> str:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {objective!r}")
    return objective


def pick(groups: list[list[tuple[int, float]]], objective: str,
         margin: float = MARGIN) -> list[int]:
    """For each group (a layer) of (nbytes, ns) options, the index of the one to keep.

    "fast" starts from each group's smallest option and, while the extra bytes stay within
    `margin` of the smallest total, takes the move that saves the most time per extra byte
    (moves that cost no bytes first); ties go to the earlier group and option, so the
    choice depends on the numbers alone."""
    check_objective(objective)
    current = [min(range(len(g)), key=lambda i: (g[i][0], i)) for g in groups]
    if objective == "small":
        return current
    budget = margin * sum(g[i][0] for g, i in zip(groups, current))
    spent = 0.0
    while True:
        best = None
        for gi, g in enumerate(groups):
            b0, t0 = g[current[gi]]
            for oi, (b, t) in enumerate(g):
                if t >= t0 or spent + b - b0 > budget:
                    continue
                key = ((t0 - t) / max(b - b0, 1e-9), -gi, -oi)
                if best is None or key > best[0]:
                    best = (key, gi, oi)
        if best is None:
            return current
        _, gi, oi = best
        spent += groups[gi][oi][0] - groups[gi][current[gi]][0]
        current[gi] = oi
