"""Pruning and the four weight-sharing quantizers: each one's defining property, zero
preservation and shared codebooks."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compactnn as cn

QUANTIZERS = {
    "cws": lambda W, k, **kw: cn.cws(W, k, **kw),
    "pws": lambda W, k, **kw: cn.pws(W, k, **kw),
    "uq": lambda W, k, **kw: cn.uq(W, k, **kw),
    "ecsq": lambda W, k, **kw: cn.ecsq(W, k, lam=0.02, **kw),
}


@pytest.fixture
def W():
    return np.random.default_rng(0).standard_normal((60, 70))


# -- pruning ---------------------------------------------------------------------------
def test_prune_removes_exactly_the_smallest(W):
    P, mask = cn.prune(W, 0.3)
    assert (~mask).sum() == round(0.3 * W.size)
    assert np.abs(W[~mask]).max() <= np.abs(W[mask]).min()
    np.testing.assert_array_equal(P[mask], W[mask])
    assert (P[~mask].view(np.uint64) == 0).all()  # +0.0
    assert not np.shares_memory(P, W)


def test_prune_ties_and_extremes():
    W = np.ones((4, 5))
    assert (~cn.prune(W, 0.5)[1]).sum() == 10
    assert cn.prune(W, 0)[1].all() and not cn.prune(W, 1)[1].any()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cn.prune(W, 1.5)


def test_prune_global_uses_one_threshold():
    rng = np.random.default_rng(1)
    mats = [rng.standard_normal((20, 30)), 3 * rng.standard_normal((10, 50)), np.ones((5, 5))]
    pruned, masks = cn.prune_global(mats, 0.6)
    kept = np.concatenate([np.abs(M[m]) for M, m in zip(mats, masks)])
    gone = np.concatenate([np.abs(M[~m]) for M, m in zip(mats, masks)])
    assert gone.size == round(0.6 * sum(M.size for M in mats))
    assert gone.max() <= kept.min()
    assert masks[1].mean() > masks[0].mean()  # the wider matrix keeps more
    for P, M, m in zip(pruned, mats, masks):
        np.testing.assert_array_equal(P, np.where(m, M, 0))
    with pytest.raises(ValueError):
        cn.prune_global([], 0.5)


# -- cws ---------------------------------------------------------------------------------
def assert_kmeans_fixed_point(values, q):
    c = q.codebook.astype(np.float64)
    idx = q.indices.ravel()
    d = np.abs(values.ravel()[:, None] - c[None, :])
    assert (d[np.arange(len(idx)), idx] <= d.min(1) + 1e-6).all()  # nearest centroid
    for j in np.unique(idx):
        assert abs(values.ravel()[idx == j].mean() - c[j]) < 1e-5  # mean of members


@pytest.mark.parametrize("init", ["quantile", "kmeans++"])
def test_cws_is_a_kmeans_fixed_point(W, init):
    q = cn.cws(W, 16, keep_zero=False, init=init, seed=3)
    assert len(q.codebook) == 16 and q.codebook.dtype == np.float32
    assert_kmeans_fixed_point(W, q)


def test_cws_is_deterministic_per_seed(W):
    a = cn.cws(W, 8, init="kmeans++", seed=5)
    b = cn.cws(W, 8, init="kmeans++", seed=5)
    np.testing.assert_array_equal(a.codebook, b.codebook)
    np.testing.assert_array_equal(a.indices, b.indices)


def sse(values, q):
    return float(((values - q.codebook.astype(np.float64)[q.indices]) ** 2).sum())


def test_cws_exact_is_optimal():
    rng = np.random.default_rng(2)
    v = np.round(rng.standard_normal(12), 2)
    q = cn.cws(v.reshape(3, 4), 3, keep_zero=False, method="exact")
    u = np.unique(v)
    best = min(  # brute force over all ways to cut the sorted distinct values in 3 runs
        sum(((v[(v >= u[a]) & (v <= u[b - 1])] - v[(v >= u[a]) & (v <= u[b - 1])].mean()) ** 2).sum()
            for a, b in zip((0, i, j), (i, j, len(u))))
        for i, j in itertools.combinations(range(1, len(u)), 2)
    )
    assert sse(v.reshape(3, 4), q) <= best * (1 + 1e-4) + 1e-6
    W = rng.standard_normal((30, 40)).round(2)
    exact = cn.cws(W, 8, keep_zero=False, method="exact")
    assert sse(W, exact) <= sse(W, cn.cws(W, 8, keep_zero=False)) * (1 + 1e-6)
    with pytest.raises(ValueError, match="lloyd"):
        cn.cws(rng.standard_normal((100, 100)), 4, method="exact")


def test_cws_few_distinct_values_and_bad_arguments():
    W = np.array([[1.0, 2.0], [1.0, 2.0]])
    np.testing.assert_array_equal(cn.cws(W, 10).to_dense(), W)
    for bad in (0, 70000, 2.5, True):
        with pytest.raises(ValueError, match="k must be"):
            cn.cws(W, bad)
    with pytest.raises(ValueError, match="init"):
        cn.cws(W, 2, init="random")
    with pytest.raises(ValueError, match="non-finite"):
        cn.cws(np.array([[np.nan]]), 2)
    with pytest.raises(TypeError):
        cn.cws(np.array([["a"]]), 2)


# -- pws ---------------------------------------------------------------------------------
def test_pws_is_unbiased_over_seeds():
    w = np.random.default_rng(4).standard_normal((5, 8))
    runs = np.stack([cn.pws(w, 6, seed=s).to_dense() for s in range(2000)])
    q = cn.pws(w, 6, seed=0)
    spread = np.diff(np.sort(q.codebook)).max()
    # mean of 2000 draws of a variable within one codebook gap of w: standard error < gap/89
    assert np.abs(runs.mean(0) - w).max() < spread / 89 * 4
    c = np.sort(q.codebook.astype(np.float64))
    below = c[np.clip(np.searchsorted(c, w, side="right") - 1, 0, len(c) - 1)]
    above = c[np.clip(np.searchsorted(c, w, side="left"), 0, len(c) - 1)]
    for r in runs[:20]:  # each weight rounds to one of its two neighbours
        assert ((r == below.astype(np.float32)) | (r == above.astype(np.float32))).all()


# -- uq ----------------------------------------------------------------------------------
def test_uq_has_equal_steps(W):
    q = cn.uq(W, 9, keep_zero=False)
    steps = np.diff(q.codebook.astype(np.float64))
    assert len(q.codebook) == 9 and np.allclose(steps, steps[0], rtol=1e-5)
    assert q.codebook[0] == np.float32(W.min()) and q.codebook[-1] == np.float32(W.max())
    d = np.abs(W[..., None] - q.codebook.astype(np.float64))
    assert (d.argmin(-1) == q.indices).mean() > 0.999  # nearest level (float32 ties aside)
    s = cn.uq(W, step=0.25, keep_zero=False)
    assert np.allclose(np.diff(s.codebook), 0.25) and np.allclose(s.codebook / 0.25, np.round(s.codebook / 0.25))
    assert np.abs(s.to_dense() - W).max() <= 0.125 + 1e-6
    with pytest.raises(ValueError, match="exactly one"):
        cn.uq(W)
    with pytest.raises(ValueError, match="step"):
        cn.uq(W, step=-1.0)


# -- ecsq --------------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from([2, 8, 32]),
       lam=st.sampled_from([0.0, 0.01, 0.1, 1.0]))
def test_ecsq_objective_never_increases(seed, k, lam):
    W = np.random.default_rng(seed).standard_normal((40, 50))
    history = []
    q = cn.ecsq(W, k, lam=lam, keep_zero=False, history=history)
    assert history and all(b <= a + 1e-9 * abs(a) for a, b in zip(history, history[1:]))
    assert 1 <= len(q.codebook) <= k


def test_ecsq_drops_levels_and_meets_a_rate(W):
    assert len(cn.ecsq(W, 32, lam=2.0, keep_zero=False).codebook) < 32
    for bits in (1.5, 3.0):
        q = cn.ecsq(W, 64, bits=bits, keep_zero=False)
        p = np.bincount(q.indices.ravel()) / W.size
        p = p[p > 0]
        assert -(p * np.log2(p)).sum() <= bits + 1e-9
    with pytest.raises(ValueError, match="exactly one"):
        cn.ecsq(W, 4)
    with pytest.raises(ValueError, match="lam"):
        cn.ecsq(W, 4, lam=-1.0)


# -- shared behaviour ----------------------------------------------------------------------
@pytest.mark.parametrize("name", QUANTIZERS)
def test_zero_stays_exact(name, W):
    P, mask = cn.prune(W, 0.8)
    q = QUANTIZERS[name](P, 8)
    Q = q.to_dense()
    assert len(q.codebook) <= 8 and q.codebook[-1] == 0
    assert (Q[~mask].view(np.uint32) == 0).all() and (Q[mask] != 0).all()
    m = cn.HCSR.from_codebook(*q)
    assert m.nnz == mask.sum()


@pytest.mark.parametrize("name", QUANTIZERS)
def test_shared_codebook(name):
    rng = np.random.default_rng(6)
    mats = [rng.standard_normal((10, 20)), 2 * rng.standard_normal((30, 5))]
    qs = QUANTIZERS[name](mats, 16)
    assert len(qs) == 2
    np.testing.assert_array_equal(qs[0].codebook, qs[1].codebook)
    assert [q.indices.shape for q in qs] == [(10, 20), (30, 5)]
    whole = QUANTIZERS[name](np.concatenate([m.ravel() for m in mats])[None, :], 16)
    np.testing.assert_array_equal(whole.codebook, qs[0].codebook)


@pytest.mark.parametrize("name", QUANTIZERS)
def test_error_shrinks_with_k(name, W):
    errs = [np.abs(QUANTIZERS[name](W, k, keep_zero=False).to_dense() - W).mean() for k in (2, 16, 256)]
    assert errs[0] > errs[1] > errs[2]
