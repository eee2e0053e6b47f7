"""The peers (compactnn.bench.peers) next to compactnn and numpy on the standard Gaussian matrix,
one benchmark group per product shape (run: pytest benchmarks/test_peers.py
--benchmark-group-by=group).  Peers whose packages are missing are skipped."""
import numpy as np
import pytest

import compactnn as cn
from compactnn.bench import peers

MAKERS = {"torch int8": peers.torch_int8, "torch int4": peers.torch_int4,
          "ORT MatMulNBits fp32": peers.ort_matmul_nbits,
          "ORT MatMulNBits int8 activations": lambda W: peers.ort_matmul_nbits(W, accuracy_level=4)}


@pytest.fixture(scope="module")
def inputs(gaussian):
    W, _ = gaussian
    return W, np.random.default_rng(1).standard_normal((64, W.shape[1])).astype(np.float32)


def _peer(make, W):
    try:
        return make(W)
    except peers.Missing as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("impl", ["numpy", "IndexMap k=16", *MAKERS])
def test_quantized_peers(benchmark, inputs, quantized, impl, batch):
    benchmark.group = f"peers, Gaussian matrix, batch {batch}"
    W, X = inputs
    X = X[:batch]
    if impl == "numpy":
        benchmark(lambda: X @ W.T)
    elif impl == "IndexMap k=16":
        m = cn.IndexMap.from_dense(quantized[16])
        benchmark(m.linear, X)
    else:
        benchmark(_peer(MAKERS[impl], W).run, X)


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("impl", ["HCSR", "torch sparse", "MKL sparse"])
def test_sparse_peers(benchmark, pruned90, impl, batch):
    benchmark.group = f"peers, 90% pruned k=32, batch {batch}"
    X = np.random.default_rng(1).standard_normal((batch, pruned90.shape[1])).astype(np.float32)
    if impl == "HCSR":
        m = cn.HCSR.from_dense(pruned90)
        benchmark(m.linear, X)
    else:
        make = peers.torch_sparse if impl == "torch sparse" else peers.mkl_sparse
        benchmark(_peer(make, pruned90).run, X)
