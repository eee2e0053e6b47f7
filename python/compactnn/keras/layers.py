"""Keras 3 layers whose weight is a compressed matrix: Dense, Conv1D and Conv2D.

They hold no dense kernel: `call` runs the native product on the compact form.  The
glue is keras.ops; the product itself runs on the host, directly where the backend is
eager (torch, numpy) and through the backend's host callback where it traces (JAX's
pure_callback, TensorFlow's numpy_function).  The matrix is saved in `.keras` files by
`save_own_variables` (its bytes, validated again on loading) with the bias.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ..matrix.formats import CompressedMatrix, frombytes

_PACKAGE = "compactnn"


def _host_call(fn, x, out_shape):
    """fn(numpy array) -> numpy float32 array of out_shape, as a backend tensor."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.pure_callback(fn, jax.ShapeDtypeStruct(out_shape, np.float32), x)
    if backend == "tensorflow":
        import tensorflow as tf

        y = tf.numpy_function(fn, [x], tf.float32)
        y.set_shape(out_shape)
        return y
    if backend == "torch":  # eager; numpy views of CPU tensors, no copies
        import torch

        return torch.from_numpy(fn(x.detach().cpu().numpy()))
    return ops.convert_to_tensor(fn(ops.convert_to_numpy(x)))


def _array(x) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


