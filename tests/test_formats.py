"""Every format against numpy: exact round trips and products, on random matrices."""
import numpy as np
import pytest

import compactnn as cn
from helpers.matrices import FORMATS, random_quantized, reference_error

pytest.importorskip("hypothesis")  # an emulated platform without it skips this module
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Every test here but the ones that need scipy or measure the process's memory is marked
# emulated.

TOL = 2e-6  # float32 rounding over up to a few thousand terms

matrices = st.builds(
    lambda seed, n, m, k, density, skew: random_quantized(
        np.random.default_rng(seed), n, m, k, density, skew
    ),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 40),
    m=st.integers(0, 300),
    k=st.sampled_from([1, 2, 3, 4, 5, 16, 17, 32, 33, 64, 100, 256, 257, 1000]),
    density=st.sampled_from([0.0, 0.01, 0.1, 0.5, 0.9, 1.0]),
    skew=st.sampled_from([0.0, 0.5, 2.0]),
)


@pytest.mark.emulated
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(W=matrices, fmt=st.sampled_from(FORMATS), B=st.integers(1, 9), seed=st.integers(0, 99))
def test_matches_numpy(W, fmt, B, seed):
    rng = np.random.default_rng(seed)
    m = fmt.from_dense(W)
    n_rows, n_cols = W.shape
    assert m.shape == W.shape
    assert m.to_dense().tobytes() == W.tobytes()
    assert m.to_dense().dtype == np.float32
    assert m.nnz == (np.count_nonzero(W) if fmt is not cn.HCSR else np.count_nonzero(W.view(np.uint32)))
    assert m.k == len(np.unique(W.view(np.uint32))) or W.size == 0

    x = rng.standard_normal(n_cols).astype(np.float32)
    y = m.dot(x)
    assert y.shape == (n_rows,) and y.dtype == np.float32
    assert reference_error(W, x, y) < TOL
    np.testing.assert_array_equal(m @ x, y)

    X = rng.standard_normal((n_cols, B)).astype(np.float32)
    Y = m.dot(X)
    assert Y.shape == (n_rows, B)
    for b in range(B):
        assert reference_error(W, X[:, b], Y[:, b]) < TOL

    L = m.linear(X.T)
    assert L.shape == (B, n_rows)
    for b in range(B):
        assert reference_error(W, X[:, b], L[b]) < TOL

    back = cn.frombytes(m.tobytes())
    assert type(back) is fmt
    assert back.to_dense().tobytes() == W.tobytes()
    assert back.nbytes == m.nbytes


@pytest.mark.emulated
@settings(max_examples=25, deadline=None)
@given(W=matrices, src=st.sampled_from(FORMATS), dst=st.sampled_from(FORMATS))
def test_conversion_is_exact(W, src, dst):
    m = src.from_dense(W).to(dst)
    assert type(m) is dst
    assert m.to_dense().tobytes() == W.tobytes()


@pytest.mark.emulated
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(1, 300),
    shape=st.tuples(st.integers(0, 30), st.integers(0, 200)),
)
def test_from_codebook(seed, k, shape):
    rng = np.random.default_rng(seed)
    codebook = rng.standard_normal(k).astype(np.float32)
    idx = rng.integers(0, k, shape)
    for fmt in FORMATS:
        m = fmt.from_codebook(codebook, idx)
        assert m.to_dense().tobytes() == codebook[idx].tobytes()


@pytest.mark.emulated
def test_codebook_is_sorted_distinct_values(fmt):
    W = np.array([[3, -1, 0], [0, 3, 2.5]], np.float32)
    m = fmt.from_dense(W)
    np.testing.assert_array_equal(m.codebook, [-1, 0, 2.5, 3])
    assert m.k == 4 and m.nnz == 4


@pytest.mark.emulated
def test_negative_zero_is_kept(fmt):
    W = np.array([[-0.0, 0.0, 1.0]], np.float32)
    m = fmt.from_dense(W)
    assert m.to_dense().tobytes() == W.tobytes()


@pytest.mark.emulated
def test_other_input_dtypes(fmt):
    rng = np.random.default_rng(1)
    W = random_quantized(rng, 20, 30, 8).astype(np.float64)
    m = fmt.from_dense(W)
    assert m.to_dense().tobytes() == W.astype(np.float32).tobytes()
    for x in (rng.standard_normal(30), rng.integers(-3, 3, 30), rng.random(30) > 0.5,
              rng.standard_normal(30).astype(np.float16)):
        xf = np.asarray(x, np.float32)
        assert reference_error(W.astype(np.float32), xf, m.dot(x)) < TOL


