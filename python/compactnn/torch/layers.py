"""PyTorch modules whose weight is a compressed matrix: Linear, Conv1d and Conv2d.

They hold no dense weight: the forward pass runs the native product on the compact form
(`torch.ops.compactnn.*`, ops.py).  The bias stays a float32 parameter.  `state_dict()`
carries the matrix as `_extra_state` (its bytes as a uint8 tensor), so `load_state_dict` and
`torch.save(model.state_dict())` keep it.  Inputs of other dtypes are converted to float32;
outputs are float32.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..matrix.formats import CompressedMatrix, frombytes
from ..model.plan import Plan
from . import ops


class CompressedModule(nn.Module):
    """Common part: the matrix (one row per output), the bias and the plan it came from."""

    def __init__(self, matrix: CompressedMatrix, bias=None, plan: Plan | None = None):
        super().__init__()
        self.matrix = matrix
        if bias is not None:
            bias = torch.as_tensor(bias, dtype=torch.float32).detach().clone()
            if bias.shape != (matrix.shape[0],):
                raise ValueError(f"bias of shape {tuple(bias.shape)} does not match "
                                 f"{matrix.shape[0]} outputs")
            bias = nn.Parameter(bias, requires_grad=False)
        self.register_parameter("bias", bias)
        self.plan = plan

    @property
    def matrix(self) -> CompressedMatrix:
        return self._matrix

    @matrix.setter
    def matrix(self, m: CompressedMatrix) -> None:
        handle = ops.register(m)  # checks the type
        if "_matrix" in self.__dict__ and m.shape != self._matrix.shape:
            raise ValueError(f"a matrix of shape {m.shape} cannot replace one of shape "
                             f"{self._matrix.shape}")
        self.__dict__["_matrix"], self.__dict__["_handle"] = m, handle

    def __setstate__(self, state):  # unpickled: the matrix is a new object
        super().__setstate__(state)
        self.__dict__["_handle"] = ops.register(self._matrix)

    def get_extra_state(self):
        return torch.frombuffer(bytearray(self._matrix.tobytes()), dtype=torch.uint8)

    def set_extra_state(self, state) -> None:
        if not (isinstance(state, torch.Tensor) and state.dtype == torch.uint8
                and state.dim() == 1):
            raise ValueError(f"{type(self).__name__}: the state dict's matrix must be the uint8 "
                             f"tensor that state_dict() wrote, got {type(state).__name__}")
        self.matrix = frombytes(state.numpy().tobytes())

    def config(self) -> dict:
        """The arguments besides matrix, bias and plan that rebuild this module."""
        return {}

    def weight_shape(self) -> tuple:
        """The shape the dense layer's weight had."""
        return self._matrix.shape

    def dense_weight(self) -> torch.Tensor:
        """The decoded weight, in the dense layer's shape (a new tensor each call)."""
        return torch.from_numpy(self._matrix.to_dense()).reshape(self.weight_shape())

    def extra_repr(self) -> str:
        m = self._matrix
        return (f"{type(m).__name__} {m.shape[0]}x{m.shape[1]}, k={m.k}, {m.nbytes:,} bytes, "
                f"psi={m.psi:.4f}, bias={self.bias is not None}")


class CompressedLinear(CompressedModule):
    """`nn.Linear` on a compressed (out_features x in_features) matrix."""

    def __init__(self, matrix, bias=None, plan=None):
        super().__init__(matrix, bias, plan)
        self.out_features, self.in_features = matrix.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__} expects inputs with {self.in_features} "
                             f"features in the last dimension, got shape {tuple(x.shape)}")
        # (the bias from _parameters: nn.Module's attribute lookup costs 2 us a call)
        return ops.linear(_float32(x), self._handle, self.out_features,
                          self._parameters["bias"])

    def dense_forward(self, x, weight, bias):
        """The same layer computed with a dense weight (for training and references)."""
        return F.linear(x.to(torch.float32), weight, bias)

    @classmethod
    def from_dense(cls, layer: nn.Linear, matrix, plan=None):
        return cls(matrix, layer.bias, plan)

    def to_dense(self) -> nn.Linear:
        layer = nn.Linear(self.in_features, self.out_features, self.bias is not None)
        _fill(layer, self)
        return layer


