"""Retraining of compressed Keras models, on any backend: the counterpart of
compactnn.torch.finetune, with the same two schemes (compactnn.model.retrain).

Training runs on a clone whose compressed layers are stand-ins computing the dense layer
from trainable variables (the codebook with the index map fixed, or the surviving weights
under their mask); when it ends, the layers are encoded again, in their formats, into the
given model, and every other trained variable (biases, batch-norm statistics, dense
layers) is copied back.  If training is interrupted the model is left as it was."""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ..model.plan import Plan
from ..model.retrain import check_settings, requantized, retrained_codebook
from .convert import _all_layers, _check_model, clone_with
from .layers import CompressedDense, CompressedLayer


def _constant(value: np.ndarray):
    return lambda shape, dtype=None: ops.convert_to_tensor(value, dtype=dtype)


class _Trainable(keras.layers.Layer):
    """A compressed layer's stand-in while training: its computation on a dense kernel
    built from trainable variables."""

    def __init__(self, layer: CompressedLayer, retrain: str):
        super().__init__(name=layer.name)
        self.source = layer  # read for its settings; not tracked (no variables of it train)
        self.retrain = retrain
        codebook, indices = layer.matrix.to_codebook()
        self._init = dict(codebook=codebook.astype(np.float32), indices=indices.astype(np.int32))

    def __setattr__(self, name, value):
        if name == "source":  # keep Keras from tracking the compressed layer
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def build(self, input_shape):
        codebook, indices = self._init["codebook"], self._init["indices"]
        if self.retrain == "codebook":
            self.codebook = self.add_weight(shape=codebook.shape, name="codebook",
                                            initializer=_constant(codebook))
            self.indices = self.add_weight(shape=indices.shape, name="indices", dtype="int32",
                                           initializer=_constant(indices), trainable=False)
            self.keep = self.add_weight(shape=codebook.shape, name="keep", trainable=False,
                                        initializer=_constant((codebook != 0).astype(np.float32)))
        else:
            dense = codebook[indices]
            self.weights_ = self.add_weight(shape=dense.shape, name="weights",
                                            initializer=_constant(dense))
            self.mask = self.add_weight(shape=dense.shape, name="mask", trainable=False,
                                        initializer=_constant((dense != 0).astype(np.float32)))
        if self.source.use_bias:
            self.bias = self.add_weight(shape=(self.source.matrix.shape[0],), name="bias",
                                        initializer=_constant(
                                            ops.convert_to_numpy(self.source.bias)))
        self.built = True

    def matrix(self):
        """The layer's (outputs x inputs) matrix, as a tensor that gradients flow through."""
        if self.retrain == "codebook":
            return ops.take(self.codebook * self.keep, self.indices)
        return self.weights_ * self.mask

    def _finish(self, y, bias_shape=(-1,)):
        if self.source.use_bias:
            y = y + ops.reshape(ops.cast(self.bias, y.dtype), bias_shape)
        activation = self.source.activation
        return activation(y) if activation is not None else y

    def call(self, x):
        src, W = self.source, self.matrix()
        if isinstance(src, CompressedDense):
            return self._finish(ops.matmul(x, ops.transpose(W)))
        nd = src._nd
        shape = (W.shape[0], W.shape[1] // int(np.prod(src.kernel_size)), *src.kernel_size)
        kernel = ops.moveaxis(ops.reshape(W, shape), (0, 1), (-1, -2))  # (*size, in, out)
        padding = src.padding
        if padding == "causal":  # Conv1D's left padding, as Keras pads it
            span = src.dilation_rate[0] * (src.kernel_size[0] - 1)
            x = ops.pad(x, [(0, 0), (span, 0), (0, 0)] if src._channels_last()
                        else [(0, 0), (0, 0), (span, 0)])
            padding = "valid"
        y = ops.conv(x, kernel, src.strides, padding, src.data_format, src.dilation_rate)
        return self._finish(y, (-1,) if src._channels_last() else (-1, *[1] * nd))

    def compute_output_shape(self, input_shape):
        return self.source.compute_output_shape(input_shape)

    def encode(self):
        """The trained layer compressed again (compactnn.model.retrain)."""
        old = self.source.matrix
        if self.retrain == "codebook":
            codebook = ops.convert_to_numpy(self.codebook * self.keep)
            return retrained_codebook(old, codebook, self._init["indices"])
        plan = Plan.from_json(self.source.plan) if self.source.plan else None
        return requantized(old, ops.convert_to_numpy(self.matrix()), plan)


def finetune(model, data, loss=None, epochs: int = 1, lr: float = 1e-3, *,
             retrain: str = "codebook", batch_size: int = 64, optimizer: str = "adam",
             schedule: str = "cosine", weight_decay: float = 0.0, seed: int = 0,
             progress: bool = True):
    """Retrain a compressed Keras model and encode its layers again; returns the model,
    changed in place.  The arguments are those of compactnn.torch.finetune:

    data: a pair (X, y) of arrays, batched and shuffled here by `batch_size` and `seed`,
    or what `model.fit` takes as batches with their targets (a keras.utils.PyDataset, a
    tf.data.Dataset; with schedule="cosine" it must have a length).  loss: a Keras loss
    (default: sparse categorical cross-entropy on logits).  optimizer: "adam" or "sgd"
    (momentum 0.9); weight_decay is Keras' (decoupled from the gradient).  progress: Keras'
    per-epoch lines."""
    _check_model(model)
    check_settings(retrain, optimizer, schedule, epochs, batch_size, lr)
    if not any(isinstance(layer, CompressedLayer) for layer in _all_layers(model)):
        raise ValueError("the model has no compressed layers: compress it first "
                         "(compactnn.keras.compress_model)")
    fit = dict(epochs=epochs, verbose=2 if progress else 0)
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise TypeError("data must be a pair (X, y) of arrays, or batches for model.fit")
        X, y = (np.asarray(a) for a in data)
        if len(X) != len(y):
            raise ValueError(f"data has {len(X)} inputs but {len(y)} targets")
        fit.update(x=X, y=y, batch_size=batch_size, shuffle=True)
        batches = -(-len(X) // batch_size)
    else:
        fit.update(x=data)
        batches = len(data) if hasattr(data, "__len__") else None
    rate = lr
    if schedule == "cosine":
        if not batches:
            raise ValueError("schedule='cosine' needs the number of batches: give data with "
                             "a length, or schedule='constant'")
        rate = keras.optimizers.schedules.CosineDecay(lr, epochs * batches)
    opt = (keras.optimizers.Adam(rate, weight_decay=weight_decay or None) if optimizer == "adam"
           else keras.optimizers.SGD(rate, momentum=0.9, weight_decay=weight_decay or None))

    originals = {layer.name: layer for layer in _all_layers(model)}
    work = _training_copy(model, retrain)
    keras.utils.set_random_seed(seed)
    work.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                 if loss is None else loss)
    work.fit(**fit)
    _write_back(originals, work)
    return model


def _training_copy(model, retrain: str):
    """A clone of the model whose compressed layers are _Trainable stand-ins, holding the
    model's variables."""
    return clone_with(model, "finetune", lambda layer: _Trainable(layer, retrain)
                      if isinstance(layer, CompressedLayer) else None)


def _write_back(originals: dict, work) -> None:
    """Encode the trained layers into the model's and copy every other trained variable."""
    layers = [layer for layer in _all_layers(work) if not isinstance(layer, keras.Model)]
    encoded = {layer.name: layer.encode() for layer in layers if isinstance(layer, _Trainable)}
    for layer in layers:
        old = originals[layer.name]
        if isinstance(layer, _Trainable):
            old.matrix = encoded[layer.name]
            if old.use_bias:
                old.bias.assign(ops.convert_to_numpy(layer.bias))
        elif layer.weights:
            old.set_weights(layer.get_weights())