@pytest.mark.emulated
def test_non_contiguous_inputs(fmt):
    rng = np.random.default_rng(2)
    W = random_quantized(rng, 25, 40, 16, 0.3)
    m = fmt.from_dense(np.asfortranarray(W))
    assert m.to_dense().tobytes() == W.tobytes()
    x = rng.standard_normal(80).astype(np.float32)[::2]
    assert reference_error(W, x, m.dot(x)) < TOL
    X = rng.standard_normal((6, 40)).astype(np.float32).T  # Fortran order
    Y = m.dot(X)
    for b in range(6):
        assert reference_error(W, X[:, b], Y[:, b]) < TOL
    np.testing.assert_allclose(m.linear(X.T), Y.T, rtol=1e-5, atol=1e-5)


@pytest.mark.emulated
def test_out_argument(fmt):
    rng = np.random.default_rng(3)
    W = random_quantized(rng, 12, 9, 4)
    m = fmt.from_dense(W)
    x = rng.standard_normal(9).astype(np.float32)
    y = np.full(12, np.nan, np.float32)
    assert m.dot(x, out=y) is y
    assert reference_error(W, x, y) < TOL
    X = rng.standard_normal((5, 9)).astype(np.float32)
    Y = np.empty((5, 12), np.float32)
    assert m.linear(X, out=Y) is Y
    np.testing.assert_allclose(Y, X @ W.T, rtol=1e-5, atol=1e-5)


@pytest.mark.emulated
def test_out_may_alias_input():
    W = np.eye(6, dtype=np.float32)[::-1].copy()  # reverses a vector
    for fmt in FORMATS:
        buf = np.arange(6, dtype=np.float32)
        fmt.from_dense(W).dot(buf, out=buf)
        np.testing.assert_array_equal(buf, np.arange(6)[::-1])


@pytest.mark.emulated
def test_empty_matrices(fmt):
    for shape in [(0, 0), (0, 7), (5, 0)]:
        W = np.zeros(shape, np.float32)
        m = fmt.from_dense(W)
        assert m.shape == shape and m.nnz == 0
        assert m.to_dense().shape == shape
        assert m.dot(np.ones(shape[1], np.float32)).tolist() == [0.0] * shape[0]
        assert m.dot(np.ones((shape[1], 3))).shape == (shape[0], 3)
        assert m.linear(np.ones((4, shape[1]))).shape == (4, shape[0])
        assert m.linear(np.ones((0, shape[1]))).shape == (0, shape[0])
        assert cn.frombytes(m.tobytes()).shape == shape


@pytest.mark.emulated
def test_all_zero_and_single_value(fmt):
    for W in (np.zeros((30, 50), np.float32), np.full((30, 50), 0.75, np.float32)):
        m = fmt.from_dense(W)
        assert m.k == 1
        x = np.arange(50, dtype=np.float32)
        np.testing.assert_allclose(m.dot(x), W @ x, rtol=1e-6)
        assert cn.frombytes(m.tobytes()).to_dense().tobytes() == W.tobytes()


@pytest.mark.emulated
def test_one_huge_row(fmt):
    rng = np.random.default_rng(4)
    W = random_quantized(rng, 1, 2_000_000, 7, density=0.1)
    m = fmt.from_dense(W)
    x = rng.standard_normal(2_000_000).astype(np.float32)
    assert reference_error(W, x, m.dot(x)) < 1e-5
    assert cn.frombytes(m.tobytes()).to_dense().tobytes() == W.tobytes()


@pytest.mark.emulated
def test_long_codes(fmt):
    """Value counts 2^i give Huffman codes longer than the 11-bit table (and than the
    24-bit limit, which the length limiter enforces)."""
    counts = 2 ** np.arange(22)
    values = np.repeat(np.arange(1, 23, dtype=np.float32), counts)
    np.random.default_rng(5).shuffle(values)
    W = np.concatenate([values, np.zeros(2048 * 2048 - values.size, np.float32)]).reshape(2048, 2048)
    m = fmt.from_dense(W)
    # HCSR's lane layout limits its codes to 7 bits; its row layout keeps long codes.
    for m in [m, m.with_layout("rows")] if fmt is cn.HCSR else [m]:
        if fmt is not cn.IndexMap and m.info().get("layout") != "lanes":
            assert m.info()["max_code_length"] > 11
        assert m.to_dense().tobytes() == W.tobytes()
        x = np.random.default_rng(6).standard_normal(2048).astype(np.float32)
        assert reference_error(W, x, m.dot(x)) < TOL
        assert cn.frombytes(m.tobytes()).to_dense().tobytes() == W.tobytes()


@pytest.mark.emulated
def test_large_codebook(fmt):
    rng = np.random.default_rng(7)
    W = rng.permutation(np.arange(65536, dtype=np.float32)).reshape(256, 256)
    m = fmt.from_dense(W)
    assert m.k == 65536
    assert m.to_dense().tobytes() == W.tobytes()
    x = rng.standard_normal(256).astype(np.float32)
    assert reference_error(W, x, m.dot(x)) < TOL


