"""Gradual magnitude pruning of a dense Keras model, with training between the steps: the
Keras counterpart of compactnn.torch.prune_gradually (the reasons are given there)."""
from __future__ import annotations

import keras
import numpy as np

from ..compression.prune import prune, prune_global
from ..model.gradual import check_amount, check_settings, fraction
from .convert import compressible_layers


class _Mask:
    """A kernel constraint that zeroes the pruned weights again after every update (Adam's
    momentum would revive them), on top of the layer's own constraint.  Optimizers apply
    constraints inside the training step, so this holds on every backend (a callback at
    the batch's end does not see JAX's variables while fit runs)."""

    def __init__(self, mask, inner=None):
        self.mask, self.inner = mask, inner

    def __call__(self, w):
        return (w if self.inner is None else self.inner(w)) * self.mask


def prune_gradually(model, data, amount: float, steps: int = 4, epochs_per_step: int = 2,
                    loss=None, lr: float = 1e-3, *, scope: str = "layer",
                    batch_size: int = 64, seed: int = 0, progress: bool = True):
    """Zero `amount` of the weights of the model's Dense, Conv1D and Conv2D kernels (by
    magnitude, per layer or with one global threshold as `scope` says) in `steps` steps on
    a cubic schedule, training for `epochs_per_step` epochs under the mask after each step
    with Adam (rate decayed to zero by a cosine over each step's batches).

    data: a pair (X, y) of arrays.  loss: a Keras loss (default: sparse categorical
    cross-entropy on logits).  The model is compiled with that optimizer and loss; it is
    changed in place and returned, still dense, so that compress_model with the same
    `prune` and scope finds the zeros in place."""
    check_amount(amount)
    check_settings(scope, steps=steps, epochs_per_step=epochs_per_step, batch_size=batch_size)
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError("data must be a pair (X, y) of arrays")
    X, y = (np.asarray(a) for a in data)
    if len(X) != len(y):
        raise ValueError(f"data has {len(X)} inputs but {len(y)} targets")
    kernels = [layer.kernel for layer in compressible_layers(model)]
    if not kernels:
        raise ValueError("the model has no Dense, Conv1D or Conv2D layer to prune")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True) if loss is None else loss
    keras.utils.set_random_seed(seed)
    batches = epochs_per_step * -(-len(X) // batch_size)
    for step in range(1, steps + 1):
        share = amount * fraction(step, steps)
        weights = [keras.ops.convert_to_numpy(k) for k in kernels]
        if scope == "layer":
            masks = [prune(w, share)[1] for w in weights]
        else:
            masks = prune_global(weights, share)[1]
        old = [k.constraint for k in kernels]
        for kernel, w, mask, inner in zip(kernels, weights, masks, old):
            mask = mask.astype(w.dtype)
            kernel.assign(w * mask)
            kernel.constraint = _Mask(mask, inner)
        try:
            model.compile(keras.optimizers.Adam(
                keras.optimizers.schedules.CosineDecay(lr, batches)), loss)
            model.fit(X, y, batch_size=batch_size, epochs=epochs_per_step, shuffle=True,
                      verbose=2 if progress else 0)
        finally:
            for kernel, inner in zip(kernels, old):
                kernel.constraint = inner
    return model
