"""What the frameworks' `finetune` share: the settings they accept and how a retrained
layer is encoded again.

retrain="codebook" is the method's scheme: a compressed layer keeps its index map and its
weight is `codebook[indices]`, so training sums the gradients of all weights that share a
value into that codebook entry; entries that are exactly zero (pruned weights) stay zero.
retrain="weights" is Deep Compression's order: the surviving weights are trained under the
pruning mask, then each layer is quantized again by its plan."""
from __future__ import annotations

import math

import numpy as np

from ..compression.pipeline import compress
from ..matrix.formats import CompressedMatrix, form_name
from .plan import Plan

RETRAIN = ("codebook", "weights")


def check_settings(retrain: str, optimizer: str, schedule: str, epochs: int, batch_size: int,
                   lr: float) -> None:
    """ValueError naming the first setting that is not allowed."""
    if retrain not in RETRAIN:
        raise ValueError(f"retrain must be one of {RETRAIN}, got {retrain!r}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0
            and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")


def retrained_codebook(old: CompressedMatrix, codebook: np.ndarray,
                       indices: np.ndarray) -> CompressedMatrix:
    """retrain="codebook": the trained codebook with the layer's index map, in its format
    and layout (entries that were zero kept at zero by the caller).  Should the layout no
    longer hold the matrix (entries trained to exactly zero are dropped from HCSR), the
    format chooses again."""
    codebook = np.asarray(codebook, np.float32)
    layout = getattr(old, "layout", None)
    if layout is not None:
        try:
            return type(old).from_codebook(codebook, indices, layout)
        except ValueError:
            pass
    return type(old).from_codebook(codebook, indices)


def requantized(old: CompressedMatrix, W: np.ndarray, plan: Plan | None) -> CompressedMatrix:
    """retrain="weights": the trained (masked) weights quantized again by the layer's plan,
    in the layer's format and layout (chosen for the whole model)."""
    plan = plan or Plan(k=old.k)
    if plan.quantize is None:  # trained weights are all distinct: share them again
        plan = Plan(quantize="cws", k=old.k)
    return compress(np.asarray(W, np.float32), prune=0.0, quantize=plan.quantize, k=plan.k,
                    format=form_name(old), **plan.options)
