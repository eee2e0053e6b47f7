"""HCSR's fixed-width layout: when it is available, every kernel set against the scalar
schedule and against the row layout (bit for bit on one kernel set), column steps across
every filler count, non-finite inputs, files, and hostile files whose checksums are valid."""
import numpy as np
import pytest

import compactnn as cn
from compactnn import _core
from helpers.files import File, expect_format_error
from helpers.kernels import ISAS, compare_isas
from helpers.lanes import set_param  # params are section 1 in the fixed layout too
from helpers.matrices import bits, random_quantized

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # a platform without hypothesis skips the random test alone, and says so
    given = None

pytestmark = [pytest.mark.emulated, pytest.mark.usefixtures("restore_isa")]

# Sections of a fixed-layout file (docs/FORMAT.md).
PARAMS, ORDER, GROUP_STEPS, STEPS, SLOTS = range(1, 6)


def fixed(W):
    return cn.HCSR.from_dense(W).with_layout("fixed")


def assert_same_as_rows(isa, got, want):
    """The fixed layout sums a row's entries in column order with FMAs, as the row layout
    does: the same bits on one kernel set.  The AVX-512 set runs the AVX2 kernels for this
    layout; on SIMDe's emulation (a test build) its row-layout kernels round multiply and
    add apart, so there the two agree to rounding only."""
    if isa == "avx512" and cn.cpu_info()["avx512_emulated"]:
        scale = np.abs(want[np.isfinite(want)]).max(initial=1.0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * scale)
    else:
        np.testing.assert_array_equal(bits(got), bits(want))


def check(W, rng, B=5):
    """Exact decode and file round trip; every kernel set against the scalar set, and on
    each set the same bits as the row layout (both sum a row's entries in column order)."""
    W = np.asarray(W, np.float32)
    m = fixed(W)
    assert m.layout == "fixed"
    np.testing.assert_array_equal(bits(m.to_dense()), bits(W))
    back = cn.frombytes(m.tobytes())
    assert back.layout == "fixed" and back.tobytes() == m.tobytes()
    rows = m.with_layout("rows")
    compare_isas(m, W, rng, B=B)
    x = rng.standard_normal(W.shape[1]).astype(np.float32)
    X = rng.standard_normal((W.shape[1], B)).astype(np.float32)
    for isa in ISAS:
        _core.set_isa(isa)
        assert_same_as_rows(isa, m.dot(x), rows.dot(x))
        assert_same_as_rows(isa, m.dot(X), rows.dot(X))
    return m


# -- availability -----------------------------------------------------------------------
def test_asked_for_only_and_converts_both_ways():
    rng = np.random.default_rng(0)
    W = random_quantized(rng, 300, 1000, 31, density=0.1)  # 32 values with +0.0
    auto = cn.HCSR.from_dense(W)
    assert auto.layout == "lanes"  # auto keeps the smallest; fixed is never smaller here
    m = auto.with_layout("fixed")
    info = m.info()
    assert info["layout"] == "fixed" and info["groups"] == 38
    assert info["steps"] * 8 == m.nnz + info["fillers"]
    assert m.nbytes > auto.nbytes
    assert m.with_layout("auto").tobytes() == auto.tobytes()
    assert m.with_layout("rows").tobytes() == auto.with_layout("rows").tobytes()
    indptr, cols, vidx = m._c.csr_arrays()  # the CSR arrays decode the same entries
    assert indptr[-1] == m.nnz and np.array_equal(np.diff(indptr), (W != 0).sum(1))
    assert np.array_equal(m.codebook[vidx], W[W != 0]) and np.array_equal(cols, np.nonzero(W)[1])


def test_bits_per_entry():
    """13 bits a stored entry and little else where rows are long and gaps short."""
    rng = np.random.default_rng(1)
    W = random_quantized(rng, 512, 4096, 31, density=0.1)
    m = fixed(W)
    assert 13.0 <= 8 * (m.nbytes - 4 * m.k) / m.nnz < 13.6


def test_codebooks_it_cannot_hold():
    rng = np.random.default_rng(2)
    W = random_quantized(rng, 20, 50, 40, density=0.9)  # k = 40 with +0.0
    with pytest.raises(ValueError, match="at most 32 values"):
        fixed(W)
    # 32 stored values and no +0.0 in the codebook: no slot left for the fillers.
    values = rng.standard_normal(32).astype(np.float32)  # 32 stored values, no +0.0
    S = cn.HCSR(_core.hcsr(2, 40, values, np.array([0, 16, 32], np.uint64),
                           np.tile(np.arange(16, dtype=np.uint64), 2),
                           np.arange(32, dtype=np.uint32), "auto"))
    assert S.k == 32
    with pytest.raises(ValueError, match="31"):
        S.with_layout("fixed")
    with pytest.raises(ValueError, match="HAM has the layouts"):
        cn.HAM.from_dense(W).with_layout("fixed")


