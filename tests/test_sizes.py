"""nbytes is honest and sits under the published bounds where their assumptions hold."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compactnn as cn
from compactnn.compression import bounds
from helpers.matrices import random_quantized


@pytest.fixture(scope="module")
def gaussian_4096():
    return np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)


def test_ham_k32_dense_is_under_a_sixth(gaussian_4096):
    Q = cn.cws(gaussian_4096, 32).to_dense()
    m = cn.HAM.from_dense(Q)
    assert m.k == 32
    assert m.nbytes <= Q.nbytes / 6
    assert m.nbytes <= bounds.ham(4096, 4096, 32) * Q.nbytes


def test_hcsr_90_pruned_k32_is_under_a_fifth_of_csr(gaussian_4096):
    import scipy.sparse as sp
    pruned, mask = cn.prune(gaussian_4096, 0.9)
    Q = cn.cws(pruned, 32).to_dense()
    m = cn.HCSR.from_dense(Q)
    csr = sp.csr_array(Q)
    csr_bytes = csr.data.nbytes + csr.indices.nbytes + csr.indptr.nbytes
    assert m.nnz == csr.nnz == mask.sum()
    assert m.nbytes <= csr_bytes / 5
    assert m.nbytes <= bounds.sham(4096, 4096, m.k, m.nnz) * Q.nbytes


def test_index_map_size_is_exact():
    rng = np.random.default_rng(1)
    for n, m, k in [(3, 5, 2), (64, 128, 16), (10, 100, 33), (7, 9, 1), (5, 300, 70000 // 2)]:
        W = random_quantized(rng, n, m, k)
        im = cn.IndexMap.from_dense(W)
        b = math.ceil(math.log2(im.k)) if im.k > 1 else 0
        assert im.nbytes == 4 * im.k + math.ceil(n * m / 128) * 16 * b


# The bounds count neither row offsets (one word per row) nor decode tables (up to 8 KiB);
# they apply to matrices large enough to amortise both: here >= 64 rows of >= 256 columns.
shapes = st.tuples(st.integers(64, 200), st.integers(2, 8).map(lambda c: 128 * c))


@settings(max_examples=25, deadline=None)
@given(shape=shapes, k=st.sampled_from([2, 4, 16, 32, 64, 256]),
       skew=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 2**32 - 1))
def test_dense_formats_under_bounds(shape, k, skew, seed):
    n, m = shape
    W = random_quantized(np.random.default_rng(seed), n, m, k, skew=skew)
    k_real = len(np.unique(W))
    ham = cn.HAM.from_dense(W)
    assert ham.psi <= bounds.ham(n, m, k_real)
    im = cn.IndexMap.from_dense(W)
    assert im.psi <= bounds.index_map(n, m, k_real) + 1e-12  # n*m is a multiple of 128


@settings(max_examples=25, deadline=None)
@given(shape=shapes, k=st.sampled_from([2, 16, 32, 256]),
       density=st.sampled_from([0.02, 0.1, 0.3, 0.6]), seed=st.integers(0, 2**32 - 1))
def test_hcsr_under_sham_bound(shape, k, density, seed):
    n, m = shape
    W = random_quantized(np.random.default_rng(seed), n, m, k, density=density)
    h = cn.HCSR.from_dense(W)
    # row orientation: n + 1 row pointers take the place of m + 1 column pointers
    assert h.psi <= bounds.sham(m, n, h.k, h.nnz)
    # The CSR bound has no codebook: HCSR's k floats only pay off over enough entries
    # (64 x 256 at 2% with k = 256 holds about 330 entries and about 200 distinct values).
    if h.nnz >= 4 * h.k:
        assert h.psi <= bounds.csr(n, m, h.nnz)


def test_bounds_reject_nonsense():
    with pytest.raises(ValueError):
        bounds.ham(0, 5, 3)
    with pytest.raises(ValueError):
        bounds.index_map(5, 5, 0)


def test_psi_and_dense_bytes(fmt):
    W = random_quantized(np.random.default_rng(2), 30, 40, 4)
    m = fmt.from_dense(W)
    assert m.nbytes_dense == 30 * 40 * 4
    assert m.psi == m.nbytes / m.nbytes_dense
    assert math.isnan(fmt.from_dense(np.zeros((0, 3))).psi)