class CompressedLayer(keras.layers.Layer):
    """Common part: the matrix (one row per output), bias, activation and plan."""

    def __init__(self, matrix: CompressedMatrix | None = None, use_bias: bool = True,
                 activation=None, plan: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.matrix = matrix
        self.use_bias = bool(use_bias)
        self.activation = keras.activations.get(activation)
        self.plan = plan

    @property
    def matrix(self) -> CompressedMatrix | None:
        return self._matrix

    @matrix.setter
    def matrix(self, m) -> None:
        if m is not None and not isinstance(m, CompressedMatrix):
            raise TypeError(f"matrix must be a compressed matrix (compactnn.IndexMap, HAM or "
                            f"HCSR), got {type(m).__name__}")
        object.__setattr__(self, "_matrix", m)  # not a variable: Keras need not track it

    def _outputs(self) -> int:
        raise NotImplementedError

    def build(self, input_shape):
        if self.use_bias:
            self.bias = self.add_weight(shape=(self._outputs(),), initializer="zeros",
                                        name="bias")
        self.built = True

    def _finish(self, y, bias_shape=(-1,)):
        if self.use_bias:
            y = y + ops.reshape(ops.cast(self.bias, y.dtype), bias_shape)
        return self.activation(y) if self.activation is not None else y

    def get_config(self):
        config = super().get_config()
        config.update(use_bias=self.use_bias,
                      activation=keras.activations.serialize(self.activation),
                      plan=self.plan)
        return config

    def save_own_variables(self, store):
        store["matrix"] = np.frombuffer(self._matrix.tobytes(), np.uint8)
        if self.use_bias:
            store["bias"] = ops.convert_to_numpy(self.bias)

    def load_own_variables(self, store):
        self.matrix = frombytes(np.asarray(store["matrix"], np.uint8).tobytes())
        self._check_matrix()
        if self.use_bias:
            self.bias.assign(np.asarray(store["bias"], np.float32))

    def _check_matrix(self) -> None:
        """Raises ValueError when the matrix does not fit this layer's configuration."""


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CompressedDense(CompressedLayer):
    """`keras.layers.Dense` on a compressed (units x input_dim) matrix."""

    def __init__(self, units: int, matrix=None, use_bias=True, activation=None, plan=None,
                 **kwargs):
        super().__init__(matrix, use_bias, activation, plan, **kwargs)
        self.units = int(units)
        self._check_matrix()

    def _outputs(self):
        return self.units

    def _check_matrix(self):
        if self._matrix is not None and self._matrix.shape[0] != self.units:
            raise ValueError(f"a matrix of shape {self._matrix.shape} does not have "
                             f"{self.units} rows (units)")

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def call(self, x):
        m = self._matrix
        if x.shape[-1] != m.shape[1]:
            raise ValueError(f"CompressedDense expects {m.shape[1]} input features, got "
                             f"shape {tuple(x.shape)}")

        def product(a):
            X = _array(a).reshape(-1, m.shape[1])
            return m.linear(X).reshape(*a.shape[:-1], self.units)

        out_shape = (*x.shape[:-1], self.units)
        return self._finish(_host_call(product, x, out_shape))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class CompressedConv(CompressedLayer):
    """Convolution (groups = 1) as the compressed (filters x channels * kernel) matrix
    times im2col patches; channel-last or channel-first data."""

    _nd = 0

    def __init__(self, filters: int, kernel_size, strides=1, padding="valid",
                 data_format=None, dilation_rate=1, matrix=None, use_bias=True,
                 activation=None, plan=None, **kwargs):
        super().__init__(matrix, use_bias, activation, plan, **kwargs)
        nd = self._nd
        self.filters = int(filters)
        self.kernel_size = _tuple(kernel_size, nd, "kernel_size")
        self.strides = _tuple(strides, nd, "strides")
        self.dilation_rate = _tuple(dilation_rate, nd, "dilation_rate")
        allowed = ("valid", "same", "causal") if nd == 1 else ("valid", "same")
        if padding not in allowed:
            raise ValueError(f"padding must be one of {allowed}, got {padding!r}")
        self.padding = padding
        data_format = data_format or keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(f"data_format must be 'channels_last' or 'channels_first', "
                             f"got {data_format!r}")
        self.data_format = data_format
        self._check_matrix()

    def _outputs(self):
        return self.filters

    def _check_matrix(self):
        m = self._matrix
        if m is not None and (m.shape[0] != self.filters
                              or m.shape[1] % int(np.prod(self.kernel_size))):
            raise ValueError(f"a matrix of shape {m.shape} does not fit {self.filters} "
                             f"filters of size {self.kernel_size}")

    def _channels_last(self) -> bool:
        return self.data_format == "channels_last"

    def _pads(self, spatial):
        """(before, after) zero padding per spatial dimension, as Keras pads."""
        pads = []
        for size, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate):
            span = d * (k - 1) + 1
            if self.padding == "valid":
                pads.append((0, 0))
            elif self.padding == "causal":
                pads.append((span - 1, 0))
            else:  # same: the output has ceil(size / stride) positions
                total = max((-(-size // s) - 1) * s + span - size, 0)
                pads.append((total // 2, total - total // 2))
        return pads

    def _out_spatial(self, spatial):
        return tuple((size + a + b - d * (k - 1) - 1) // s + 1
                     for size, (a, b), k, s, d in zip(spatial, self._pads(spatial),
                                                      self.kernel_size, self.strides,
                                                      self.dilation_rate))

    def compute_output_shape(self, input_shape):
        if self._channels_last():
            spatial = input_shape[1:-1]
            out = self._out_spatial(spatial) if None not in spatial else (None,) * self._nd
            return (input_shape[0], *out, self.filters)
        spatial = input_shape[2:]
        out = self._out_spatial(spatial) if None not in spatial else (None,) * self._nd
        return (input_shape[0], self.filters, *out)

    def call(self, x):
        m, nd = self._matrix, self._nd
        if len(x.shape) != nd + 2:
            raise ValueError(f"{type(self).__name__} expects {nd + 2}-D input, got shape "
                             f"{tuple(x.shape)}")
        spatial = tuple(x.shape[1:-1] if self._channels_last() else x.shape[2:])
        channels = x.shape[-1] if self._channels_last() else x.shape[1]
        if channels * int(np.prod(self.kernel_size)) != m.shape[1]:
            raise ValueError(f"{type(self).__name__} expects "
                             f"{m.shape[1] // int(np.prod(self.kernel_size))} channels, got "
                             f"shape {tuple(x.shape)}")
        pads = self._pads(spatial)

        def product(a):
            a = _array(a)
            if self._channels_last():
                a = np.moveaxis(a, -1, 1)
            a = np.pad(a, [(0, 0), (0, 0), *pads]) if any(map(any, pads)) else a
            if nd == 1:
                a = a[:, :, None, :]
            a = np.ascontiguousarray(a)
            y = _conv2d(m, a, (1, *self.kernel_size) if nd == 1 else self.kernel_size,
                        (1, *self.strides) if nd == 1 else self.strides,
                        (1, *self.dilation_rate) if nd == 1 else self.dilation_rate)
            if nd == 1:
                y = y[:, :, 0, :]
            return np.ascontiguousarray(np.moveaxis(y, 1, -1)) if self._channels_last() else y

        y = _host_call(product, x, self.compute_output_shape(tuple(x.shape)))
        return self._finish(y, (-1,) if self._channels_last() else (-1, *[1] * nd))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "strides": self.strides,
                "padding": self.padding, "data_format": self.data_format,
                "dilation_rate": self.dilation_rate}


def _conv2d(m: CompressedMatrix, x: np.ndarray, kernel, stride, dilation) -> np.ndarray:
    ho, wo = ((x.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
              for i in range(2))
    y = np.empty((x.shape[0], m.shape[0], ho, wo), np.float32)
    m._c.conv2d(x, y, list(kernel), list(stride), [0, 0], list(dilation), None, 0)
    return y


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CompressedConv2D(CompressedConv):
    """`keras.layers.Conv2D` (groups=1) on a compressed matrix."""

    _nd = 2


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CompressedConv1D(CompressedConv):
    """`keras.layers.Conv1D` (groups=1) on a compressed matrix; runs as a 2-D convolution
    of height 1."""

    _nd = 1


def _tuple(v, nd: int, name: str) -> tuple:
    t = (v,) * nd if isinstance(v, (int, np.integer)) else tuple(v)
    if len(t) != nd or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                               and i >= 1 for i in t):
        raise ValueError(f"{name} must be a positive integer or {nd} of them, got {v!r}")
    return tuple(int(i) for i in t)