def test_codebook_without_zero_and_stored_zeros():
    """Fillers take slot k where the codebook has no +0.0, or where a stored entry holds it."""
    codebook = np.float32([0.5, -1.0, 2.0])
    indptr = np.array([0, 2, 2, 5], np.uint64)
    cols = np.array([3, 700, 0, 1, 2], np.uint64)
    vidx = np.array([0, 1, 2, 0, 1], np.uint32)
    m = cn.HCSR(_core.hcsr(3, 1000, codebook, indptr, cols, vidx, "fixed"))
    x = np.arange(1000, dtype=np.float32)
    np.testing.assert_array_equal(m.dot(x), [0.5 * 3 - 700.0, 0.0, 2.0 * 0 + 0.5 - 2.0])
    codebook = np.float32([0.0, -1.0])  # +0.0 stored explicitly, kept as an entry
    m = cn.HCSR(_core.hcsr(1, 4, codebook, np.array([0, 2], np.uint64),
                           np.array([1, 3], np.uint64), np.array([0, 1], np.uint32), "fixed"))
    assert m.nnz == 2 and m._c.csr_arrays()[0][-1] == 2
    assert np.isnan(m.dot(np.float32([0, np.inf, 0, 0]))[0])  # 0 * inf, as scipy gives


# -- kernels --------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 17, 31])
def test_rows_of_every_length_side_by_side(k):
    """Rows of 0, 1 and all 3000 entries, in groups of 8 that do not fill."""
    rng = np.random.default_rng(k)
    W = random_quantized(rng, 61, 3000, k, density=0.02)
    values = np.unique(W[W != 0])
    W[::7] = 0
    for i in range(3, 61, 11):
        W[i] = 0
        W[i, rng.integers(3000)] = values[-1]
    W[5] = rng.choice(values, 3000)
    check(W, rng)


@pytest.mark.parametrize("gap", [1, 254, 255, 256, 257, 509, 510, 511, 766, 5000])
def test_column_steps_across_fillers(gap):
    """Steps just under, at and over each multiple of 255, from column 0 and between entries."""
    rng = np.random.default_rng(gap)
    cols = 2 * gap + 10
    W = np.zeros((11, cols), np.float32)
    W[0, [0, gap, 2 * gap]] = [1.0, -2.0, 3.0]
    W[1, [gap - 1, cols - 1]] = [0.5, 0.25]
    W[2, cols - 1] = 4.0
    W[3, 0] = 1.0
    W[4:, :] = random_quantized(rng, 7, cols, 5, density=0.01)
    m = check(W, rng, B=9)
    assert m.info()["fillers"] >= (gap - 1) // 255


@pytest.mark.parametrize("shape", [(1, 1), (1, 700), (700, 1), (8, 8), (9, 3), (17, 300)])
@pytest.mark.parametrize("density", [1.0, 0.3])
def test_small_and_thin_shapes(shape, density):
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    W = random_quantized(rng, *shape, 5, density=density)
    check(W, rng, B=17)


def test_empty_matrices():
    for shape in [(0, 30), (30, 0), (0, 0), (20, 30)]:
        m = fixed(np.zeros(shape, np.float32))
        assert m.nnz == 0
        np.testing.assert_array_equal(m.dot(np.ones(shape[1], np.float32)), np.zeros(shape[0]))
        np.testing.assert_array_equal(m.dot(np.ones((shape[1], 3), np.float32)),
                                      np.zeros((shape[0], 3)))
        assert cn.frombytes(m.tobytes()).tobytes() == m.tobytes()


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_inputs_as_the_row_layout(bad):
    """Fillers never meet x: inf and NaN reach exactly the rows whose entries read them."""
    rng = np.random.default_rng(7)
    W = random_quantized(rng, 70, 900, 16, density=0.02)
    W[3, :] = 0
    W[3, 600] = 1.0  # one entry past 2 fillers, which read columns 255 and 510
    m = fixed(W)
    rows = m.with_layout("rows")
    x = rng.standard_normal(900).astype(np.float32)
    x[[255, 510, 17]] = bad
    X = np.repeat(x[:, None], 11, axis=1)
    for isa in ISAS:
        _core.set_isa(isa)
        y = m.dot(x)
        assert_same_as_rows(isa, y, rows.dot(x))
        assert_same_as_rows(isa, m.dot(X), rows.dot(X))
        assert np.isfinite(y[3]) and y[3] == x[600]


