import os

import numpy as np
import pytest

import compactnn as cn

# 8192 x 8192 float32 is 256 MiB, far past the 32 MiB last-level cache.
N = int(os.environ.get("COMPACTNN_BENCH_N", "8192"))


@pytest.fixture(scope="session")
def gaussian():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, N)).astype(np.float32), rng.standard_normal(N).astype(np.float32)


@pytest.fixture(scope="session")
def quantized(gaussian):
    W, _ = gaussian
    return {k: cn.cws(W, k).to_dense() for k in (16, 32, 64, 256)}


@pytest.fixture(scope="session")
def pruned90(gaussian):
    W, _ = gaussian
    return cn.cws(cn.prune(W, 0.9)[0], 32).to_dense()
