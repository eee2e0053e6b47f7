"""The schedule and settings of gradual magnitude pruning, shared by the PyTorch and Keras
adapters' prune_gradually."""
from __future__ import annotations

import numbers


def check_amount(amount, what: str = "amount") -> float:
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real) or not 0 <= amount < 1:
        raise ValueError(f"{what} must lie in [0, 1), got {amount!r}")
    return float(amount)


def check_settings(scope: str, **counts) -> None:
    """scope is 'layer' or 'global'; every count (steps, epochs_per_step, batch_size) is a
    positive integer."""
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    for name, v in counts.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def fraction(step: int, steps: int) -> float:
    """The share of the target pruned after `step` of `steps` (Zhu & Gupta's cubic schedule:
    most weights go early, while the network can still adapt)."""
    return 1 - (1 - step / steps) ** 3
