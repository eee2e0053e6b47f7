"""Retraining of compressed PyTorch models: retrain="codebook" (the method's shared-weight
training) or "weights" (Deep Compression's order); compactnn.model.retrain explains both.

Training runs on a copy whose compressed layers are decoded to dense tensors; when it ends
the layers are encoded again, in their formats, into the given model, which then holds no
dense weight.  If training is interrupted the model is left as it was.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..model.retrain import check_settings, requantized, retrained_codebook
from .layers import CompressedModule, replace_module
from .training import train_epochs


class _Trainable(nn.Module):
    """A compressed layer's stand-in while training: the same computation on a weight
    built from trainable tensors."""

    def __init__(self, layer: CompressedModule, retrain: str):
        super().__init__()
        self.__dict__["layer"] = layer  # not a child module: only its settings are used
        codebook, indices = layer.matrix.to_codebook()
        if retrain == "codebook":
            self.codebook = nn.Parameter(torch.from_numpy(codebook.copy()))
            self.register_buffer("indices", torch.from_numpy(indices.astype(np.int64)))
            self.register_buffer("zero", torch.from_numpy(codebook == 0))
        else:
            dense = codebook[indices]
            self.weight = nn.Parameter(torch.from_numpy(dense))
            self.register_buffer("mask", torch.from_numpy(dense != 0))
        bias = layer.bias
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone())
        self.retrain = retrain

    def dense_matrix(self) -> torch.Tensor:
        if self.retrain == "codebook":
            return torch.where(self.zero, 0.0, self.codebook)[self.indices]
        return self.weight * self.mask

    def forward(self, x):
        return self.layer.dense_forward(x, self.dense_matrix(), self.bias)

    def encode(self):
        """The trained weight, compressed again: in the layer's format with the same index
        map ("codebook"), or quantized by the layer's plan ("weights")."""
        old = self.layer.matrix
        with torch.no_grad():
            if self.retrain == "codebook":
                codebook = torch.where(self.zero, 0.0, self.codebook).numpy()
                return retrained_codebook(old, codebook, self.indices.numpy())
            return requantized(old, self.dense_matrix().numpy(), self.layer.plan)


def finetune(model: nn.Module, data, loss_fn=None, epochs: int = 1, lr: float = 1e-3, *,
             retrain: str = "codebook", batch_size: int = 64, optimizer: str = "adam",
             schedule: str = "cosine", weight_decay: float = 0.0, seed: int = 0,
             progress: bool = True) -> nn.Module:
    """Retrain a compressed model and encode its layers again; returns the model, changed
    in place.

    data: a pair (inputs, targets) of arrays or tensors, batched and shuffled here by
    `batch_size` and `seed`, or an iterable of (inputs, targets) batches (a DataLoader).
    loss_fn: default cross-entropy.  optimizer: "adam" or "sgd" (momentum 0.9).
    schedule: "cosine" (the rate decays to zero over all steps) or "constant".
    retrain: "codebook" (the method's shared-weight training) or "weights" (surviving
    weights under the pruning mask, then quantized again by each layer's plan)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a torch.nn.Module, got {type(model).__name__}")
    check_settings(retrain, optimizer, schedule, epochs, batch_size, lr)
    compressed = [m for m in model.modules() if isinstance(m, CompressedModule)]
    if not compressed:
        raise ValueError("the model has no compressed layers: compress it first "
                         "(compactnn.torch.compress_model)")
    loss_fn = nn.CrossEntropyLoss() if loss_fn is None else loss_fn

    work = copy.deepcopy(model)
    for mod in [m for m in work.modules() if isinstance(m, CompressedModule)]:
        work = replace_module(work, mod, _Trainable(mod, retrain))
    params = [p for p in work.parameters() if p.requires_grad]
    opt = (torch.optim.Adam(params, lr=lr, weight_decay=weight_decay) if optimizer == "adam"
           else torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay))
    train_epochs(work, opt, data, loss_fn, epochs, batch_size, torch.Generator().manual_seed(seed),
           cosine=schedule == "cosine", progress=progress)
    _write_back(model, work)
    return model


def _write_back(model: nn.Module, work: nn.Module) -> None:
    """Encode the trained layers into `model` and copy every other trained tensor."""
    for name, mod in model.named_modules():
        if isinstance(mod, CompressedModule):
            mod.matrix = work.get_submodule(name).encode()
    own = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for key, value in work.state_dict().items():
            if key in own and not key.endswith("_extra_state"):
                own[key].copy_(value)
