"""HAM's lane-interleaved layout (HCSR's lane layout with dense rows and no gap code): the
layout choice, every kernel set against the scalar schedule, old files converted, and
hostile lane files whose checksums are valid."""
import numpy as np
import pytest

import compactnn as cn
from compactnn import _core
from helpers.files import File, expect_format_error
from helpers.kernels import ISAS
from helpers.lanes import COUNTS, GAP_LENGTHS, PARAMS, VALUE_LENGTHS, WORDS, check, set_param
from helpers.matrices import random_quantized, reference_error

pytest.importorskip("hypothesis")  # an emulated platform without it skips this module
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = [pytest.mark.usefixtures("restore_isa"), pytest.mark.emulated]


def lanes(W):
    return cn.HAM.from_dense(W).with_layout("lanes")


# -- the layout choice ---------------------------------------------------------------------
def test_auto_picks_lanes_where_they_serve():
    rng = np.random.default_rng(0)
    W = random_quantized(rng, 300, 1000, 32, skew=0.1)
    m = cn.HAM.from_dense(W)
    assert m.layout == "lanes" and m.info()["groups"] == 5
    rows = m.with_layout("rows")
    assert rows.layout == "rows" and "max_code_length" in rows.info()
    np.testing.assert_array_equal(rows.to_dense(), W)
    assert rows.with_layout("auto").tobytes() == m.tobytes()


def test_rows_where_lanes_cannot_serve():
    rng = np.random.default_rng(1)
    codebook = rng.standard_normal(200).astype(np.float32)
    idx = np.arange(200 * 300).reshape(200, 300) % 200
    m = cn.HAM.from_codebook(codebook, idx)
    assert m.layout == "rows"
    with pytest.raises(ValueError, match="at most 128 distinct values"):
        m.with_layout("lanes")
    with pytest.raises(ValueError, match="layout must be"):
        m.with_layout("diagonal")


def test_one_value_keeps_its_zero_bits():
    """A matrix of one value costs no bits in the row layout, so Auto keeps it; the lane
    layout would spend a bit per entry."""
    W = np.full((300, 300), np.float32(0.5))
    m = cn.HAM.from_dense(W)
    assert m.layout == "rows" and m.info()["stream_bits"] == 0
    m = lanes(W)
    assert m.info()["stream_bits"] >= W.size
    check(m, W, np.random.default_rng(2))


def test_small_matrix_takes_the_smaller_layout():
    rng = np.random.default_rng(3)
    for shape in [(4, 6), (30, 40), (100, 150)]:
        m = cn.HAM.from_dense(random_quantized(rng, *shape, 9, skew=0.3))
        assert m.nbytes == min(m.with_layout("rows").nbytes, m.with_layout("lanes").nbytes)


@pytest.mark.parametrize("k, skew, layout", [(32, 0.1, "lanes"), (5, 1.0, "lanes"),
                                             (128, 0.05, "rows"), (128, 0.0, "lanes")])
def test_bits_per_weight_near_rows(k, skew, layout):
    """Auto takes the lane layout where its codes, capped at 7 bits, cost at most 2% more
    than the row layout's; near 128 skewed values the cap costs more and rows stay."""
    rng = np.random.default_rng(4)
    W = random_quantized(rng, 512, 512, k, skew=skew)
    m = cn.HAM.from_dense(W)
    bits = {lay: m.with_layout(lay).info()["stream_bits"] for lay in ("rows", "lanes")}
    assert m.layout == layout
    assert m.info()["stream_bits"] <= 1.02 * bits["rows"]
    assert (bits["lanes"] <= 1.02 * bits["rows"]) == (layout == "lanes")


# -- kernels against the scalar schedule -----------------------------------------------------
# Row counts around the groups of 64 rows and the lockstep of 2 (AVX2) or 4 (AVX-512)
# groups, and blocks of 16 rows that do not fill.
@pytest.mark.parametrize("shape", [(1, 1), (1, 700), (700, 1), (16, 16), (17, 5), (64, 64),
                                   (129, 33), (192, 40), (257, 130), (337, 70), (130, 2048)])
@pytest.mark.parametrize("k", [2, 3, 9, 32, 100, 128])
def test_shapes_and_codebooks(shape, k):
    rng = np.random.default_rng(k * 1000 + shape[0])
    codebook = rng.standard_normal(k).astype(np.float32)
    idx = rng.integers(0, k, shape)
    idx.flat[:k] = np.arange(min(k, idx.size))  # every value in use where it fits
    check(cn.HAM.from_codebook(codebook, idx).with_layout("lanes"), codebook[idx], rng, B=3)


