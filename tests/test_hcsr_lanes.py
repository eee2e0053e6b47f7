"""HCSR's lane-interleaved layout: the layout choice, every kernel set against the scalar
schedule on adversarial matrices, files of both container versions, and hostile lane
files whose checksums are valid."""
import numpy as np
import pytest

import compactnn as cn
from compactnn import _core
from helpers.files import File, expect_format_error
from helpers.kernels import ISAS
from helpers.lanes import COUNTS, GAP_LENGTHS, GROUP_WORDS, PARAMS, VALUE_LENGTHS, WORDS, check
from helpers.lanes import set_param
from helpers.matrices import random_quantized, reference_error

pytest.importorskip("hypothesis")  # an emulated platform without it skips this module
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Every test here but the one that needs scipy is marked emulated.
pytestmark = pytest.mark.usefixtures("restore_isa")


def lanes(W):
    return cn.HCSR.from_dense(W).with_layout("lanes")


# -- the layout choice ---------------------------------------------------------------------
@pytest.mark.emulated
def test_auto_picks_lanes_where_they_serve():
    rng = np.random.default_rng(0)
    W = random_quantized(rng, 300, 1000, 32, density=0.1)
    m = cn.HCSR.from_dense(W)
    assert m.layout == "lanes"
    info = m.info()
    assert info["groups"] == 5 and 1 <= info["gap_buckets"] <= 32
    rows = m.with_layout("rows")
    assert rows.layout == "rows" and "gap_bits" in rows.info()
    np.testing.assert_array_equal(rows.to_dense(), m.to_dense())
    assert rows.with_layout("auto").tobytes() == m.tobytes()


@pytest.mark.emulated
def test_rows_where_lanes_cannot_serve():
    rng = np.random.default_rng(1)
    W = random_quantized(rng, 200, 300, 400, density=0.5)  # k > 128
    m = cn.HCSR.from_dense(W)
    assert m.k > 128 and m.layout == "rows"
    with pytest.raises(ValueError, match="at most 128 distinct stored values"):
        m.with_layout("lanes")
    with pytest.raises(ValueError, match="layout must be"):
        m.with_layout("columns")


@pytest.mark.emulated
def test_small_matrix_takes_the_smaller_layout():
    W = np.zeros((4, 6), np.float32)
    W[1, 2] = 1.5
    m = cn.HCSR.from_dense(W)
    assert m.nbytes == min(m.with_layout("rows").nbytes, m.with_layout("lanes").nbytes)


@pytest.mark.emulated
def test_bits_per_entry_no_worse_than_rows():
    rng = np.random.default_rng(2)
    for density in (0.1, 0.01):
        W = random_quantized(rng, 2048, 2048, 32, density=density)
        m = cn.HCSR.from_dense(W)
        assert m.layout == "lanes"
        assert m.nbytes <= m.with_layout("rows").nbytes


# -- kernels against the scalar schedule -----------------------------------------------------
@pytest.mark.emulated
@pytest.mark.parametrize("k", [1, 2, 7, 32, 100, 128])
def test_rows_of_every_length_side_by_side(k):
    """Rows of 0, 1 and all 8192 entries next to each other, in groups that do not fill."""
    rng = np.random.default_rng(k)
    n_rows = 150
    W = random_quantized(rng, n_rows, 8192, k, density=0.02)
    values = np.unique(W[W != 0])
    for i in range(0, n_rows, 7):
        W[i] = 0
    for i in range(3, n_rows, 11):
        W[i] = 0
        W[i, rng.integers(8192)] = values[-1]
    W[5] = rng.choice(values, 8192)
    W[6] = W[5]
    check(lanes(W), W, rng)


@pytest.mark.emulated
@pytest.mark.parametrize("scale", [1, 3, 40, 700, 20000, 10**6])
def test_every_gap_bucket(scale):
    """Gaps spread over every bucket the encoder makes, up to 2^20 columns."""
    rng = np.random.default_rng(scale)
    cols = min(2**20, 40 * scale + 64)
    W = np.zeros((40, cols), np.float32)
    for i in range(40):
        gaps = rng.geometric(1.0 / scale, size=200) if scale > 1 else np.ones(200, int)
        pos = np.cumsum(gaps)
        pos = pos[pos < cols]
        W[i, pos] = rng.choice(np.float32([0.5, -1.5, 2.0]), pos.size)
    W[0, [0, cols - 1]] = 1.0  # the smallest and the largest gap of a row
    m = lanes(W)
    assert m.info()["gap_buckets"] >= 1
    check(m, W, rng, B=3)


@pytest.mark.emulated
@pytest.mark.parametrize("shape", [(1, 1), (1, 5000), (5000, 1), (64, 64), (65, 3), (17, 16)])
@pytest.mark.parametrize("density", [1.0, 0.3])
def test_small_and_thin_shapes(shape, density):
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    W = random_quantized(rng, *shape, 5, density=density)
    if not W.any():
        W[0, 0] = 1.0
    check(lanes(W), W, rng)


