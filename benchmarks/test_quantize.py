"""Compression speed: weight sharing of 20 million weights (targets: cws with k=256 under
10 s, ecsq under 60 s on the 2-core development machine)."""
import numpy as np
import pytest

import compactnn as cn


@pytest.fixture(scope="module")
def weights_20m():
    return np.random.default_rng(0).standard_normal((4000, 5000)).astype(np.float32)


def test_cws_k256_20m(benchmark, weights_20m):
    benchmark.group = "quantize 20M weights"
    q = benchmark.pedantic(cn.cws, args=(weights_20m, 256), rounds=3, iterations=1)
    assert len(q.codebook) == 256


def test_ecsq_20m(benchmark, weights_20m):
    benchmark.group = "quantize 20M weights"
    q = benchmark.pedantic(cn.ecsq, args=(weights_20m, 256), kwargs={"bits": 6.0}, rounds=1,
                           iterations=1)
    assert len(q.codebook) <= 256
