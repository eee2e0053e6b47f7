"""Magnitude pruning and k-means weight sharing (the basics the formats rely on)."""
import numpy as np
import pytest

import compactnn as cn


def test_prune_removes_exactly_the_smallest():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((40, 50))
    P, mask = cn.prune(W, 0.3)
    assert (~mask).sum() == 600
    assert np.abs(W[~mask]).max() <= np.abs(W[mask]).min()
    np.testing.assert_array_equal(P[mask], W[mask])
    assert (P[~mask].view(np.uint64) == 0).all()  # +0.0, not -0.0
    assert W[0, 0] == W[0, 0]  # input untouched
    assert not np.shares_memory(P, W)


def test_prune_ties_and_extremes():
    W = np.ones((4, 5))
    P, mask = cn.prune(W, 0.5)
    assert (~mask).sum() == 10
    assert cn.prune(W, 0)[1].all()
    assert not cn.prune(W, 1)[1].any()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cn.prune(W, 1.5)


def test_cws_is_a_kmeans_fixed_point():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((100, 100))
    q = cn.cws(W, 16, keep_zero=False)
    assert q.codebook.dtype == np.float32 and len(q.codebook) == 16
    c = q.codebook.astype(np.float64)
    # every point is nearest its own centroid, and each centroid is its members' mean
    d = np.abs(W[..., None] - c)
    assert (d[np.arange(100)[:, None], np.arange(100), q.indices] <= d.min(-1) + 1e-6).all()
    for j in range(16):
        assert abs(W[q.indices == j].mean() - c[j]) < 1e-5


def test_cws_keeps_zero_exact():
    rng = np.random.default_rng(2)
    P, mask = cn.prune(rng.standard_normal((50, 60)), 0.8)
    q = cn.cws(P, 8)
    Q = q.to_dense()
    assert len(q.codebook) == 8
    assert (Q[~mask] == 0).all() and (Q[mask] != 0).all()


def test_cws_few_distinct_values():
    W = np.array([[1.0, 2.0], [1.0, 2.0]])
    q = cn.cws(W, 10)
    np.testing.assert_array_equal(q.to_dense(), W)
    with pytest.raises(ValueError, match="k must be"):
        cn.cws(W, 0)
