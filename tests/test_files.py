"""The file container (docs/FORMAT.md): round trips, truncation, corruption and hostile
files whose checksums are valid, for IndexMap, HAM and HCSR."""
from __future__ import annotations

import functools
import os
import stat
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import compactnn as cn
from conftest import random_quantized

FORMATS = [cn.IndexMap, cn.HAM, cn.HCSR]
FORMAT_IDS = {cn.IndexMap: 1, cn.HAM: 2, cn.HCSR: 3}
SECTION_COUNTS = {1: 2, 2: 4, 3: 5}
MAGIC = b"\x89CNN\r\n\x1a\n"
HEADER = struct.Struct("<8sIIQQI")  # the 36 bytes the header checksum covers
SECTION_HEADER = struct.Struct("<QI")
ALL = pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)


# -- helpers -------------------------------------------------------------------------------
def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


def assert_same_matrix(a, b):
    assert type(a) is type(b)
    assert a.shape == b.shape
    da, db = a.to_dense(), b.to_dense()
    assert da.dtype == db.dtype == np.float32
    np.testing.assert_array_equal(bits(da), bits(db))
    assert a.nnz == b.nnz
    np.testing.assert_array_equal(bits(a.codebook), bits(b.codebook))
    assert a.tobytes() == b.tobytes()


def check_round_trip(fmt, W, tmp_path=None):
    W = np.asarray(W, dtype=np.float32)
    m = fmt.from_dense(W)
    np.testing.assert_array_equal(bits(m.to_dense()), bits(W))
    data = m.tobytes()
    assert isinstance(data, bytes)
    assert data[:8] == MAGIC
    assert len(data) <= m.nbytes + 100, (len(data), m.nbytes)

    for blob in (data, bytearray(data), memoryview(data)):
        back = cn.frombytes(blob)
        assert_same_matrix(m, back)
        np.testing.assert_array_equal(bits(back.to_dense()), bits(W))
    # A read-back matrix serializes to the very same bytes.
    assert cn.frombytes(cn.frombytes(data).tobytes()).tobytes() == data

    if tmp_path is not None:
        path = tmp_path / f"m_{fmt.__name__}.cnn"
        m.save(path)
        assert path.read_bytes() == data
        loaded = cn.load(path)
        assert_same_matrix(m, loaded)
        loaded2 = cn.load(str(path))
        assert_same_matrix(m, loaded2)
        np.testing.assert_array_equal(bits(loaded.to_dense()), bits(W))
    return m


class File:
    """A parsed container: header fields and raw section payloads, re-serialized with
    freshly computed checksums (unless overridden)."""

    def __init__(self, data: bytes):
        magic, self.version, self.format_id, self.rows, self.cols, self.nsections = (
            HEADER.unpack_from(data, 0)
        )
        assert magic == MAGIC
        self.magic = magic
        assert struct.unpack_from("<I", data, 36)[0] == zlib.crc32(data[:36])
        self.sections: list[bytes] = []
        pos = 40
        while pos < len(data):
            length, crc = SECTION_HEADER.unpack_from(data, pos)
            pos += SECTION_HEADER.size
            payload = data[pos : pos + length]
            assert len(payload) == length and zlib.crc32(payload) == crc
            self.sections.append(payload)
            pos += length
        assert pos == len(data)
        assert len(self.sections) == self.nsections
        self.length_override: dict[int, int] = {}

    def tobytes(self) -> bytes:
        head = HEADER.pack(
            self.magic, self.version, self.format_id, self.rows, self.cols, self.nsections
        )
        out = bytearray(head)
        out += struct.pack("<I", zlib.crc32(head))
        for i, s in enumerate(self.sections):
            length = self.length_override.get(i, len(s))
            crc = zlib.crc32(s[:length]) if length <= len(s) else zlib.crc32(s)
            out += SECTION_HEADER.pack(length, crc)
            out += s
        return bytes(out)

    # typed views of sections
    def u64(self, i) -> list[int]:
        s = self.sections[i]
        return list(struct.unpack(f"<{len(s) // 8}Q", s))

    def set_u64(self, i, values):
        self.sections[i] = struct.pack(f"<{len(values)}Q", *values)

    def ints(self, i) -> list[int]:
        """Section i as the integers of a row offsets section (rows + 1) or, in the lane
        layout, a row counts section (rows), at the width the file gives them."""
        s = self.sections[i]
        n = self.rows if self.nsections == 7 else self.rows + 1
        w = len(s) // n if n else 0
        return [int.from_bytes(s[j * w : (j + 1) * w], "little") for j in range(n)]

    def set_ints(self, i, values, width=8):
        self.sections[i] = b"".join(int(v).to_bytes(width, "little") for v in values)

    @property
    def packed(self) -> int:
        """The packed section of HAM and HCSR: row counts in the lane layout, else row
        offsets."""
        return 4 if self.nsections == 7 else self.nsections - 2

    @property
    def old_width(self) -> int:
        """The packed section's width before version 4: 4-byte counts, 8-byte offsets."""
        return 4 if self.nsections == 7 else 8

    def with_version(self, version):
        """This file as `version` writes it (before version 4, at old_width)."""
        if version < 4 and self.format_id != 1:
            self.set_ints(self.packed, self.ints(self.packed), self.old_width)
        self.version = version
        return self

    def set_floats(self, i, values):
        self.sections[i] = np.asarray(values, dtype="<f4").tobytes()