class _CompressedConv(CompressedModule):
    """Convolution as a compressed matrix times im2col patches (one row per output channel,
    one column per input channel and kernel position)."""

    _nd = 0
    _dense = None

    def __init__(self, matrix, bias=None, *, in_channels, kernel_size, stride=1, padding=0,
                 dilation=1, padding_mode="zeros", plan=None):
        super().__init__(matrix, bias, plan)
        nd = self._nd
        self.out_channels, self.in_channels = matrix.shape[0], int(in_channels)
        self.kernel_size, self.stride, self.dilation = (
            _tuple(v, nd, name) for v, name in
            ((kernel_size, "kernel_size"), (stride, "stride"), (dilation, "dilation")))
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be 'same', 'valid' or integers, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' needs stride 1, as in PyTorch")
            self.padding = padding
        else:
            self.padding = _tuple(padding, nd, "padding")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be 'zeros', 'reflect', 'replicate' or "
                             f"'circular', got {padding_mode!r}")
        self.padding_mode = padding_mode
        if matrix.shape[1] != self.in_channels * int(np.prod(self.kernel_size)):
            raise ValueError(f"a matrix of shape {matrix.shape} does not fit a convolution of "
                             f"{self.in_channels} input channels and kernel {self.kernel_size}")
        self._pads = self._explicit_pads()

    def _explicit_pads(self):
        """(pad for F.pad or None, symmetric zero padding for the patches)."""
        if self.padding == "valid":
            sides = [(0, 0)] * self._nd
        elif self.padding == "same":
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            sides = [(t // 2, t - t // 2) for t in totals]
        else:
            sides = [(p, p) for p in self.padding]
        if self.padding_mode == "zeros" and all(a == b for a, b in sides):
            return None, [a for a, _ in sides]
        flat = [p for side in reversed(sides) for p in side]  # F.pad: last dimension first
        return flat, [0] * self._nd

    def _pad(self, x):
        pad, _ = self._pads
        if pad is None:
            return x
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return F.pad(x, pad, mode=mode)

    def weight_shape(self):
        return (self.out_channels, self.in_channels, *self.kernel_size)

    def _batched(self, x):
        unbatched = x.dim() == self._nd + 1  # as PyTorch's convolutions accept
        if unbatched:
            x = x.unsqueeze(0)
        if x.dim() != self._nd + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects input of shape (N, "
                             f"{self.in_channels}, ...) or ({self.in_channels}, ...) with "
                             f"{self._nd} spatial dimensions, got {tuple(x.shape)}")
        return x, unbatched

    def dense_forward(self, x, weight, bias):
        x, unbatched = self._batched(x.to(torch.float32))
        conv = F.conv1d if self._nd == 1 else F.conv2d
        y = conv(self._pad(x), weight.reshape(self.weight_shape()), bias, self.stride,
                 self._pads[1], self.dilation)
        return y.squeeze(0) if unbatched else y

    def to_dense(self):
        layer = self._dense(self.in_channels, self.out_channels, self.kernel_size,
                            self.stride, self.padding, self.dilation, 1, self.bias is not None,
                            self.padding_mode)
        _fill(layer, self)
        return layer

    @classmethod
    def from_dense(cls, layer, matrix, plan=None):
        if layer.groups != 1:
            raise ValueError("grouped convolutions are not compressed")
        return cls(matrix, layer.bias, in_channels=layer.in_channels,
                   kernel_size=layer.kernel_size, stride=layer.stride, padding=layer.padding,
                   dilation=layer.dilation, padding_mode=layer.padding_mode, plan=plan)

    def config(self) -> dict:
        """The arguments that rebuild this module around its matrix and bias."""
        return dict(in_channels=self.in_channels, kernel_size=list(self.kernel_size),
                    stride=list(self.stride), dilation=list(self.dilation),
                    padding=self.padding if isinstance(self.padding, str) else list(self.padding),
                    padding_mode=self.padding_mode)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                + super().extra_repr())


class CompressedConv2d(_CompressedConv):
    """`nn.Conv2d` (groups=1) on a compressed (out, in * kh * kw) matrix."""

    _nd = 2
    _dense = nn.Conv2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, unbatched = self._batched(_float32(x))
        y = ops.conv2d(self._pad(x), self._handle, self.out_channels, self.kernel_size,
                       self.stride, self._pads[1], self.dilation, self._parameters["bias"])
        return y.squeeze(0) if unbatched else y


class CompressedConv1d(_CompressedConv):
    """`nn.Conv1d` (groups=1) on a compressed (out, in * k) matrix; runs as a 2-D
    convolution of height 1."""

    _nd = 1
    _dense = nn.Conv1d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, unbatched = self._batched(_float32(x))
        y = ops.conv2d(self._pad(x).unsqueeze(2), self._handle, self.out_channels,
                       [1, *self.kernel_size], [1, *self.stride], [0, *self._pads[1]],
                       [1, *self.dilation], self._parameters["bias"]).squeeze(2)
        return y.squeeze(0) if unbatched else y


def _float32(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float32 else x.to(torch.float32)


def _tuple(v, nd: int, name: str) -> tuple:
    t = (v,) * nd if isinstance(v, (int, np.integer)) else tuple(v)
    if len(t) != nd or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool)
                               for i in t):
        raise ValueError(f"{name} must be an integer or {nd} integers, got {v!r}")
    if any(i < (0 if name == "padding" else 1) for i in t):
        raise ValueError(f"{name} must be {'non-negative' if name == 'padding' else 'positive'}, "
                         f"got {v!r}")
    return tuple(int(i) for i in t)


def _fill(layer: nn.Module, compressed: CompressedModule) -> None:
    with torch.no_grad():
        layer.weight.copy_(compressed.dense_weight())
        if compressed.bias is not None:
            layer.bias.copy_(compressed.bias)


COMPRESSED = {nn.Linear: CompressedLinear, nn.Conv1d: CompressedConv1d,
              nn.Conv2d: CompressedConv2d}


def replace_module(root: nn.Module, old: nn.Module, new: nn.Module) -> nn.Module:
    """Put `new` wherever `old` sits in the tree (shared modules included); the new root."""
    if root is old:
        return new
    for mod in root.modules():
        for key, child in mod._modules.items():
            if child is old:
                mod._modules[key] = new
    return root
