"""Retraining of compressed PyTorch models.

retrain="codebook" is the method's scheme: every compressed layer keeps its index map; the
layer's weight is `codebook[indices]`, so autograd sums the gradients of all weights that
share a value into that codebook entry; the codebook entries, the biases and every other
parameter of the model are updated, and entries that are exactly zero (pruned weights)
stay zero.  retrain="weights" is Deep Compression's order: the surviving weights are
trained under the pruning mask, then each layer is quantized again by its plan.

Training runs on a copy whose compressed layers are decoded to dense tensors; when it ends
the layers are encoded again, in their formats, into the given model, which then holds no
dense weight.  If training is interrupted the model is left as it was.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from ..compression.pipeline import compress
from ..matrix.formats import form_name
from ..model.plan import Plan
from .layers import CompressedModule, replace_module
from .training import train_epochs

RETRAIN = ("codebook", "weights")


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
                return type(old).from_codebook(codebook, self.indices.numpy())
            W = self.dense_matrix().numpy()
        plan = self.layer.plan or Plan(k=old.k)
        if plan.quantize is None:  # trained weights are all distinct: share them again
            plan = Plan(quantize="cws", k=old.k)
        # The layer keeps its format and layout (chosen for the whole model).
        return compress(W, prune=0.0, quantize=plan.quantize, k=plan.k, format=form_name(old),
                        **plan.options)


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
    if retrain not in RETRAIN:
        raise ValueError(f"retrain must be one of {RETRAIN}, got {retrain!r}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
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
