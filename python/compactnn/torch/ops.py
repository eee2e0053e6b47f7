"""The compressed products as PyTorch operators: `torch.ops.compactnn.linear` and
`torch.ops.compactnn.conv2d`.

An operator's arguments must be tensors or plain values, so a compressed matrix is passed
by a handle: an integer that the module holding the matrix got from `register` and that
maps to the matrix for as long as the matrix lives.  `torch.compile` and `torch.export`
see each product as one node (the fake kernels give the output shapes without running it).
The operators are defined with `torch.library.Library` rather than `custom_op`, whose
Python wrapper costs about 15 us a call here, as much as a small layer's product; and
`linear`/`conv2d` below call the implementation directly where nothing would see the
operator (plain tensors, eager, no gradient wanted), saving the dispatcher's 8-20 us.
"""
from __future__ import annotations

import itertools
import os
import weakref

import numpy as np
import torch

from .. import _core
from ..matrix.formats import CompressedMatrix

_matrices: "weakref.WeakValueDictionary[int, CompressedMatrix]" = weakref.WeakValueDictionary()
_handles = itertools.count(1)


def register(m: CompressedMatrix) -> int:
    """A new handle for `m`, valid while `m` is alive."""
    if not isinstance(m, CompressedMatrix):
        raise TypeError(f"expected a compressed matrix (compactnn.IndexMap, HAM or HCSR), "
                        f"got {type(m).__name__}")
    handle = next(_handles)
    _matrices[handle] = m
    return handle


def lookup(handle: int) -> CompressedMatrix:
    try:
        return _matrices[handle]
    except KeyError:
        raise RuntimeError(f"compressed matrix {handle} no longer exists: the module that "
                           "held it was deleted") from None


def _share_openmp() -> bool:
    """Run the products' threads on PyTorch's OpenMP runtime, not on compactnn's own pool.
    On a machine with few cores two sets of threads fight: PyTorch's OpenMP threads keep
    spinning for a while after each operator, and a product's worker sharing their core is
    preempted mid-task (measured here: a two-core VM, ccexam's CNN at batch 1 took 1.7 ms
    with two sets of threads and 0.9 ms with one).

    Other packages bring OpenMP runtimes of their own (scikit-learn's wheels a libgomp):
    the one inside torch's folder is PyTorch's; another is used only where it is the one
    loaded.  (Sharing scikit-learn's runtime instead left both sets spinning: the demo's
    compressed CNN took 8.0 ms a product instead of 0.06.)"""
    if "OpenMP" not in torch.__config__.parallel_info():
        return False
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "libgomp" in line or "libiomp" in line}
    except OSError:  # not Linux
        return False
    global openmp_library
    home = os.path.dirname(os.path.realpath(torch.__file__)) + os.sep
    own = [lib for lib in libs if os.path.realpath(lib).startswith(home)]
    for lib in own or (libs if len(libs) == 1 else []):
        if _core.use_openmp(lib):
            openmp_library = lib
            return True
    return False


openmp_library = None  # the OpenMP runtime the products share, if any
_share_openmp()
_lib = torch.library.Library("compactnn", "DEF")
_lib.define("linear(Tensor x, int matrix, int out_features, Tensor? bias) -> Tensor")
_lib.define("conv2d(Tensor x, int matrix, int out_channels, int[2] kernel_size, int[2] stride, "
            "int[2] padding, int[2] dilation, Tensor? bias) -> Tensor")


def _array(t: torch.Tensor) -> np.ndarray:
    """A C-contiguous float32 numpy view of `t` (a copy only where it must)."""
    if t.dtype != torch.float32:
        t = t.to(torch.float32)
    a = (t.detach() if t.requires_grad else t).numpy()
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _linear(x, matrix, out_features, bias):
    X = _array(x).reshape(-1, x.shape[-1])
    Y = np.empty((X.shape[0], out_features), np.float32)
    # One native call: the product (a matvec for one row) and the bias.
    lookup(matrix)._c.linear(X, Y, torch.get_num_threads(),
                             None if bias is None else _array(bias))
    return torch.from_numpy(Y.reshape(*x.shape[:-1], out_features))


def _conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _conv2d(x, matrix, out_channels, kernel_size, stride, padding, dilation, bias):
    m = lookup(matrix)
    ho, wo = (_conv_out(x.shape[2 + i], kernel_size[i], stride[i], padding[i], dilation[i])
              for i in range(2))
    Y = np.empty((x.shape[0], out_channels, max(ho, 0), max(wo, 0)), np.float32)
    m._c.conv2d(_array(x), Y, kernel_size, stride, padding, dilation,
                None if bias is None else _array(bias), torch.get_num_threads())
    return torch.from_numpy(Y)


_lib.impl("linear", _linear, "CPU")
_lib.impl("conv2d", _conv2d, "CPU")


@torch.library.register_fake("compactnn::linear")
def _linear_fake(x, matrix, out_features, bias):
    return x.new_empty((*x.shape[:-1], out_features), dtype=torch.float32)


@torch.library.register_fake("compactnn::conv2d")
def _conv2d_fake(x, matrix, out_channels, kernel_size, stride, padding, dilation, bias):
    ho, wo = (_conv_out(x.shape[2 + i], kernel_size[i], stride[i], padding[i], dilation[i])
              for i in range(2))
    return x.new_empty((x.shape[0], out_channels, ho, wo), dtype=torch.float32)


_PLAIN = (torch.Tensor, torch.nn.Parameter)  # not FakeTensor, FunctionalTensor, ...


def _direct(*tensors) -> bool:
    """True where calling the implementation directly is the same as the operator."""
    if torch.compiler.is_compiling():
        return False
    grad = torch.is_grad_enabled()
    return all(t is None or (type(t) in _PLAIN and not (grad and t.requires_grad))
               for t in tensors)


def linear(x, matrix: int, out_features: int, bias):
    if _direct(x, bias):
        return _linear(x, matrix, out_features, bias)
    return torch.ops.compactnn.linear(x, matrix, out_features, bias)


def conv2d(x, matrix: int, out_channels: int, kernel_size, stride, padding, dilation, bias):
    args = (x, matrix, out_channels, list(kernel_size), list(stride), list(padding),
            list(dilation), bias)
    if _direct(x, bias):
        return _conv2d(*args)
    return torch.ops.compactnn.conv2d(*args)


def _no_backward(ctx, grad):
    raise RuntimeError("compressed layers compute inference only and do not propagate "
                       "gradients; train a compressed model with compactnn.torch.finetune")


for _name in ("linear", "conv2d"):
    torch.library.register_autograd(f"compactnn::{_name}", _no_backward)
