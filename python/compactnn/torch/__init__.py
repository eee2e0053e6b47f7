"""Compressed PyTorch models: every Linear, Conv1d and Conv2d layer on a compact matrix.

    import compactnn.torch as cnt
    small = cnt.compress_model(model, prune=0.9, quantize="cws", k=32)
    cnt.finetune(small, (X, y), epochs=2)      # retrain the shared weights
    cnt.summary(small); cnt.save(small, "model.cnnm"); cnt.load("model.cnnm")

Requires torch (`pip install torch` first, then `compactnn[torch]`).
"""
from .convert import (
    compress_model,
    compressible_layers,
    decompress,
    model_nbytes,
    summary,
)
from .finetune import finetune
from .gradual import prune_gradually
from .io import load, save
from .layers import (
    CompressedConv1d,
    CompressedConv2d,
    CompressedLinear,
    CompressedModule,
)

__all__ = [
    "CompressedConv1d",
    "CompressedConv2d",
    "CompressedLinear",
    "CompressedModule",
    "compress_model",
    "compressible_layers",
    "decompress",
    "finetune",
    "load",
    "model_nbytes",
    "prune_gradually",
    "save",
    "summary",
]