@functools.lru_cache(maxsize=None)
def valid_file(fmt, unused=False) -> bytes:
    """A valid file of a few hundred bytes whose rows all have entries; with `unused`, the
    codebook also holds a value no entry uses (so that its code length is 0)."""
    rng = np.random.default_rng(1234)
    W = rng.choice(np.float32([0, 0, 0, 0.5, -1.25, 2, 3.75]), size=(8, 24))
    W[:, -1] = 3.75  # every row has a stored entry at its last column
    if unused:
        codebook = np.float32([-1.25, 0, 0.5, 2, 3.75, 99.0])
        idx = np.searchsorted(codebook[:5], W)
        m = fmt.from_codebook(codebook, idx)
    else:
        m = fmt.from_dense(W)
    # HCSR's row layout here; its lane layout has its own hostile files (test_lanes.py).
    data = (m.with_layout("rows") if fmt is cn.HCSR else m).tobytes()
    assert 150 <= len(data) <= 2000
    return data


def expect_format_error(data, match=None):
    with pytest.raises(cn.FormatError) as exc:
        cn.frombytes(data)
    assert isinstance(exc.value, ValueError)
    msg = str(exc.value)
    assert msg.strip(), "FormatError with an empty message"
    if match is not None:
        assert match in msg.lower(), msg
    return msg


