"""Products on each format next to numpy float32 dense and scipy.sparse float32 CSR, one
benchmark group per matrix (run: pytest benchmarks/ --benchmark-group-by=group)."""
import numpy as np
import pytest

import compactnn as cn

import scipy.sparse as sp


@pytest.mark.parametrize("k", [16, 64, 256])
@pytest.mark.parametrize("impl", ["IndexMap", "numpy"])
def test_indexmap_matvec(benchmark, quantized, gaussian, k, impl):
    benchmark.group = f"matvec dense k={k}"
    Q, x = quantized[k], gaussian[1]
    if impl == "numpy":
        benchmark(lambda: Q @ x)
    else:
        benchmark(cn.IndexMap.from_dense(Q).dot, x)


@pytest.mark.parametrize("impl", ["HAM", "HAM rows", "IndexMap", "numpy", "scipy"])
def test_ham_matvec(benchmark, quantized, gaussian, impl):
    benchmark.group = "matvec dense k=32"
    Q, x = quantized[32], gaussian[1]
    if impl == "numpy":
        benchmark(lambda: Q @ x)
    elif impl == "scipy":
        A = sp.csr_array(Q)
        benchmark(lambda: A @ x)
    elif impl == "HAM rows":  # the row layout, for comparison with the lane layout
        benchmark(cn.HAM.from_dense(Q).with_layout("rows").dot, x)
    else:
        m = getattr(cn, impl).from_dense(Q)
        benchmark(m.dot, x)


@pytest.mark.parametrize("threads", [1, None])
@pytest.mark.parametrize("impl", ["HCSR", "HCSR fixed", "scipy", "numpy"])
def test_hcsr_matvec(benchmark, pruned90, gaussian, impl, threads):
    benchmark.group = f"matvec 90% pruned k=32, threads={threads or 'all'}"
    P, x = pruned90, gaussian[1]
    if impl == "numpy":
        benchmark(lambda: P @ x)
    elif impl == "scipy":
        A = sp.csr_array(P)
        benchmark(lambda: A @ x)
    else:
        m = cn.HCSR.from_dense(P)
        if impl == "HCSR fixed":
            m = m.with_layout("fixed")
        benchmark(lambda: m.dot(x, threads=threads))


@pytest.mark.parametrize("impl", ["HCSR", "HCSR fixed", "scipy"])
def test_hcsr_matmat(benchmark, pruned90, impl):
    benchmark.group = "matmat 90% pruned k=32, B=64"
    X = np.random.default_rng(1).standard_normal((pruned90.shape[1], 64)).astype(np.float32)
    if impl == "scipy":
        A = sp.csr_array(pruned90)
        benchmark(lambda: A @ X)
    else:
        m = cn.HCSR.from_dense(pruned90)
        if impl == "HCSR fixed":
            m = m.with_layout("fixed")
        benchmark(m.dot, X)


@pytest.mark.parametrize("impl", ["IndexMap", "numpy"])
def test_indexmap_matmat(benchmark, quantized, impl):
    benchmark.group = "matmat dense k=16, B=64"
    Q = quantized[16]
    X = np.random.default_rng(1).standard_normal((Q.shape[1], 64)).astype(np.float32)
    if impl == "numpy":
        benchmark(lambda: Q @ X)
    else:
        m = cn.IndexMap.from_dense(Q)
        benchmark(m.dot, X)