def test_threads_do_not_change_results():
    rng = np.random.default_rng(8)
    W = random_quantized(rng, 2000, 3000, 31, density=0.2)
    m = fixed(W)
    x = rng.standard_normal(3000).astype(np.float32)
    X = rng.standard_normal((3000, 20)).astype(np.float32)
    for isa in ISAS:
        _core.set_isa(isa)
        np.testing.assert_array_equal(m.dot(x, threads=1), m.dot(x, threads=2))
        np.testing.assert_array_equal(m.dot(X, threads=1), m.dot(X, threads=2))
        np.testing.assert_array_equal(m.linear(X.T, threads=2), m.dot(X, threads=1).T)


if given is None:
    @pytest.mark.skip(reason="hypothesis is not installed (the test extra installs it)")
    def test_random_sparse_matrices():
        """Random sparse matrices against the scalar schedule and the row layout."""
else:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=st.integers(1, 40), cols=st.integers(1, 1200), k=st.integers(1, 31),
           density=st.sampled_from([0.0, 0.002, 0.05, 0.5, 1.0]), seed=st.integers(0, 2**31))
    def test_random_sparse_matrices(rows, cols, k, density, seed):
        rng = np.random.default_rng(seed)
        check(random_quantized(rng, rows, cols, k, density=density), rng, B=int(rng.integers(1, 12)))


# -- files ------------------------------------------------------------------------------------
def sample():
    rng = np.random.default_rng(9)
    W = random_quantized(rng, 19, 700, 6, density=0.05)
    W[2, :] = 0
    W[2, 650] = W[0][W[0] != 0][0]  # a row that needs 2 fillers
    return fixed(W)


def ints(f, i, n):
    s = f.sections[i]
    w = len(s) // n
    return [int.from_bytes(s[j * w:(j + 1) * w], "little") for j in range(n)], w


def test_file_sections():
    m = sample()
    f = File(m.tobytes())
    assert f.version == 5 and f.nsections == 6
    params = f.u64(PARAMS)
    assert params[:2] == [m.nnz, 8]
    order, width = ints(f, ORDER, 19)
    assert sorted(order) == list(range(19)) and width == 1
    steps, _ = ints(f, GROUP_STEPS, 3)
    assert len(f.sections[STEPS]) == 8 * sum(steps) and len(f.sections[SLOTS]) == 5 * sum(steps)
    assert steps == sorted(steps, reverse=True)


def test_version_4_cannot_hold_it():
    f = File(sample().tobytes())
    f.version = 4
    expect_format_error(f.tobytes(), match="section count")


def mutate(change):
    f = File(sample().tobytes())
    change(f)
    return f.tobytes()


def set_byte(section, pos, value):
    def change(f):
        s = bytearray(f.sections[section])
        s[pos] = value
        f.sections[section] = bytes(s)
    return change


def set_ints(section, n, edit, width=None):
    def change(f):
        values, w = ints(f, section, n)
        edit(values)
        f.set_ints(section, values, width or w)
    return change


@pytest.mark.parametrize("change, match", [
    (set_param(1, 16), "lanes"),
    (set_param(2, 1), "filler slot"),  # slot 1 is a stored value, not +0.0
    (set_param(2, 32), "filler slot"),
    (set_param(0, 999), "stored entries"),
    (lambda f: f.set_u64(PARAMS, f.u64(PARAMS)[:2]), "3"),
    (set_ints(ORDER, 19, lambda o: o.__setitem__(0, o[1])), "permutation"),
    (set_ints(ORDER, 19, lambda o: o.__setitem__(0, 19)), "permutation"),
    (set_ints(GROUP_STEPS, 3, lambda s: s.__setitem__(0, s[0] + 1)), "steps"),
    (set_ints(GROUP_STEPS, 3, lambda s: s.__setitem__(2, 2**64 - 1), 8), "steps"),
    (lambda f: f.sections.__setitem__(SLOTS, f.sections[SLOTS][:-5]), "slot bytes"),
    (set_byte(STEPS, 0, 255), "does not decode"),  # a column past the last, or out of order
    (set_byte(SLOTS, 0, 0xEE), "does not decode"),  # slots 14, 14: past the codebook of 6
])
def test_hostile_files(change, match):
    expect_format_error(mutate(change), match=match)


def test_every_single_byte_change_is_refused_or_decodes_consistently():
    """Each step and slot byte changed (checksums fixed): the loader refuses the file, or it
    holds a matrix whose products agree with its own decoding."""
    base = File(sample().tobytes())
    rng = np.random.default_rng(10)
    x = rng.standard_normal(700).astype(np.float32)
    for section in (STEPS, SLOTS):
        for pos in range(0, len(base.sections[section]), 3):
            f = File(sample().tobytes())
            s = bytearray(f.sections[section])
            s[pos] ^= 0x5A
            f.sections[section] = bytes(s)
            try:
                m = cn.frombytes(f.tobytes())
            except cn.FormatError:
                continue
            W = m.to_dense().astype(np.float64)
            np.testing.assert_allclose(m.dot(x), W @ x, rtol=1e-5, atol=1e-4)