@pytest.mark.emulated
def test_dense_rows_of_one_value():
    """One bucket and one value: the gap code takes no bits, so the value code takes one."""
    W = np.full((70, 90), np.float32(0.75))
    m = lanes(W)
    assert m.info()["stream_bits"] >= 70 * 90
    check(m, W, np.random.default_rng(3))


@pytest.mark.emulated
def test_empty_and_all_empty_rows():
    rng = np.random.default_rng(4)
    for W in (np.zeros((100, 30), np.float32), np.zeros((0, 30), np.float32)):
        m = lanes(W)
        assert m.nnz == 0
        np.testing.assert_array_equal(m.dot(np.ones(30, np.float32)), np.zeros(len(W)))
        np.testing.assert_array_equal(m.to_dense(), W)
    W = np.zeros((130, 30), np.float32)
    W[129, 29] = 2.0
    check(lanes(W), W, rng)


@pytest.mark.emulated
@pytest.mark.parametrize("k", [1, 2, 3, 8, 9, 16, 17, 32, 33, 64, 65, 128])
def test_full_codebooks(k):
    """Every rank count the register lookups distinguish."""
    rng = np.random.default_rng(k)
    codebook = rng.standard_normal(k).astype(np.float32)
    codebook[codebook == 0] = 1.0
    idx = rng.integers(0, k, (300, 700))
    idx[rng.random(idx.shape) < 0.5] = 0
    W = codebook[idx]
    W[rng.random(W.shape) < 0.6] = 0
    m = cn.HCSR.from_dense(W).with_layout("lanes")
    check(m, W, rng)


@pytest.mark.emulated
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(1, 200), cols=st.integers(1, 3000), k=st.integers(1, 128),
       density=st.floats(0.001, 1.0), skew=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_random_matrices(rows, cols, k, density, skew, seed):
    rng = np.random.default_rng(seed)
    W = random_quantized(rng, rows, cols, k, density=density, skew=skew)
    check(lanes(W), W, rng, B=2)


@pytest.mark.emulated
def test_threads_give_the_same_result():
    rng = np.random.default_rng(6)
    W = random_quantized(rng, 1000, 4000, 32, density=0.1)
    m = lanes(W)
    x = rng.standard_normal(4000).astype(np.float32)
    X = rng.standard_normal((4000, 7)).astype(np.float32)
    for isa in ISAS:
        _core.set_isa(isa)
        y1, Y1 = m.dot(x, threads=1), m.dot(X, threads=1)
        for t in (2, 3, 8):
            np.testing.assert_array_equal(m.dot(x, threads=t), y1)
            np.testing.assert_array_equal(m.dot(X, threads=t), Y1)
        assert reference_error(W, x, y1) < 2e-6


# -- files ----------------------------------------------------------------------------------
def _sample():
    rng = np.random.default_rng(7)
    W = random_quantized(rng, 70, 300, 6, density=0.2)
    return W, lanes(W)


@pytest.mark.emulated
def test_version_1_files_are_converted():
    """A file of version 1 (row layout only) loads in the lane layout; a version 2 file in
    the row layout stays in it."""
    W, m = _sample()
    f = File(m.with_layout("rows").tobytes())
    assert f.version == 5 and f.nsections == 5
    assert cn.frombytes(f.tobytes()).layout == "rows"
    f.with_version(1)
    old = cn.frombytes(f.tobytes())
    assert old.layout == "lanes" and old.tobytes() == m.tobytes()
    np.testing.assert_array_equal(old.to_dense(), W)
    f = File(m.tobytes()).with_version(1)
    expect_format_error(f.tobytes(), match="section count")


def _mutated(mutate) -> bytes:
    f = File(_sample()[1].tobytes())
    mutate(f)
    return f.tobytes()


