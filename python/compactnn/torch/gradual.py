"""Gradual magnitude pruning of a dense PyTorch model, with training between the steps.

One-shot pruning of 90% or more of a network's weights costs accuracy that retraining the
compressed model does not all win back.  Pruning in steps towards the target on a cubic
schedule (Zhu & Gupta, 2017: most weights go early, while the network can still adapt),
training the survivors under the mask after each step (Han et al., 2015), keeps it; the
result then goes to compress_model with the same `prune` and scope, which finds those
zeros already in place.
"""
from __future__ import annotations

import torch
from torch import nn

from ..model.gradual import check_amount, check_settings, fraction
from .convert import compressible_layers
from .training import train_epochs


def prune_gradually(model: nn.Module, data, amount: float, steps: int = 4,
                    epochs_per_step: int = 2, loss_fn=None, lr: float = 1e-3, *,
                    scope: str = "layer", layers=None, batch_size: int = 64, seed: int = 0,
                    progress: bool = True) -> nn.Module:
    """Zero `amount` of the weights of `model`'s compressible layers (by magnitude, per
    layer or with one global threshold as `scope` says) in `steps` steps, training with
    Adam (cosine-decayed rate) for `epochs_per_step` epochs under the mask after each step.
    layers: a callable (name, module) giving a layer its own amount, or None for `amount`;
    with scope "global", the layers of one amount share one threshold (as compress_model's
    `layers=` does), so compress_model with the same settings finds the zeros in place.
    Changes and returns `model` (dense, in eval mode).  data and loss_fn: as in finetune."""
    check_amount(amount)
    found = compressible_layers(model)
    amounts = []
    for n, m in found:
        own = None if layers is None else layers(n, m)
        amounts.append(amount if own is None else check_amount(own, f"layer {n!r}'s amount"))
    check_settings(scope, steps=steps, epochs_per_step=epochs_per_step, batch_size=batch_size)
    weights = [mod.weight for _, mod in found]
    if not weights:
        raise ValueError("the model has no Linear, Conv1d or Conv2d layer to prune")
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
    generator = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        masks = _masks(weights, amounts, fraction(step, steps), scope)

        def remask():  # after every step too: Adam's momentum would revive pruned weights
            with torch.no_grad():
                for w, m in zip(weights, masks):
                    w.mul_(m)

        remask()
        train_epochs(model, torch.optim.Adam(model.parameters(), lr=lr), data, loss_fn,
               epochs_per_step, batch_size, generator, cosine=True, progress=progress,
               desc=f"step {step}/{steps}, ", after_step=remask)
    return model.eval()


def _masks(weights, amounts, share: float, scope: str) -> list[torch.Tensor]:
    """Keep-masks zeroing `share` of each weight's amount by magnitude: per tensor, or
    with one threshold over the tensors of each amount."""
    def keep(mags: torch.Tensor, amount: float) -> torch.Tensor:
        n = int(amount * share * mags.numel())
        if n == 0:
            return torch.ones_like(mags, dtype=torch.bool)
        threshold = mags.flatten().kthvalue(n).values
        return mags > threshold

    mags = [w.detach().abs() for w in weights]
    if scope == "layer":
        return [keep(m, a) for m, a in zip(mags, amounts)]
    masks = [None] * len(mags)
    for a in set(amounts):
        group = [i for i, b in enumerate(amounts) if b == a]
        flat = keep(torch.cat([mags[i].flatten() for i in group]), a)
        for i, f in zip(group, torch.split(flat, [mags[i].numel() for i in group])):
            masks[i] = f.view_as(mags[i])
    return masks
