"""Compressed Keras 3 models: Dense, Conv1D and Conv2D layers on compact matrices.

    import compactnn.keras as cnk
    cnk.prune_gradually(model, (X, y), 0.9, scope="global")   # optional: train while pruning
    small = cnk.compress_model(model, prune=0.9, prune_scope="global", quantize="cws", k=32)
    cnk.finetune(small, (X, y), epochs=2)      # retrain the shared weights
    cnk.summary(small); small.save("model.keras"); cnk.load("model.keras")

Importing this module registers the compressed layers with Keras, so `.keras` files that
hold them load with `keras.saving.load_model` as well.  Requires keras (and a backend:
PyTorch, JAX or TensorFlow; set KERAS_BACKEND before importing keras).
"""
import keras as _keras

if _keras.backend.backend() == "torch":  # share PyTorch's OpenMP threads (compactnn.torch.ops)
    from ..torch import ops as _torch_ops  # noqa: F401

from .convert import compress_model, compressible_layers, model_nbytes, summary
from .export import save as save_graph
from .finetune import finetune
from .gradual import prune_gradually
from .io import load
from .layers import CompressedConv1D, CompressedConv2D, CompressedDense

__all__ = [
    "CompressedConv1D",
    "CompressedConv2D",
    "CompressedDense",
    "compress_model",
    "compressible_layers",
    "finetune",
    "load",
    "model_nbytes",
    "prune_gradually",
    "save_graph",
    "summary",
]
