"""Hostile HAM and HCSR files whose checksums are valid: row offsets that do not start at 0,
decrease, or point past the bit stream; streams of the wrong size or with changed bits; and
shapes that disagree with the rows coded."""
import numpy as np
import pytest

import compactnn as cn
from helpers.files import (HUFFMAN, OFFSETS, STREAM, File, expect_format_error, mutated,
                           sample_file)

pytestmark = pytest.mark.emulated


# -- row offsets ---------------------------------------------------------------------------
@HUFFMAN
@pytest.mark.parametrize("delta", [-1, 1, -8, 8])
def test_rows_mismatch(fmt, delta):
    """rows disagrees with the number of row offsets."""

    def mutate(f):
        f.rows += delta

    expect_format_error(mutated(fmt, mutate), match="row offsets")


@HUFFMAN
def test_offsets_length_mismatch(fmt):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        f.set_ints(OFFSETS[fmt], off + [off[-1]])

    expect_format_error(mutated(fmt, mutate))


@HUFFMAN
def test_row_offset_not_starting_at_zero(fmt):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        off[0] = 1
        f.set_ints(OFFSETS[fmt], off)

    expect_format_error(mutated(fmt, mutate))


@HUFFMAN
def test_decreasing_row_offsets(fmt):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        assert off[3] > off[2]
        off[2], off[3] = off[3], off[2]
        f.set_ints(OFFSETS[fmt], off)

    expect_format_error(mutated(fmt, mutate))


@HUFFMAN
def test_decreasing_row_offsets_huge(fmt):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        off[1] = 2**64 - 1
        f.set_ints(OFFSETS[fmt], off)

    expect_format_error(mutated(fmt, mutate))


@HUFFMAN
@pytest.mark.parametrize("delta", [1, 64, 2**40, 2**63])
def test_last_offset_beyond_stream(fmt, delta):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        off[-1] += delta
        f.set_ints(OFFSETS[fmt], off)

    expect_format_error(mutated(fmt, mutate))


@HUFFMAN
def test_last_offset_max(fmt):
    """A last offset near 2^64: (bits + 63) / 64 must not wrap around."""
    for last in (2**64 - 1, 2**64 - 63, 2**64 - 64):

        def mutate(f, last=last):
            off = f.ints(OFFSETS[fmt])
            off[-1] = last
            f.set_ints(OFFSETS[fmt], off)

        expect_format_error(mutated(fmt, mutate))


@HUFFMAN
def test_inner_offset_beyond_stream(fmt):
    def mutate(f):
        off = f.ints(OFFSETS[fmt])
        words = len(f.sections[STREAM[fmt]]) // 8
        off[1:-1] = [words * 64 + 1000] * (len(off) - 2)
        off[-1] = words * 64 + 1000
        f.set_ints(OFFSETS[fmt], off)

    expect_format_error(mutated(fmt, mutate))


@HUFFMAN
def test_offsets_not_whole_words(fmt):
    def mutate(f):
        f.sections[OFFSETS[fmt]] = f.sections[OFFSETS[fmt]] + b"\x00"

    expect_format_error(mutated(fmt, mutate))


def test_ham_row_ends_early_and_overruns():
    m = cn.HAM.from_codebook(np.float32([1, 2]), np.array([[0, 1, 0, 1], [1, 1, 1, 0]]))
    f = File(m.tobytes())
    assert f.ints(2) == [0, 4, 8]
    for offsets in ([0, 3, 8], [0, 5, 8], [0, 4, 7]):
        g = File(m.tobytes())
        g.set_ints(2, offsets)
        expect_format_error(g.tobytes(), match="row")


# -- bit streams ---------------------------------------------------------------------------
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

    expect_format_error(mutated(fmt, mutate))


@HUFFMAN
@pytest.mark.parametrize("cut", [1, 4, 7])
def test_stream_not_whole_words(fmt, cut):
    def mutate(f):
        f.sections[STREAM[fmt]] = f.sections[STREAM[fmt]][:-cut]

    expect_format_error(mutated(fmt, mutate))


@pytest.mark.hardening
@HUFFMAN
def test_stream_garbage_bits(fmt):
    """Same sizes, different bits: rows no longer end on their offsets (or codes are
    invalid or columns run out)."""
    f0 = sample_file(fmt)
    rng = np.random.default_rng(5)
    stream = bytearray(f0.sections[STREAM[fmt]])
    data_bytes = len(stream) - 8
    for trial in range(100):
        s = bytearray(stream)
        for p in rng.choice(data_bytes, size=3, replace=False):
            s[p] ^= int(rng.integers(1, 256))
        f = sample_file(fmt)
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


# -- shape ---------------------------------------------------------------------------------
@HUFFMAN
def test_cols_changed(fmt):
    """Fewer columns than the rows' entries (HAM, HCSR); more columns than coded (HAM)."""
    for cols in (0, 1, 10, 23) + ((25, 100) if fmt is cn.HAM else ()):

        def mutate(f, cols=cols):
            f.cols = cols

        expect_format_error(mutated(fmt, mutate))


@HUFFMAN
def test_empty_matrix_hostile(fmt):
    """An empty matrix's file with a shape that has entries.  (Not IndexMap: with k = 1
    it stores no index bits, so any shape is a valid constant matrix.)"""
    data = fmt.from_dense(np.zeros((0, 5), np.float32)).tobytes()
    f = File(data)
    f.rows = 1
    expect_format_error(f.tobytes())