def test_large_codebook_few_values_used():
    rng = np.random.default_rng(5)
    codebook = rng.permutation(np.arange(1, 65537, dtype=np.float32))
    idx = rng.choice(65536, size=128, replace=False)[rng.integers(0, 128, (150, 2000))]
    m = cn.HAM.from_codebook(codebook, idx)
    assert m.k == 65536 and m.layout == "lanes"
    check(m, codebook[idx], rng)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# k <= 127: with density < 1 the zeros add a value, and the lane layout holds at most 128.
@given(rows=st.integers(1, 300), cols=st.integers(1, 1500), k=st.integers(2, 127),
       density=st.floats(0.0, 1.0), skew=st.floats(0, 2), seed=st.integers(0, 2**32 - 1))
def test_random_matrices(rows, cols, k, density, skew, seed):
    rng = np.random.default_rng(seed)
    W = random_quantized(rng, rows, cols, k, density=density, skew=skew)
    check(lanes(W), W, rng, B=2)


def test_threads_give_the_same_result():
    rng = np.random.default_rng(6)
    W = random_quantized(rng, 1000, 3000, 32, skew=0.1)
    m = cn.HAM.from_dense(W)
    assert m.layout == "lanes"
    x = rng.standard_normal(3000).astype(np.float32)
    X = rng.standard_normal((3000, 7)).astype(np.float32)
    for isa in ISAS:
        _core.set_isa(isa)
        y1, Y1 = m.dot(x, threads=1), m.dot(X, threads=1)
        for t in (2, 3, 8):
            np.testing.assert_array_equal(m.dot(x, threads=t), y1)
            np.testing.assert_array_equal(m.dot(X, threads=t), Y1)
            np.testing.assert_array_equal(m.linear(X.T, threads=t), Y1.T)
        assert reference_error(W, x, y1) < 2e-6


# -- files ----------------------------------------------------------------------------------
def _sample():
    rng = np.random.default_rng(7)
    W = random_quantized(rng, 70, 3800, 6, skew=0.5)  # 2^18 entries or more: Auto takes lanes
    return W, lanes(W)


@pytest.mark.parametrize("version", [1, 2])
def test_older_files_are_converted(version):
    """HAM files before version 3 hold the row layout only and load in the lane layout
    where Auto takes it; a version 3 file in the row layout stays in it."""
    W, m = _sample()
    f = File(m.with_layout("rows").tobytes())
    assert f.version == 5 and f.nsections == 4
    assert cn.frombytes(f.tobytes()).layout == "rows"
    f.with_version(version)
    old = cn.frombytes(f.tobytes())
    assert old.layout == "lanes" and old.tobytes() == m.tobytes()
    np.testing.assert_array_equal(old.to_dense(), W)
    f = File(m.tobytes()).with_version(version)
    expect_format_error(f.tobytes(), match="section count")


def _mutated(mutate) -> bytes:
    f = File(_sample()[1].tobytes())
    mutate(f)
    return f.tobytes()


def _one_row_short(f):
    counts = f.ints(COUNTS)
    counts[-1] -= 1
    f.set_ints(COUNTS, counts)


@pytest.mark.parametrize("mutate, match", [
    (set_param(0, 70 * 3800 - 1), "rows x cols"),
    (set_param(0, 2**64 - 1), "rows x cols"),
    (lambda f: f.set_u64(PARAMS, []), "rows x cols"),
    (set_param(3, 1), "no gaps"),  # one raw gap bit per entry
    (lambda f: f.sections.__setitem__(GAP_LENGTHS, bytes([1])), "no gaps"),
    (lambda f: f.sections.__setitem__(GAP_LENGTHS, bytes([255, 255])), "no gaps"),
    (lambda f: f.sections.__setitem__(VALUE_LENGTHS, bytes([7] * len(f.sections[VALUE_LENGTHS]))),
     None),
    (_one_row_short, "every column"),
    (lambda f: f.sections.__setitem__(WORDS, f.sections[WORDS][:-4]), "group offsets"),
    (lambda f: setattr(f, "cols", 3799), None),
    (lambda f: setattr(f, "rows", 69), None),
], ids=lambda v: None if callable(v) else str(v))
def test_hostile_lane_files(mutate, match):
    expect_format_error(_mutated(mutate), match=match)


@pytest.mark.hardening
def test_flipped_words_load_or_raise():
    """Any change of the words decodes to another valid matrix or raises FormatError; a
    matrix that loads gives the same products on every kernel set."""
    W, m = _sample()
    f0 = File(m.tobytes())
    rng = np.random.default_rng(8)
    x = rng.standard_normal(W.shape[1]).astype(np.float32)
    loaded = 0
    for _ in range(200):
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
    assert loaded < 200