# -- 1. round trips ------------------------------------------------------------------------
def _skewed(n_values: int) -> np.ndarray:
    """Value i occurs 2^i times: Huffman code lengths up to n_values - 1."""
    vals = np.concatenate(
        [np.full(1 << i, np.float32(i + 1) * 0.25, np.float32) for i in range(n_values)]
    )
    np.random.default_rng(7).shuffle(vals)
    total = len(vals)
    cols = 1 << (n_values // 2)
    vals = np.concatenate([vals, np.zeros(-total % cols, np.float32)])
    return vals.reshape(-1, cols)


def _fibonacci() -> np.ndarray:
    """Fibonacci counts: an unrestricted Huffman code would be deeper than 24 bits, so the
    length limit is exercised."""
    counts = [1, 1]
    while len(counts) < 28:
        counts.append(counts[-1] + counts[-2])
    vals = np.concatenate(
        [np.full(c, np.float32(i) - 3.5, np.float32) for i, c in enumerate(counts)]
    )
    np.random.default_rng(8).shuffle(vals)
    # pad with the most frequent value, which keeps the code as deep as it was
    vals = np.concatenate([vals, np.full(-len(vals) % 1000, vals.max(), np.float32)])
    return vals.reshape(-1, 1000)


def _matrices():
    rng = np.random.default_rng(42)
    cb = np.float32([-1.5, -0.25, 0.0, 0.125, 0.75, 2.0, 7.0])
    dense_q = rng.choice(cb, size=(13, 37))
    sparse = rng.choice(cb, size=(20, 50)) * (rng.random((20, 50)) < 0.1)
    sparse = sparse.astype(np.float32)
    one_row = rng.choice(np.float32([0, 0, 0, 0, 0, 0, 0, 0, 0, 1.0, -3.0]), size=(1, 5000))
    negzero = np.float32([[0.0, -0.0, 1.0], [-0.0, -0.0, 0.0]])
    return {
        "dense_quantized": dense_q,
        "sparse90": sparse,
        "all_zero": np.zeros((7, 9), np.float32),
        "k1_nonzero": np.full((5, 11), np.float32(-2.5)),
        "k1_single_entry": np.float32([[3.0]]),
        "empty_0x5": np.zeros((0, 5), np.float32),
        "empty_5x0": np.zeros((5, 0), np.float32),
        "empty_0x0": np.zeros((0, 0), np.float32),
        "row_1x5000": one_row,
        "col_5000x1": one_row.T.copy(),
        "negative_zero": negzero,
        "k2": rng.choice(np.float32([0.5, -0.5]), size=(9, 130)),
        "k5": rng.choice(np.float32([0, 1, 2, 3, 4]), size=(3, 129)),
        "k257": rng.integers(0, 257, size=(17, 40)).astype(np.float32),
        "skewed_2i": _skewed(16),
        "fibonacci": _fibonacci(),
    }


MATRICES = _matrices()


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


# -- 2. truncation -------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_every_truncation_raises(fmt):
    data = valid_file(fmt)
    cn.frombytes(data)  # the whole file is fine
    for i in range(len(data)):
        with pytest.raises(cn.FormatError) as exc:
            cn.frombytes(data[:i])
        assert str(exc.value), f"empty message for a truncation to {i} bytes"


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_truncated_empty_matrix_raises(fmt):
    data = fmt.from_dense(np.zeros((0, 3), np.float32)).tobytes()
    for i in range(len(data)):
        with pytest.raises(cn.FormatError):
            cn.frombytes(data[:i])


# -- 3. corruption -------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_random_byte_corruption_raises(fmt):
    data = valid_file(fmt)
    rng = np.random.default_rng(FORMAT_IDS[fmt])
    for trial in range(300):
        bad = bytearray(data)
        n = int(rng.integers(1, 4))
        where = rng.choice(len(data), size=n, replace=False)
        for p in where:
            bad[p] ^= int(rng.integers(1, 256))  # a nonzero xor: the byte changes
        with pytest.raises(cn.FormatError) as exc:
            cn.frombytes(bytes(bad))
        assert str(exc.value), f"trial {trial}: empty message (bytes {sorted(where)})"


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_single_bit_flips_raise(fmt):
    data = valid_file(fmt)
    for p in range(len(data)):
        for bit in (0, 7):
            bad = bytearray(data)
            bad[p] ^= 1 << bit
            with pytest.raises(cn.FormatError):
                cn.frombytes(bytes(bad))


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("extra", [b"\x00", b"\x00" * 8, b"garbage!", b"\x00" * 12])
def test_trailing_bytes_raise(fmt, extra):
    data = valid_file(fmt)
    expect_format_error(data + extra, match="trailing")


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
def test_appended_file_raises(fmt):
    data = valid_file(fmt)
    expect_format_error(data + data)


@pytest.mark.parametrize("data", [b"", b"\x00" * 40, MAGIC, MAGIC + b"\x00" * 32, b"x" * 1000])
def test_junk_raises(data):
    expect_format_error(data)


# -- 4. hostile files with valid checksums -------------------------------------------------
def _sample_file(fmt, unused=False) -> File:
    return File(valid_file(fmt, unused))


def test_file_helper_reproduces_files():
    for fmt in FORMATS:
        data = valid_file(fmt)
        f = File(data)
        assert f.tobytes() == data
        assert f.format_id == FORMAT_IDS[fmt]
        assert f.nsections == SECTION_COUNTS[f.format_id]


def _mutated(fmt, mutate, unused=False) -> bytes:
    f = _sample_file(fmt, unused)
    mutate(f)
    return f.tobytes()


def _set(**fields):
    def mutate(f):
        for k, v in fields.items():
            setattr(f, k, v)

    return mutate


OFFSETS = {cn.HAM: 2, cn.HCSR: 3}  # section index of the row offsets
STREAM = {cn.HAM: 3, cn.HCSR: 4}
LENGTHS = {cn.HAM: 1, cn.HCSR: 2}
HUFFMAN = pytest.mark.parametrize("fmt", [cn.HAM, cn.HCSR], ids=lambda f: f.__name__)


@ALL
@pytest.mark.parametrize(
    "magic", [b"\x89CNN\r\n\x1a\x00", b"\x89PNG\r\n\x1a\n", b"\x00" * 8, b"\x89cnn\r\n\x1a\n"]
)
def test_bad_magic(fmt, magic):
    expect_format_error(_mutated(fmt, _set(magic=magic)), match="magic")


@ALL
@pytest.mark.parametrize("version", [0, 5, 0xFFFFFFFF])
def test_bad_version(fmt, version):
    expect_format_error(_mutated(fmt, _set(version=version)), match="version")


@ALL
@pytest.mark.parametrize("format_id", [0, 4, 255, 0xFFFFFFFF])
def test_unknown_format_id(fmt, format_id):
    expect_format_error(_mutated(fmt, _set(format_id=format_id)), match="format")


@ALL
def test_other_known_format_id(fmt):
    """The sections of one format under the id of another."""
    for other in (1, 2, 3):
        if other == FORMAT_IDS[fmt]:
            continue

        def mutate(f, other=other):
            f.format_id = other
            f.nsections = SECTION_COUNTS[other]

        expect_format_error(_mutated(fmt, mutate))


@ALL
@pytest.mark.parametrize("delta", [-1, 1, None])
def test_wrong_section_count(fmt, delta):
    def mutate(f):
        f.nsections = 0xFFFFFFFF if delta is None else f.nsections + delta

    expect_format_error(_mutated(fmt, mutate), match="section")


@ALL
def test_wrong_section_count_with_matching_sections(fmt):
    """One section dropped, and the count says so."""

    def mutate(f):
        f.sections.pop()
        f.nsections -= 1

    expect_format_error(_mutated(fmt, mutate))


@ALL
def test_missing_section(fmt):
    def mutate(f):
        f.sections.pop()

    expect_format_error(_mutated(fmt, mutate))


@ALL
def test_extra_section(fmt):
    def mutate(f):
        f.sections.append(b"\x00" * 8)

    expect_format_error(_mutated(fmt, mutate), match="trailing")


@ALL
@pytest.mark.parametrize(
    "rows,cols",
    [(2**62, 24), (8, 2**62), (2**62, 2**62), (2**64 - 1, 24), (8, 2**64 - 1),
     (2**40 + 1, 1), (1, 2**40 + 1), (2**30, 2**30), (2**40, 2**17)],
)
def test_huge_shape(fmt, rows, cols):
    expect_format_error(_mutated(fmt, _set(rows=rows, cols=cols)), match="too large")


@HUFFMAN
@pytest.mark.parametrize("delta", [-1, 1, -8, 8])
def test_rows_mismatch(fmt, delta):
    """rows disagrees with the number of row offsets."""

    def mutate(f):
        f.rows += delta

    expect_format_error(_mutated(fmt, mutate), match="row offsets")


@pytest.mark.parametrize("rows", [0, 1, 5, 11, 100])
def test_index_map_rows_mismatch(rows):
    """IndexMap: 8x24 entries fill 2 groups of 128; a row count that needs another number
    of groups disagrees with the packed index size."""

    def mutate(f):
        f.rows = rows

    expect_format_error(_mutated(cn.IndexMap, mutate), match="index section")


@HUFFMAN
def test_offsets_length_mismatch(fmt):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        f.set_ints(OFFSETS[fmt], off + [off[-1]])

    expect_format_error(_mutated(fmt, mutate))


def _layouts(W):
    """W in every layout of HAM and HCSR (the lane layout where it holds W)."""
    for fmt in (cn.HAM, cn.HCSR):
        for layout in ("rows", "lanes"):
            try:
                yield fmt.from_dense(W).with_layout(layout)
            except ValueError:
                pass


@pytest.mark.parametrize("shape, density", [((3, 5), 1.0), ((40, 300), 0.3), ((300, 40), 0.05),
                                            ((20, 3000), 1.0), ((0, 7), 1.0), ((5, 0), 1.0)])
def test_row_offsets_and_counts_take_the_narrowest_width(shape, density):
    """Row offsets and row counts are written in the fewest of 1, 2, 4 or 8 bytes that hold
    the largest, and a file of version 3 (4-byte counts, 8-byte offsets) loads as the same
    matrix, written back narrow."""
    W = random_quantized(np.random.default_rng(5), *shape, 5, density=density)
    for m in _layouts(W):
        f = File(m.tobytes())
        i = f.packed
        values = f.ints(i)
        width = next(w for w in (1, 2, 4, 8) if max(values, default=0) < 256**w)
        assert len(f.sections[i]) == width * len(values), (m, m.layout)
        old = File(m.tobytes()).with_version(3)
        assert len(old.sections[i]) == f.old_width * len(values)
        loaded = cn.frombytes(old.tobytes())
        assert loaded.layout == m.layout and loaded.nbytes == m.nbytes
        assert loaded.tobytes() == m.tobytes()
        np.testing.assert_array_equal(bits(loaded.to_dense()), bits(W))
        wide = File(m.tobytes())  # 8 bytes each is allowed from version 4 on, if wasteful
        wide.set_ints(i, values, 8)
        assert cn.frombytes(wide.tobytes()).tobytes() == m.tobytes()


def test_row_offsets_and_counts_of_a_bad_width():
    W = random_quantized(np.random.default_rng(6), 30, 200, 5, density=0.5)
    for m in _layouts(W):
        f = File(m.tobytes())
        values = f.ints(f.packed)
        f.set_ints(f.packed, values, 3)
        expect_format_error(f.tobytes(), match="1, 2, 4 or 8 bytes")
        f.set_ints(f.packed, values, 2)
        f.version = 3
        expect_format_error(f.tobytes(), match=f"integers of {f.old_width} bytes")


@ALL
@pytest.mark.parametrize("claim", ["+1", "+8", "+4096", 2**32, 2**63, 2**64 - 1])
def test_section_length_beyond_file(fmt, claim):
    for i in range(SECTION_COUNTS[FORMAT_IDS[fmt]]):

        def mutate(f, i=i):
            rest = sum(len(s) + 12 for s in f.sections[i + 1 :])
            n = len(f.sections[i]) + rest + int(claim[1:]) if isinstance(claim, str) else claim
            f.length_override[i] = n

        expect_format_error(_mutated(fmt, mutate))


@ALL
def test_section_length_too_short(fmt):
    for i in range(SECTION_COUNTS[FORMAT_IDS[fmt]]):

        def mutate(f, i=i):
            if f.sections[i]:
                f.length_override[i] = len(f.sections[i]) - 1

        data = _mutated(fmt, mutate)
        if data != valid_file(fmt):
            expect_format_error(data)


@HUFFMAN
def test_row_offset_not_starting_at_zero(fmt):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        off[0] = 1
        f.set_ints(OFFSETS[fmt], off)

    expect_format_error(_mutated(fmt, mutate))


@HUFFMAN
def test_decreasing_row_offsets(fmt):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        assert off[3] > off[2]
        off[2], off[3] = off[3], off[2]
        f.set_ints(OFFSETS[fmt], off)

    expect_format_error(_mutated(fmt, mutate))


@HUFFMAN
def test_decreasing_row_offsets_huge(fmt):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        off[1] = 2**64 - 1
        f.set_ints(OFFSETS[fmt], off)

    expect_format_error(_mutated(fmt, mutate))


@HUFFMAN
@pytest.mark.parametrize("delta", [1, 64, 2**40, 2**63])
def test_last_offset_beyond_stream(fmt, delta):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        off[-1] += delta
        f.set_ints(OFFSETS[fmt], off)

    expect_format_error(_mutated(fmt, mutate))


@HUFFMAN
def test_last_offset_max(fmt):
    """A last offset near 2^64: (bits + 63) / 64 must not wrap around."""
    for last in (2**64 - 1, 2**64 - 63, 2**64 - 64):

        def mutate(f, last=last):
            off = f.ints(OFFSETS[fmt])
            off[-1] = last
            f.set_ints(OFFSETS[fmt], off)

        expect_format_error(_mutated(fmt, mutate))


@HUFFMAN
def test_inner_offset_beyond_stream(fmt):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        words = len(f.sections[STREAM[fmt]]) // 8
        off[1:-1] = [words * 64 + 1000] * (len(off) - 2)
        off[-1] = words * 64 + 1000
        f.set_ints(OFFSETS[fmt], off)

    expect_format_error(_mutated(fmt, mutate))


@HUFFMAN
@pytest.mark.parametrize("change", ["add", "drop", "drop_all"])
def test_stream_word_count(fmt, change):
    def mutate(f):
        s = f.sections[STREAM[fmt]]
        if change == "add":
            f.sections[STREAM[fmt]] = s + b"\x00" * 8
        elif change == "drop":
            f.sections[STREAM[fmt]] = s[:-8]  # the padding word
        else:
            f.sections[STREAM[fmt]] = b""

    expect_format_error(_mutated(fmt, mutate))


@HUFFMAN
@pytest.mark.parametrize("cut", [1, 4, 7])
def test_stream_not_whole_words(fmt, cut):
    def mutate(f):
        f.sections[STREAM[fmt]] = f.sections[STREAM[fmt]][:-cut]

    expect_format_error(_mutated(fmt, mutate))


@HUFFMAN
def test_offsets_not_whole_words(fmt):
    def mutate(f):
        f.sections[OFFSETS[fmt]] = f.sections[OFFSETS[fmt]] + b"\x00"

    expect_format_error(_mutated(fmt, mutate))


@HUFFMAN
def test_stream_garbage_bits(fmt):
    """Same sizes, different bits: rows no longer end on their offsets (or codes are
    invalid or columns run out)."""
    f0 = _sample_file(fmt)
    rng = np.random.default_rng(5)
    stream = bytearray(f0.sections[STREAM[fmt]])
    data_bytes = len(stream) - 8
    for trial in range(100):
        s = bytearray(stream)
        for p in rng.choice(data_bytes, size=3, replace=False):
            s[p] ^= int(rng.integers(1, 256))
        f = _sample_file(fmt)
        f.sections[STREAM[fmt]] = bytes(s)
        try:
            m = cn.frombytes(f.tobytes())
        except cn.FormatError as e:
            assert str(e)
        else:
            # Rarely, corrupted bits still form a valid stream: then it must be a
            # consistent matrix of the right shape.
            assert m.shape == (f.rows, f.cols)
            m.to_dense()


@HUFFMAN
@pytest.mark.parametrize("length", [25, 26, 31, 32, 64, 128, 254])
def test_code_length_over_24(fmt, length):
    def mutate(f):
        lengths = bytearray(f.sections[LENGTHS[fmt]])
        used = [i for i, l in enumerate(lengths) if l]
        lengths[used[0]] = length
        f.sections[LENGTHS[fmt]] = bytes(lengths)

    expect_format_error(_mutated(fmt, mutate))


@HUFFMAN
def test_code_length_over_24_unused_symbol(fmt):
    def mutate(f):
        lengths = bytearray(f.sections[LENGTHS[fmt]])
        unused = [i for i, l in enumerate(lengths) if not l]
        lengths[unused[-1]] = 25
        f.sections[LENGTHS[fmt]] = bytes(lengths)

    expect_format_error(_mutated(fmt, mutate, unused=True), match="exceeds")


def _kraft(lengths) -> float:
    return sum(2.0**-l for l in lengths if l and l != 255)


@HUFFMAN
@pytest.mark.parametrize("kind", ["all_one", "shorten", "extra_short", "extra_long"])
def test_oversubscribed_code(fmt, kind):
    def mutate(f):
        lengths = bytearray(f.sections[LENGTHS[fmt]])
        assert _kraft(lengths) == 1.0  # the code is complete
        if kind == "all_one":
            lengths = bytearray(1 for _ in lengths)
        elif kind == "shorten":
            longest = max(range(len(lengths)), key=lambda i: lengths[i])
            lengths[longest] -= 1
        else:
            # One more code of any length over-fills a complete code.
            unused = [i for i, l in enumerate(lengths) if not l]
            lengths[unused[-1]] = 1 if kind == "extra_short" else 24
        assert _kraft(lengths) > 1.0
        f.sections[LENGTHS[fmt]] = bytes(lengths)

    expect_format_error(_mutated(fmt, mutate, unused=True), match="over-subscribe")


def test_oversubscribed_code_from_scratch():
    """Three symbols of length 1 in a HAM whose stream would decode fine."""
    m = cn.HAM.from_codebook(np.float32([1, 2, 3]), np.array([[0, 1, 2, 0]]))
    f = File(m.tobytes())
    f.sections[1] = bytes([1, 1, 1])
    expect_format_error(f.tobytes(), match="over-subscribe")


@HUFFMAN
@pytest.mark.parametrize("where", ["used", "unused"])
def test_zero_bit_length_with_other_codes(fmt, where):
    def mutate(f):
        lengths = bytearray(f.sections[LENGTHS[fmt]])
        pick = [i for i, l in enumerate(lengths) if bool(l) == (where == "used")]
        lengths[pick[-1]] = 255
        f.sections[LENGTHS[fmt]] = bytes(lengths)

    expect_format_error(_mutated(fmt, mutate, unused=True))


def test_ham_two_zero_bit_lengths():
    m = cn.HAM.from_dense(np.full((3, 4), np.float32(2.0)))
    f = File(m.tobytes())
    assert f.sections[1] == b"\xff"
    cb = np.float32([2.0, 3.0]).tobytes()
    f.sections[0] = cb
    f.sections[1] = b"\xff\xff"
    expect_format_error(f.tobytes(), match="zero-bit")


def test_ham_zero_bit_code_with_stream_bits():
    m = cn.HAM.from_dense(np.full((3, 4), np.float32(2.0)))
    f = File(m.tobytes())
    f.set_ints(2, [0, 1, 2, 3])
    f.set_u64(3, [0, 0])
    expect_format_error(f.tobytes())


def test_ham_no_codes_but_entries():
    m = cn.HAM.from_dense(np.full((3, 4), np.float32(2.0)))
    f = File(m.tobytes())
    f.sections[1] = b"\x00"
    expect_format_error(f.tobytes())


def test_ham_incomplete_code_invalid_bits():
    """Lengths {1} only: the code '1' is invalid and must be reported, not decoded."""
    m = cn.HAM.from_codebook(np.float32([1, 2]), np.array([[0, 1, 0, 1]]))
    f = File(m.tobytes())
    assert f.ints(2) == [0, 4]
    f.sections[1] = bytes([1, 0])
    stream = bytearray(f.sections[3])
    stream[0] = 0b1111_0000
    f.sections[3] = bytes(stream)
    expect_format_error(f.tobytes(), match="invalid code")


def test_ham_long_incomplete_code_invalid_bits():
    """An incomplete code with lengths beyond the 11-bit table: all-ones is invalid."""
    k = 20
    m = cn.HAM.from_codebook(np.arange(k, dtype=np.float32), np.arange(k).reshape(1, k))
    f = File(m.tobytes())
    lengths = bytes(range(1, k + 1))  # Kraft sum 1 - 2^-20: the all-ones code is unused
    f.sections[1] = lengths
    bits_total = 20 * 3
    f.set_ints(2, [0, bits_total])
    stream = b"\xff" * 8 + b"\x00" * 8
    f.sections[3] = stream
    expect_format_error(f.tobytes(), match="invalid code")


def test_ham_row_ends_early_and_overruns():
    m = cn.HAM.from_codebook(np.float32([1, 2]), np.array([[0, 1, 0, 1], [1, 1, 1, 0]]))
    f = File(m.tobytes())
    assert f.ints(2) == [0, 4, 8]
    for offsets in ([0, 3, 8], [0, 5, 8], [0, 4, 7]):
        g = File(m.tobytes())
        g.set_ints(2, offsets)
        expect_format_error(g.tobytes(), match="row")


@HUFFMAN
def test_cols_changed(fmt):
    """Fewer columns than the rows' entries (HAM, HCSR); more columns than coded (HAM)."""
    for cols in (0, 1, 10, 23) + ((25, 100) if fmt is cn.HAM else ()):

        def mutate(f, cols=cols):
            f.cols = cols

        expect_format_error(_mutated(fmt, mutate))


def test_index_map_cols_changed():
    """IndexMap: another shape with the same packed size is a different matrix, not an
    error (there is nothing to check it against); a different packed size is an error."""
    f = _sample_file(cn.IndexMap)
    f.cols = 23
    m = cn.frombytes(f.tobytes())  # 8*23 = 184 entries: still 2 groups of 128
    assert m.shape == (8, 23)
    f.cols = 10
    expect_format_error(f.tobytes())


def test_hcsr_with_zero_bit_length():
    m = cn.HCSR.from_dense(np.full((3, 4), np.float32(2.0))).with_layout("rows")
    f = File(m.tobytes())
    lengths = bytearray(f.sections[2])
    assert lengths.count(1) == 1 and lengths.count(0) == len(lengths) - 1
    lengths[lengths.index(1)] = 255
    f.sections[2] = bytes(lengths)
    f.set_ints(3, [0, 0, 0, 0])
    f.set_u64(4, [0])
    expect_format_error(f.tobytes(), match="bit")
    # And with the original (non-empty) stream:
    g = File(m.tobytes())
    g.sections[2] = bytes(lengths)
    expect_format_error(g.tobytes())


def _hcsr_params(f: File) -> list[int]:
    return f.u64(1)


@pytest.mark.parametrize("gap_bits", [9, 10, 63, 64, 2**32, 2**64 - 1])
def test_hcsr_gap_bits_too_large(gap_bits):
    def mutate(f):
        p = _hcsr_params(f)
        k = len(f.sections[0]) // 4
        p[1] = gap_bits
        f.set_u64(1, p)
        if gap_bits == 9:  # make the code lengths section match k << 9
            f.sections[2] = bytes(k << 9)

    expect_format_error(_mutated(cn.HCSR, mutate), match="gap")


@pytest.mark.parametrize("gap_bits", range(9))
def test_hcsr_gap_bits_inconsistent(gap_bits):
    """Another gap split than the code lengths were made for."""
    if gap_bits == _hcsr_params(_sample_file(cn.HCSR))[1]:
        return

    def mutate(f):
        p = _hcsr_params(f)
        p[1] = gap_bits
        f.set_u64(1, p)

    expect_format_error(_mutated(cn.HCSR, mutate), match="code lengths")


@pytest.mark.parametrize("esc_bits", [49, 57, 60, 64, 65, 2**64 - 1])
def test_hcsr_escape_bits_too_large(esc_bits):
    def mutate(f):
        p = _hcsr_params(f)
        p[2] = esc_bits
        f.set_u64(1, p)

    expect_format_error(_mutated(cn.HCSR, mutate))


@pytest.mark.parametrize("esc_bits", [0, 1, 20, 48])
def test_hcsr_escape_bits_changed(esc_bits):
    f0 = _sample_file(cn.HCSR)
    if _hcsr_params(f0)[2] == esc_bits:
        return

    def mutate(f):
        p = _hcsr_params(f)
        p[2] = esc_bits
        f.set_u64(1, p)

    expect_format_error(_mutated(cn.HCSR, mutate))


@pytest.mark.parametrize("delta", [-1, 1, 2**63, -(2**20)])
def test_hcsr_wrong_nnz(delta):
    def mutate(f):
        p = _hcsr_params(f)
        p[0] = (p[0] + delta) % 2**64
        f.set_u64(1, p)

    expect_format_error(_mutated(cn.HCSR, mutate), match="entries")


@pytest.mark.parametrize("params", [[], [0, 0], [0, 0, 0, 0]])
def test_hcsr_params_wrong_count(params):
    def mutate(f):
        f.set_u64(1, params)

    expect_format_error(_mutated(cn.HCSR, mutate))


def test_hcsr_params_not_whole_words():
    def mutate(f):
        f.sections[1] = f.sections[1] + b"\x00"

    expect_format_error(_mutated(cn.HCSR, mutate))


def test_hcsr_columns_beyond_row():
    """A valid HCSR file with an entry at column 19 read as a 10-column matrix."""
    W = np.zeros((4, 20), np.float32)
    W[0, 19] = 1.0
    W[1, 3] = 2.0
    W[3, [0, 5, 9]] = 3.0
    f = File(cn.HCSR.from_dense(W).with_layout("rows").tobytes())
    for cols in (19, 10, 1, 0):
        f.cols = cols
        expect_format_error(f.tobytes(), match="row")


def test_hcsr_escape_runs_past_columns():
    """Large gaps coded through escapes: shrinking cols must catch the escaped gap."""
    W = np.zeros((2, 5000), np.float32)
    W[0, [0, 4000, 4999]] = 1.0
    W[1, [2500]] = -1.0
    m = cn.HCSR.from_dense(W).with_layout("rows")
    assert m.info()["escape_bits"] > 0
    f = File(m.tobytes())
    for cols in (4999, 4001, 3000, 2500):
        f.cols = cols
        expect_format_error(f.tobytes())


def test_hcsr_escape_beyond_row_bits():
    """A row whose last code announces an escape field that lies past the row's end."""
    W = np.zeros((2, 5000), np.float32)
    W[0, 4000] = 1.0
    W[1, 4000] = 1.0
    m = cn.HCSR.from_dense(W).with_layout("rows")
    f = File(m.tobytes())
    p = _hcsr_params(f)
    assert p[2] > 0
    off = f.ints(3)
    row_bits = off[1] - off[0]
    for cut in range(1, row_bits):
        g = File(m.tobytes())
        g.set_ints(3, [0, off[1] - cut, off[2] - cut])
        g.sections[4] = g.sections[4][: 8 * ((off[2] - cut + 63) // 64 + 1)]
        data = g.tobytes()
        expect_format_error(data)


def test_index_map_value_above_k():
    """k = 5 needs 3 bits, which can hold 5, 6 and 7."""
    idx = np.array([[0, 1, 2, 3, 4, 7, 0, 1], [4, 3, 2, 1, 0, 0, 0, 6]])
    m = cn.IndexMap.from_codebook(np.arange(8, dtype=np.float32), idx)
    f = File(m.tobytes())
    assert m.info()["index_bits"] == 3
    f.set_floats(0, np.arange(5, dtype=np.float32))
    msg = expect_format_error(f.tobytes(), match="not below k")
    assert "7" in msg


@pytest.mark.parametrize("k,bad", [(3, 3), (5, 5), (5, 7), (129, 255), (129, 129), (40000, 65535)])
def test_index_map_value_above_k_various(k, bad):
    """For each k, an index its bit width can hold but k cannot, at the very last entry."""
    big = 1 << (k - 1).bit_length()
    idx = np.zeros((3, 50), np.int64)
    idx[-1, -1] = bad
    m = cn.IndexMap.from_codebook(np.arange(big, dtype=np.float32), idx)
    f = File(m.tobytes())
    f.set_floats(0, np.arange(k, dtype=np.float32))
    assert cn.IndexMap.from_codebook(np.arange(k, dtype=np.float32), idx % k).info() == m.info()
    expect_format_error(f.tobytes(), match="not below k")


def test_index_map_wrong_packed_size():
    for delta in (-16, -1, 1, 16):
        f = _sample_file(cn.IndexMap)
        s = f.sections[1]
        f.sections[1] = s[:delta] if delta < 0 else s + bytes(delta)
        expect_format_error(f.tobytes(), match="index section")


def test_index_map_k1_with_index_bytes():
    m = cn.IndexMap.from_dense(np.full((3, 3), np.float32(1.0)))
    f = File(m.tobytes())
    assert f.sections[1] == b""
    f.sections[1] = bytes(16)
    expect_format_error(f.tobytes())


@ALL
@pytest.mark.parametrize(
    "value", [np.nan, np.inf, -np.inf, "snan"], ids=["nan", "inf", "-inf", "signalling-nan"]
)
def test_codebook_not_finite(fmt, value):
    def mutate(f):
        cb = np.frombuffer(f.sections[0], dtype="<f4").copy()
        if value == "snan":
            cb.view(np.uint32)[-1] = 0x7F800001
        else:
            cb[-1] = value
        f.sections[0] = cb.tobytes()

    expect_format_error(_mutated(fmt, mutate), match="finite")


@ALL
def test_codebook_empty(fmt):
    def mutate(f):
        f.sections[0] = b""

    expect_format_error(_mutated(fmt, mutate), match="codebook")


@ALL
@pytest.mark.parametrize("size", [65537, 70000])
def test_codebook_too_large(fmt, size):
    def mutate(f):
        f.set_floats(0, np.arange(size, dtype=np.float32))

    expect_format_error(_mutated(fmt, mutate), match="codebook")


@ALL
@pytest.mark.parametrize("cut", [1, 2, 3])
def test_codebook_not_multiple_of_4(fmt, cut):
    def mutate(f):
        f.sections[0] = f.sections[0][:-cut]

    expect_format_error(_mutated(fmt, mutate), match="codebook")


@ALL
def test_codebook_extra_entry(fmt):
    """One more codebook value than the code lengths (HAM, HCSR) or the packed indices
    (IndexMap: only if the index width changes) were made for."""

    def mutate(f):
        cb = np.frombuffer(f.sections[0], dtype="<f4")
        f.set_floats(0, np.append(cb, np.float32(99.0)))

    data = _mutated(fmt, mutate)
    k = len(File(valid_file(fmt)).sections[0]) // 4
    if fmt is cn.IndexMap and (k - 1).bit_length() == k.bit_length():
        m = cn.frombytes(data)  # same index width: a valid matrix with an unused value
        assert m.k == k + 1
    else:
        expect_format_error(data)


@HUFFMAN
def test_code_lengths_wrong_count(fmt):
    for delta in (-1, 1):

        def mutate(f, delta=delta):
            s = f.sections[LENGTHS[fmt]]
            f.sections[LENGTHS[fmt]] = s[:-1] if delta < 0 else s + b"\x00"

        expect_format_error(_mutated(fmt, mutate), match="code lengths")


@HUFFMAN
def test_empty_matrix_hostile(fmt):
    """An empty matrix's file with a shape that has entries.  (Not IndexMap: with k = 1
    it stores no index bits, so any shape is a valid constant matrix.)"""
    data = fmt.from_dense(np.zeros((0, 5), np.float32)).tobytes()
    f = File(data)
    f.rows = 1
    expect_format_error(f.tobytes())


# -- 5. paths and argument types -----------------------------------------------------------
def test_load_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        cn.load(tmp_path / "does-not-exist.cnn")
    with pytest.raises(FileNotFoundError):
        cn.load(str(tmp_path / "nope" / "deeper.cnn"))


def test_load_invalid_file(tmp_path):
    p = tmp_path / "junk.cnn"
    p.write_bytes(b"hello world")
    with pytest.raises(cn.FormatError):
        cn.load(p)
    p.write_bytes(b"")
    with pytest.raises(cn.FormatError):
        cn.load(p)


@pytest.mark.parametrize("bad", ["", "\x89CNN\r\n\x1a\n", 12, None, 1.5, [1, 2], np.zeros(40)])
def test_frombytes_wrong_type(bad):
    with pytest.raises(TypeError):
        cn.frombytes(bad)


def test_frombytes_str_of_valid_file():
    data = valid_file(cn.HAM)
    with pytest.raises(TypeError):
        cn.frombytes(data.decode("latin-1"))


def test_format_error_is_value_error():
    assert issubclass(cn.FormatError, ValueError)


# -- 6. atomic save ------------------------------------------------------------------------
def _leftovers(folder, keep):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@ALL
def test_save_replaces_existing(fmt, tmp_path):
    path = tmp_path / "w.cnn"
    path.write_bytes(b"old contents that are longer than nothing" * 100)
    m1 = fmt.from_dense(MATRICES["dense_quantized"])
    m1.save(path)
    assert path.read_bytes() == m1.tobytes()
    assert_same_matrix(m1, cn.load(path))
    m2 = fmt.from_dense(MATRICES["k1_nonzero"])
    m2.save(path)  # a shorter file over a longer one
    assert path.read_bytes() == m2.tobytes()
    assert_same_matrix(m2, cn.load(path))
    m2.save(str(path))
    assert path.read_bytes() == m2.tobytes()
    assert _leftovers(tmp_path, {"w.cnn"}) == []


def test_save_many_times_no_temp_files(tmp_path):
    for i, fmt in enumerate(FORMATS * 3):
        fmt.from_dense(MATRICES["sparse90"]).save(tmp_path / f"m{i % 2}.cnn")
    assert _leftovers(tmp_path, {"m0.cnn", "m1.cnn"}) == []


def test_save_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = cn.HCSR.from_dense(MATRICES["sparse90"])
    m.save("rel.cnn")
    assert_same_matrix(m, cn.load("rel.cnn"))
    assert _leftovers(tmp_path, {"rel.cnn"}) == []


def test_save_failure_leaves_nothing(tmp_path):
    """Saving onto a directory fails, keeps the directory and leaves no temp file."""
    target = tmp_path / "adir"
    target.mkdir()
    (target / "inside").write_bytes(b"x")
    m = cn.HAM.from_dense(MATRICES["dense_quantized"])
    with pytest.raises(OSError):
        m.save(target)
    assert target.is_dir() and (target / "inside").read_bytes() == b"x"
    assert _leftovers(tmp_path, {"adir"}) == []


def test_save_into_missing_folder(tmp_path):
    m = cn.IndexMap.from_dense(MATRICES["dense_quantized"])
    with pytest.raises(FileNotFoundError):
        m.save(tmp_path / "missing" / "m.cnn")
    assert _leftovers(tmp_path, set()) == []


def test_save_bytes_path(tmp_path):
    """Paths may be bytes, like everywhere in os and open(); load accepts them, save must
    too."""
    m = cn.HCSR.from_dense(MATRICES["sparse90"])
    path = os.fsencode(tmp_path / "b.cnn")
    m.save(path)
    assert_same_matrix(m, cn.load(path))
    assert _leftovers(tmp_path, {"b.cnn"}) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_save_file_mode(tmp_path):
    """save() creates files like open() does (mode 0o666 & ~umask), and replacing a file
    does not make it private: the temp file of an atomic save must not leak mkstemp's
    0o600 into the result."""
    old_umask = os.umask(0o022)
    try:
        m = cn.HAM.from_dense(MATRICES["dense_quantized"])
        new = tmp_path / "new.cnn"
        m.save(new)
        existing = tmp_path / "existing.cnn"
        existing.write_bytes(b"old")
        os.chmod(existing, 0o644)
        m.save(existing)
        modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in (new, existing)}
        assert modes == {"new.cnn": "0o644", "existing.cnn": "0o644"}
    finally:
        os.umask(old_umask)


def test_save_keeps_old_file_when_write_fails(tmp_path, monkeypatch):
    """If writing the new contents fails, the old file is untouched and no temp file
    remains."""
    path = tmp_path / "w.cnn"
    old = cn.HAM.from_dense(MATRICES["k1_nonzero"])
    old.save(path)
    before = path.read_bytes()

    m = cn.HAM.from_dense(MATRICES["dense_quantized"])
    real_replace = os.replace

    def failing_replace(src, dst):
        raise OSError("simulated failure")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        m.save(path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path, {"w.cnn"}) == []


def test_checksum_is_checked_on_the_bytes_kept():
    """A buffer rewritten while it loads (another thread, a file mapped while rewritten):
    what loads is always what passed the checksum.  The codebook section of a 256x256 HCSR
    with codebook 1..65536 has one byte flipped back and forth; every load must either fail
    its checksum or give the exact original codebook."""
    import threading

    rng = np.random.default_rng(0)
    codebook = np.arange(1, 65537, dtype=np.float32)
    m = cn.HCSR.from_codebook(codebook, rng.integers(0, 65536, (256, 256)))
    data = bytearray(m.tobytes())
    stop = threading.Event()

    def flip():
        while not stop.is_set():
            data[52] ^= 1

    t = threading.Thread(target=flip)
    t.start()
    try:
        for _ in range(300):
            try:
                back = cn.frombytes(data)
            except cn.FormatError:
                continue
            np.testing.assert_array_equal(back.codebook, codebook)
    finally:
        stop.set()
        t.join()