@pytest.mark.emulated
@pytest.mark.parametrize("mutate, match", [
    (set_param(0, 0), "add up"),
    (set_param(0, 2**63), "add up"),
    (set_param(1, 32), "group rows"),
    (set_param(1, 0), "group rows"),
    (set_param(2, 5), "bucket parameters"),
    (set_param(3, 19), "bucket parameters"),
    (set_param(3, 2**64 - 1), "bucket parameters"),
    (lambda f: f.set_u64(PARAMS, [1, 64, 0]), "4 values"),
    (lambda f: f.set_u64(PARAMS, []), "empty"),
    (lambda f: f.sections.__setitem__(GAP_LENGTHS, b""), "gap buckets"),
    (lambda f: f.sections.__setitem__(GAP_LENGTHS, bytes([5] * 33)), "gap buckets"),
    (lambda f: f.sections.__setitem__(GAP_LENGTHS, bytes([8, 1])), "length 8"),
    (lambda f: f.sections.__setitem__(GAP_LENGTHS, bytes([1, 1, 1])), "prefix code"),
    (lambda f: f.sections.__setitem__(GAP_LENGTHS, bytes([255, 255])), "prefix code"),
    (lambda f: f.sections.__setitem__(GAP_LENGTHS, bytes([255, 1])), "prefix code"),
    (lambda f: f.sections.__setitem__(VALUE_LENGTHS, f.sections[VALUE_LENGTHS][1:]), "codebook"),
    (lambda f: f.sections.__setitem__(VALUE_LENGTHS, bytes([1] * len(f.sections[VALUE_LENGTHS]))),
     "prefix code"),
    (lambda f: f.sections.__setitem__(VALUE_LENGTHS, bytes([7] * len(f.sections[VALUE_LENGTHS]))),
     None),
    (lambda f: f.set_ints(COUNTS, f.ints(COUNTS)[:-1]), "row counts"),
    (lambda f: f.set_ints(COUNTS, [301] + f.ints(COUNTS)[1:]), "exceeds"),
    (lambda f: f.set_ints(COUNTS, [2**32 - 1] + f.ints(COUNTS)[1:]), "exceeds"),
    (lambda f: f.set_ints(COUNTS, f.ints(COUNTS)[1:] + f.ints(COUNTS)[:1]), None),
    (lambda f: f.set_u64(GROUP_WORDS, f.u64(GROUP_WORDS)[:-1]), "group offsets"),
    (lambda f: f.set_u64(GROUP_WORDS, [1] + f.u64(GROUP_WORDS)[1:]), "group offsets"),
    (lambda f: f.set_u64(GROUP_WORDS, [0, 2**64 - 1, f.u64(GROUP_WORDS)[-1]]), "decrease"),
    (lambda f: f.set_u64(GROUP_WORDS, [0, 31, f.u64(GROUP_WORDS)[-1]]), "group 0"),
    (lambda f: f.set_u64(GROUP_WORDS, [0, f.u64(GROUP_WORDS)[1] + 1, f.u64(GROUP_WORDS)[-1]]), "group"),
    (lambda f: f.sections.__setitem__(WORDS, f.sections[WORDS][:-4]), "group offsets"),
    (lambda f: f.sections.__setitem__(WORDS, f.sections[WORDS][:-1]), "multiple of 4"),
    (lambda f: f.sections.__setitem__(WORDS, f.sections[WORDS] + bytes(4)), "group offsets"),
    (lambda f: setattr(f, "cols", 2**31), "2^31"),
    (lambda f: setattr(f, "cols", 100), None),
    (lambda f: setattr(f, "rows", 69), None),
], ids=lambda v: None if callable(v) else str(v))
def test_hostile_lane_files(mutate, match):
    expect_format_error(_mutated(mutate), match=match)


@pytest.mark.emulated
def test_entries_of_no_bits_are_refused():
    """A dense one-value matrix with both codes of zero bits would let a tiny file claim
    any number of entries."""
    m = lanes(np.full((64, 64), np.float32(2.0)))
    f = File(m.tobytes())
    assert f.sections[GAP_LENGTHS] == bytes([255]) and f.sections[VALUE_LENGTHS] == bytes([1])
    f.sections[VALUE_LENGTHS] = bytes([255])
    expect_format_error(f.tobytes(), match="no bits")


@pytest.mark.hardening
@pytest.mark.emulated
def test_flipped_words_load_or_raise():
    """Any change of the words decodes to another valid matrix or raises FormatError; a
    matrix that loads gives the same products on every kernel set."""
    W, m = _sample()
    f0 = File(m.tobytes())
    rng = np.random.default_rng(8)
    x = rng.standard_normal(300).astype(np.float32)
    loaded = 0
    for _ in range(300):
        f = File(m.tobytes())
        words = bytearray(f0.sections[WORDS])
        for _ in range(rng.integers(1, 4)):
            words[rng.integers(len(words))] ^= 1 << int(rng.integers(8))
        f.sections[WORDS] = bytes(words)
        try:
            got = cn.frombytes(f.tobytes())
        except cn.FormatError:
            continue
        loaded += 1
        D = got.to_dense()
        for isa in ISAS:
            _core.set_isa(isa)
            assert reference_error(D, x, got.dot(x)) < 2e-6
    assert loaded < 300


@pytest.mark.emulated
def test_large_codebook_few_values_used():
    """The lane layout bounds the values stored, not the codebook: 65536 entries, 100 used."""
    rng = np.random.default_rng(9)
    codebook = rng.permutation(np.arange(1, 65537, dtype=np.float32))
    idx = rng.choice(65536, size=100, replace=False)[rng.integers(0, 100, (200, 500))]
    m = cn.HCSR.from_codebook(codebook, idx)
    assert m.k == 65536 and m.layout == "lanes"
    check(m, codebook[idx], rng)


def test_gap_beyond_the_buckets_takes_rows():
    """A gap past what 32 buckets of at most 18 raw bits reach keeps the row layout."""
    import scipy.sparse as sp

    cols = 2**25
    A = sp.csr_array((np.float32([1.0, 2.0, 3.0]), [0, cols - 1, 5], [0, 2, 3]), shape=(2, cols))
    m = cn.HCSR.from_scipy(A)
    assert m.layout == "rows"
    with pytest.raises(ValueError, match="gaps below 2\\^24"):
        m.with_layout("lanes")
    x = np.ones(cols, np.float32)
    np.testing.assert_array_equal(m.dot(x), [3.0, 3.0])
