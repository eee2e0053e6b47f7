"""The matrix file container (docs/FORMAT.md) as the tests see it: a parser that rewrites
files with fresh checksums (File), small valid files and sample matrices, and the checks
that a file round-trips or is refused with a FormatError."""
from __future__ import annotations

import functools
import struct
import zlib

import numpy as np
import pytest

import compactnn as cn

from .matrices import FORMATS, bits

FORMAT_IDS = {cn.IndexMap: 1, cn.HAM: 2, cn.HCSR: 3}
SECTION_COUNTS = {1: 2, 2: 4, 3: 5}
MAGIC = b"\x89CNN\r\n\x1a\n"
HEADER = struct.Struct("<8sIIQQI")  # the 36 bytes the header checksum covers
SECTION_HEADER = struct.Struct("<QI")

# Section indexes in the row layout of HAM and HCSR.
OFFSETS = {cn.HAM: 2, cn.HCSR: 3}  # row offsets
STREAM = {cn.HAM: 3, cn.HCSR: 4}
LENGTHS = {cn.HAM: 1, cn.HCSR: 2}  # code lengths

ALL = pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.__name__)
HUFFMAN = pytest.mark.parametrize("fmt", [cn.HAM, cn.HCSR], ids=lambda f: f.__name__)


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
    # HCSR's row layout here; its lane layout has its own hostile files (test_hcsr_lanes.py).
    data = (m.with_layout("rows") if fmt is cn.HCSR else m).tobytes()
    assert 150 <= len(data) <= 2000
    return data


def sample_file(fmt, unused=False) -> File:
    """valid_file(fmt, unused), parsed."""
    return File(valid_file(fmt, unused))


def mutated(fmt, mutate, unused=False) -> bytes:
    """valid_file(fmt, unused) changed by mutate(File), with valid checksums."""
    f = sample_file(fmt, unused)
    mutate(f)
    return f.tobytes()


def set_fields(**fields):
    """A mutation that sets File attributes (header fields)."""
    def mutate(f):
        for k, v in fields.items():
            setattr(f, k, v)

    return mutate


def expect_format_error(data, match=None):
    """Loading data raises a FormatError (a ValueError) with a message, containing `match`
    (lower case) if given; returns the message."""
    with pytest.raises(cn.FormatError) as exc:
        cn.frombytes(data)
    assert isinstance(exc.value, ValueError)
    msg = str(exc.value)
    assert msg.strip(), "FormatError with an empty message"
    if match is not None:
        assert match in msg.lower(), msg
    return msg


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
    """W in fmt survives tobytes/frombytes (from bytes, bytearray and memoryview) and, with
    tmp_path, save/load bit for bit; returns the matrix."""
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


# -- sample matrices -------------------------------------------------------------------------
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