def test_scipy_round_trip():
    import scipy.sparse as sp
    rng = np.random.default_rng(8)
    W = random_quantized(rng, 50, 80, 12, 0.2)
    A = sp.csr_array(W)
    for src in (A, sp.coo_matrix(W), sp.csc_array(W)):
        m = cn.HCSR.from_scipy(src)
        assert m.to_dense().tobytes() == W.tobytes()
    back = cn.HCSR.from_scipy(A).to_scipy()
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back.toarray(), W)
    # duplicates are summed, explicit zeros dropped
    coo = sp.coo_array((np.array([1.0, 2.0, 0.0]), (np.array([0, 0, 1]), np.array([1, 1, 2]))), shape=(2, 3))
    m = cn.HCSR.from_scipy(coo)
    np.testing.assert_array_equal(m.to_dense(), [[0, 3, 0], [0, 0, 0]])
    assert m.nnz == 1
    # a CSR input with unsorted and repeated columns and explicit zeros in several rows:
    # the same matrix comes out, and the caller's arrays are left as they were
    data = np.array([2.0, 1.0, 0.0, 1.0, 0.0, -0.0, 4.0], np.float32)
    indices = np.array([2, 0, 1, 2, 0, 1, 3], np.int32)
    indptr = np.array([0, 4, 4, 6, 7])
    csr = sp.csr_array((data, indices, indptr), shape=(4, 4))
    kept = (data.copy(), indices.copy(), indptr.copy())
    m = cn.HCSR.from_scipy(csr)
    np.testing.assert_array_equal(m.to_dense(), csr.toarray())
    assert m.nnz == 4  # (0,0), (0,2) = 3, row 2's -0.0 (stored, bits kept), (3,3)
    assert np.signbit(m.to_dense()[2, 1])
    for a, b in zip((csr.data, csr.indices, csr.indptr), kept):
        np.testing.assert_array_equal(a, b)


@pytest.mark.emulated
def test_pickle(fmt):
    import pickle

    W = random_quantized(np.random.default_rng(9), 10, 20, 5)
    m = pickle.loads(pickle.dumps(fmt.from_dense(W)))
    assert type(m) is fmt and m.to_dense().tobytes() == W.tobytes()


@pytest.mark.emulated
@pytest.mark.parametrize("layout", ["auto", "rows", "lanes"])
@pytest.mark.parametrize("shape, density", [((1, 1), 1.0), ((70, 3), 0.5), ((130, 257), 0.05),
                                            ((64, 64), 1.0), ((3, 200_000), 0.001)])
def test_hcsr_from_indices_and_from_csr_agree(shape, density, layout):
    """The encoder reads a dense index matrix and CSR arrays through two entry sources
    (csrc/entries.hpp); both give the same file, byte for byte, in every layout."""
    from compactnn import _core

    W = random_quantized(np.random.default_rng(shape[1]), *shape, 9, density)
    codebook, idx = cn.HCSR.from_dense(W).to_codebook()
    dense = cn.HCSR(_core.hcsr_dense(codebook, idx.astype(np.uint32), layout))
    assert dense.with_layout(layout).tobytes() == dense.tobytes()  # from its CSR arrays
    assert dense.to_dense().tobytes() == W.tobytes()


PEAK = r"""
import sys
import numpy as np
import compactnn as cn
from helpers.proc_status import peak_added, reset_peak

rng = np.random.default_rng(0)
W = (rng.integers(-16, 16, (4096, 4096)) / 16).astype(np.float32)
W[rng.random(W.shape) > float(sys.argv[2])] = 0
before = reset_peak()
m = getattr(cn, sys.argv[1]).from_dense(W)
assert np.array_equal(m.to_dense(), W)
print(peak_added(before) / W.nbytes)
"""


@pytest.mark.parametrize("fmt, density", [("IndexMap", 1.0), ("HAM", 1.0), ("HAM", 0.1),
                                           ("HCSR", 0.1), ("HCSR", 0.5), ("HCSR", 1.0)])
def test_from_dense_peak_memory(fmt, density):
    """Building from a dense matrix adds at most twice the matrix's size to the peak memory
    (np.unique's sort used to add 8 times; HCSR's encoder kept 12 bytes per stored entry)."""
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", PEAK, fmt, str(density)], capture_output=True,
                       text=True, timeout=300, cwd=os.path.dirname(__file__))
    assert r.returncode == 0, r.stderr[-2000:]
    assert float(r.stdout) <= 2.0, f"{fmt} from_dense added {float(r.stdout):.2f}x its input"
