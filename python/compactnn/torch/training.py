"""The training loop that fine-tuning and gradual pruning share."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .._progress import bar


def batches(data, batch_size: int, generator: torch.Generator):
    """An epoch of (x, y) batches: from a pair (X, Y) of arrays or tensors, shuffled; or
    from any iterable of pairs, such as a DataLoader, as it is."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], tuple):
        X, Y = (a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
                for a in data)
        if X.is_floating_point():
            X = X.to(torch.float32)
        if len(X) != len(Y):
            raise ValueError(f"data has {len(X)} inputs but {len(Y)} targets")
        order = torch.randperm(len(X), generator=generator)
        return [(X[order[i:i + batch_size]], Y[order[i:i + batch_size]])
                for i in range(0, len(X), batch_size)]
    return data


def count_batches(data, batch_size: int) -> int:
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], tuple):
        return math.ceil(len(data[0]) / batch_size)
    try:
        return len(data)
    except TypeError:
        return 0  # an iterable of unknown length: no schedule can be fitted to it


def train_epochs(model: nn.Module, opt, data, loss_fn, epochs: int, batch_size: int, generator, *,
           cosine: bool, progress: bool, desc: str = "", after_step=None) -> None:
    """`epochs` epochs over `data` (see batches) with `opt`; with `cosine`, the rate decays
    to zero over all steps (where their number is known); after_step() follows every step."""
    steps = epochs * count_batches(data, batch_size)
    sched = (torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
        if cosine and steps else None)
    model.train()
    for epoch in range(epochs):
        total, count = 0.0, 0
        epoch_batches = batches(data, batch_size, generator)
        with bar(epoch_batches, desc=f"{desc}epoch {epoch + 1}/{epochs}", unit="batch",
                 disable=not progress) as it:
            for x, y in it:
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                if after_step is not None:
                    after_step()
                total, count = total + float(loss.detach()), count + 1
                it.set_postfix(loss=f"{total / count:.4f}", refresh=False)
