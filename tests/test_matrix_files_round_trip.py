"""Matrix files (docs/FORMAT.md) that round-trip: every format and shape, long codes, wide
gaps, full codebooks, pickling, and an empty matrix of 2^40 columns."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import compactnn as cn
from helpers.files import (ALL, FORMAT_IDS, MATRICES, SECTION_COUNTS, File, assert_same_matrix,
                           check_round_trip, valid_file)
from helpers.matrices import FORMATS, bits

pytest.importorskip("hypothesis")  # an emulated platform without it skips this module
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = pytest.mark.emulated


def test_file_helper_reproduces_files():
    for fmt in FORMATS:
        data = valid_file(fmt)
        f = File(data)
        assert f.tobytes() == data
        assert f.format_id == FORMAT_IDS[fmt]
        assert f.nsections == SECTION_COUNTS[f.format_id]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", list(MATRICES))
def test_round_trip(fmt, name, tmp_path):
    check_round_trip(fmt, MATRICES[name], tmp_path)


def test_skewed_codes_are_long():
    """The skewed matrices really do use codes longer than the 11-bit decode table (in HAM's
    row layout; the lane layout caps codes at 7 bits)."""
    m = cn.HAM.from_dense(MATRICES["skewed_2i"]).with_layout("rows")
    f = File(m.tobytes())
    assert max(f.sections[1]) > 11
    m = cn.HAM.from_dense(MATRICES["fibonacci"]).with_layout("rows")
    lengths = File(m.tobytes()).sections[1]
    # unrestricted Huffman would give the two rarest values 27 bits
    assert max(lengths) == 24 and lengths.count(24) >= 2
    assert sum(2.0**-l for l in lengths) == 1.0
    m = cn.HCSR.from_dense(MATRICES["fibonacci"])
    assert max(File(m.tobytes()).sections[2]) > 11


@pytest.mark.parametrize(
    "gap", [0, 1, 2, 3, 6, 7, 8, 14, 15, 16, 62, 63, 64, 126, 127, 128, 254, 255, 256, 300, 1000]
)
def test_round_trip_hcsr_gap_boundaries(gap):
    """Rows whose entries are `gap` columns apart: the encoder picks gap splits and escape
    widths around these values (e.g. gap 3 with gap_bits 2 is exactly the escape symbol)."""
    cols = 40 * (gap + 1)
    W = np.zeros((3, cols), np.float32)
    rng = np.random.default_rng(gap)
    for r in range(3):
        W[r, gap :: gap + 1] = rng.choice(np.float32([1, 2, 3]), size=len(W[r, gap :: gap + 1]))
    W[1, 0] = 4  # one row starting with a gap of 0
    W[1, gap + 1 : 2 * gap + 1] = 0
    check_round_trip(cn.HCSR, W)


@settings(max_examples=25, deadline=None)
@given(
    cols=st.integers(1, 70000),
    rows=st.integers(1, 3),
    pos=st.lists(st.integers(0, 69999), max_size=40),
    vals=st.lists(st.integers(-300, 300), min_size=1, max_size=40),
    seed=st.integers(0, 1000),
)
def test_round_trip_wide_sparse_rows(cols, rows, pos, vals, seed):
    """Far apart entries in wide rows: escapes of up to 17 bits."""
    W = np.zeros((rows, cols), np.float32)
    rng = np.random.default_rng(seed)
    for i, p in enumerate(pos):
        W[rng.integers(rows), p % cols] = vals[i % len(vals)] * 0.5
    for fmt in FORMATS:
        check_round_trip(fmt, W)


@ALL
def test_pickle_round_trip(fmt):
    import pickle

    m = fmt.from_dense(MATRICES["sparse90"])
    assert_same_matrix(m, pickle.loads(pickle.dumps(m)))


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_round_trip_full_codebook(fmt):
    """65536 distinct values (IndexMap: 16-bit indices; HCSR: the largest alphabet)."""
    vals = np.arange(1, 65537, dtype=np.float32) * np.float32(0.5)
    W = np.random.default_rng(3).permutation(vals).reshape(256, 256)
    W[W < 2000] = 0  # also some implicit zeros
    m = check_round_trip(fmt, W)
    assert m.k == len(np.unique(W))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.integers(0, 12),
    cols=st.integers(0, 70),
    k=st.integers(1, 40),
    density=st.sampled_from([0.0, 0.05, 0.3, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_random(rows, cols, k, density, seed):
    rng = np.random.default_rng(seed)
    cb = rng.standard_normal(k).astype(np.float32)
    W = cb[rng.integers(0, k, size=(rows, cols))]
    W = np.where(rng.random((rows, cols)) < density, W, np.float32(0)).astype(np.float32)
    for fmt in FORMATS:
        check_round_trip(fmt, W)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_round_trip_from_codebook(fmt, tmp_path):
    """An unused codebook entry and an explicit +0.0 value survive the round trip."""
    codebook = np.float32([0.0, 1.0, -1.0, 5.0])  # 5.0 never used
    idx = np.array([[0, 1, 2, 1], [2, 2, 0, 0], [1, 1, 1, 1]])
    m = fmt.from_codebook(codebook, idx)
    back = cn.frombytes(m.tobytes())
    assert_same_matrix(m, back)
    np.testing.assert_array_equal(bits(back.to_dense()), bits(codebook[idx]))
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(back.dot(x), m.dot(x))
    m.save(tmp_path / "f.cnn")
    assert_same_matrix(m, cn.load(tmp_path / "f.cnn"))


@ALL
def test_empty_matrix_with_huge_cols(fmt):
    """A 0 x 2^40 matrix is valid (its file is ~100 bytes) and has no entries, so to_dense()
    must give an empty (0, 2^40) array, and a product with an empty batch an empty result.
    Run in a child process with a 16 GiB address-space limit, so that a scratch allocation proportional to cols fails fast instead of
    exhausting memory."""
    code = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))
        import numpy as np, compactnn as cn
        m = cn.{fmt.__name__}.from_dense(np.zeros((0, 2**40), np.float32))
        data = m.tobytes()
        assert len(data) < 200, len(data)
        back = cn.frombytes(data)
        assert back.shape == (0, 2**40) and back.nnz == 0
        assert back.tobytes() == data
        for x in (m, back):
            d = x.to_dense()
            assert d.shape == (0, 2**40) and d.dtype == np.float32
            y = x.linear(np.zeros((0, 2**40), np.float32))
            assert y.shape == (0, 0)
        print("OK")
        """
    )
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-2000:]
