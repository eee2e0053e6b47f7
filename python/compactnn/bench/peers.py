"""The products a user would otherwise pick for small weights on a CPU, set up on the same
matrix: PyTorch's weight-only int8 and int4 kernels and its sparse CSR product, ONNX
Runtime's MatMulNBits (4-bit blocks), MKL's sparse product (sparse_dot_mkl).  Each peer
gives its bits per weight, its dequantized matrix (for the error against the float32 one)
and a product `run(X)` for X of shape (B, n_cols), batch-major as the frameworks take it.
A peer whose package is missing is reported with one line on how to install it."""
from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class Peer:
    name: str
    bits: float  # per weight of the dense shape, scales and indices included
    dense: np.ndarray  # the matrix the peer multiplies by, dequantized, float32
    run: Callable  # X (B, n_cols) float32 numpy -> anything; timed as it is


class Missing(Exception):
    """A peer's package is not installed (the message says how to install it)."""


def _torch():
    try:
        import torch
    except ImportError:
        raise Missing("PyTorch peers need torch: pip install torch==2.13.0") from None
    return torch


def torch_int8(W: np.ndarray) -> Peer:
    """Per-output-channel symmetric int8, bf16 scales and activations
    (aten._weight_int8pack_mm)."""
    torch = _torch()
    scale = np.maximum(np.abs(W).max(axis=1), 1e-30) / 127
    q = np.clip(np.rint(W / scale[:, None]), -127, 127).astype(np.int8)
    scales = torch.from_numpy(scale.astype(np.float32)).to(torch.bfloat16)
    dense = (q * scales.float().numpy()[:, None]).astype(np.float32)
    wq = torch.from_numpy(q)

    def run(X):
        return torch.ops.aten._weight_int8pack_mm(_bf16(torch, X), wq, scales)

    return Peer("torch int8 weight-only (bf16 x)", 8 + 16 / W.shape[1], dense, run)


def torch_int4(W: np.ndarray, group: int = 128) -> Peer:
    """Groups of `group` weights along a row, asymmetric 4-bit with a bf16 scale and zero
    each (aten._weight_int4pack_mm_for_cpu, the format of gpt-fast and torchao)."""
    torch = _torch()
    n, k = W.shape
    if k % group:
        raise Missing(f"torch int4 needs n_cols divisible by {group}")
    g = W.reshape(n, k // group, group)
    lo, hi = g.min(axis=2), g.max(axis=2)
    scale = np.maximum(hi - lo, 1e-30) / 15
    zero = lo + 8 * scale
    q = np.clip(np.rint((g - lo[..., None]) / scale[..., None]), 0, 15)
    sz = torch.from_numpy(np.stack([scale, zero], axis=2).astype(np.float32)).to(torch.bfloat16)
    s16, z16 = sz[..., 0].float().numpy(), sz[..., 1].float().numpy()
    dense = ((q - 8) * s16[..., None] + z16[..., None]).reshape(n, k).astype(np.float32)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(
        torch.from_numpy(q.reshape(n, k).astype(np.int32)), 2)
    scales_and_zeros = sz.transpose(0, 1).contiguous()  # (groups, n, 2)

    def run(X):
        return torch.ops.aten._weight_int4pack_mm_for_cpu(_bf16(torch, X), packed, group,
                                                          scales_and_zeros)

    return Peer(f"torch int4 weight-only, group {group} (bf16 x)", 4 + 32 / group, dense, run)


def _bf16(torch, X):
    return torch.from_numpy(np.ascontiguousarray(X, np.float32)).to(torch.bfloat16)


def torch_sparse(W: np.ndarray) -> Peer:
    """PyTorch's sparse CSR tensor (float32 values, int64 indices) times X^T."""
    torch = _torch()
    import warnings

    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        A = torch.from_numpy(W).to_sparse_csr()
    nnz = int(A.values().numel())

    def run(X):
        return A @ torch.from_numpy(np.ascontiguousarray(X.T))

    bits = (32 + 64) * nnz / W.size + 64 * (W.shape[0] + 1) / W.size
    return Peer("torch sparse CSR", bits, W, run)


def _mkl_dot():
    """sparse_dot_mkl's product, with MKL's runtime library located first: the mkl wheel
    puts libmkl_rt.so.N in the environment's lib/, where sparse_dot_mkl (which looks for
    .so.2 on the loader's path) does not find newer majors unless MKL_RT names the file."""
    import importlib.util

    if importlib.util.find_spec("sparse_dot_mkl") is None:
        raise Missing("MKL sparse needs sparse_dot_mkl and mkl: pip install sparse_dot_mkl mkl")
    if "MKL_RT" not in os.environ:
        found = sorted(glob.glob(os.path.join(sys.prefix, "lib", "libmkl_rt.so*")))
        if found:
            os.environ["MKL_RT"] = found[-1]
    try:
        from sparse_dot_mkl import dot_product_mkl
    except ImportError as e:
        raise Missing(f"MKL sparse: sparse_dot_mkl is installed but cannot load MKL's "
                      f"libmkl_rt ({e}); install the mkl wheel into this environment or "
                      f"set MKL_RT to the path of libmkl_rt.so") from None
    return dot_product_mkl


def mkl_sparse(W: np.ndarray) -> Peer:
    """MKL's sparse CSR product through sparse_dot_mkl (float32 values, int32 indices)."""
    import scipy.sparse as sp

    dot_product_mkl = _mkl_dot()
    A = sp.csr_matrix(W)

    def run(X):
        return dot_product_mkl(A, np.ascontiguousarray(X.T) if X.shape[0] > 1 else X[0])

    bits = 64 * A.nnz / W.size + 32 * (W.shape[0] + 1) / W.size
    return Peer("MKL sparse CSR (sparse_dot_mkl)", bits, W, run)


def ort_matmul_nbits(W: np.ndarray, block: int = 32, accuracy_level: int = 0) -> Peer:
    """ONNX Runtime's MatMulNBits (com.microsoft) on a one-node graph: 4-bit blocks of
    `block` weights along a row, a float32 scale each, zero point 8.  accuracy_level 4
    quantizes the activations to int8 inside the kernel."""
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        raise Missing("ONNX Runtime peers need onnx and onnxruntime: "
                      "pip install onnx onnxruntime") from None
    n, k = W.shape
    if k % block:
        raise Missing(f"MatMulNBits needs n_cols divisible by {block}")
    g = W.reshape(n, k // block, block)
    scale = np.maximum(np.abs(g).max(axis=2), 1e-30) / 7
    q = (np.clip(np.rint(g / scale[..., None]), -8, 7) + 8).astype(np.uint8)
    dense = ((q.astype(np.float32) - 8) * scale[..., None]).reshape(n, k).astype(np.float32)
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)  # low nibble first
    node = helper.make_node("MatMulNBits", ["A", "B", "scales"], ["Y"], domain="com.microsoft",
                            K=k, N=n, bits=4, block_size=block, accuracy_level=accuracy_level)
    graph = helper.make_graph(
        [node], "matmulnbits",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", n])],
        initializer=[
            helper.make_tensor("B", TensorProto.UINT8, packed.shape, packed.tobytes(), raw=True),
            helper.make_tensor("scales", TensorProto.FLOAT, [n * (k // block)],
                               scale.astype(np.float32).tobytes(), raw=True)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    del onnx

    def run(X):
        return session.run(None, {"A": np.ascontiguousarray(X, np.float32)})[0]

    how = "int8 activations (accuracy_level 4)" if accuracy_level == 4 else "float32 accumulation"
    return Peer(f"ONNX Runtime MatMulNBits 4-bit block {block}, {how}", 4 + 32 / block, dense,
                run)


QUANTIZED = (torch_int8, torch_int4, ort_matmul_nbits,
             lambda W: ort_matmul_nbits(W, accuracy_level=4))
SPARSE = (torch_sparse, mkl_sparse)


def available(makers, W: np.ndarray, log=print) -> list[Peer]:
    """The peers whose packages are installed; one line for each that is not."""
    peers = []
    for make in makers:
        try:
            peers.append(make(W))
        except Missing as e:
            log(f"  (skipped: {e})")
    return peers


def relative_error(dense: np.ndarray, W: np.ndarray) -> float:
    """||dense - W||_F / ||W||_F, in float64."""
    d = dense.astype(np.float64) - W
    return float(np.sqrt(np.sum(d * d) / np.sum(W.astype(np.float64) ** 2)))


def rows(n: int = 8192, seed: int = 0, batch: int = 64, log=print) -> list[dict]:
    """The peer table on the standard Gaussian n x n matrix: for each product its bits per
    weight, its error against the float32 matrix, and its time for one vector and for a
    batch of `batch` (batch-major, as the frameworks hand it over), all in one run.  The
    sparse peers and HCSR take the matrix pruned to 10% (k=32 for HCSR)."""
    from ..matrix.formats import HCSR, IndexMap
    from .products import quantized_dense
    from .timing import median_time

    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n)).astype(np.float32)
    X = rng.standard_normal((batch, n)).astype(np.float32)
    out = []

    def add(name, bits, dense, one, many):
        log(f"  timing {name} ...")
        out.append(dict(product=name, bits=bits, error=relative_error(dense, W),
                        one_ms=1e3 * median_time(one), batch_ms=1e3 * median_time(many)))

    add("numpy float32 (OpenBLAS)", 32.0, W, lambda: W @ X[0], lambda: X @ W.T)
    for make in QUANTIZED:
        for p in available([make], W, log):
            add(p.name, p.bits, p.dense, lambda p=p: p.run(X[:1]), lambda p=p: p.run(X))
    for k in (16, 32):
        log(f"  building IndexMap k={k} ...")
        Q = quantized_dense(W, k)
        m = IndexMap.from_dense(Q)
        add(f"compactnn IndexMap k={k}", 8 * m.nbytes / m.size, Q, lambda m=m: m.dot(X[0]),
            lambda m=m: m.linear(X))
    del Q
    log("  building the 90% pruned matrix ...")
    P = quantized_dense(W, 32, 0.9)
    import scipy.sparse as sp

    A = sp.csr_array(P)
    add("scipy.sparse CSR, 90% pruned, k=32", (64 * A.nnz + 32 * (n + 1)) / (n * n), P,
        lambda: A @ X[0], lambda: A @ X.T)
    for p in available(SPARSE, P, log):
        p.name += ", 90% pruned, k=32"
        add(p.name, p.bits, P, lambda p=p: p.run(X[:1]), lambda p=p: p.run(X))
    h = HCSR.from_dense(P)
    add("compactnn HCSR, 90% pruned, k=32", 8 * h.nbytes / h.size, P, lambda: h.dot(X[0]),
        lambda: h.linear(X))
    return out


def format_rows(rows: list[dict], batch: int = 64) -> str:
    base = rows[0]
    lines = [f"| product | bits/weight | rel. error vs float32 W | matvec ms | vs numpy | "
             f"B={batch} ms | vs numpy |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['product']} | {r['bits']:.2f} | {r['error']:.3f} | "
                     f"{r['one_ms']:.2f} | {base['one_ms'] / r['one_ms']:.2f}x | "
                     f"{r['batch_ms']:.1f} | {base['batch_ms'] / r['batch_ms']:.2f}x |")
    return "\n".join(lines)
