"""Hostile HAM and HCSR files whose checksums are valid: Huffman code lengths that are too
long, over-subscribe the code, take zero bits beside other codes or miscount the codebook,
and streams that hold a code no symbol has."""
import numpy as np
import pytest

import compactnn as cn
from helpers.files import HUFFMAN, LENGTHS, File, expect_format_error, mutated

pytestmark = pytest.mark.emulated


# -- code lengths --------------------------------------------------------------------------
@HUFFMAN
@pytest.mark.parametrize("length", [25, 26, 31, 32, 64, 128, 254])
def test_code_length_over_24(fmt, length):
    def mutate(f):
        lengths = bytearray(f.sections[LENGTHS[fmt]])
        used = [i for i, l in enumerate(lengths) if l]
        lengths[used[0]] = length
        f.sections[LENGTHS[fmt]] = bytes(lengths)

    expect_format_error(mutated(fmt, mutate))


@HUFFMAN
def test_code_length_over_24_unused_symbol(fmt):
    def mutate(f):
        lengths = bytearray(f.sections[LENGTHS[fmt]])
        unused = [i for i, l in enumerate(lengths) if not l]
        lengths[unused[-1]] = 25
        f.sections[LENGTHS[fmt]] = bytes(lengths)

    expect_format_error(mutated(fmt, mutate, unused=True), match="exceeds")


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

    expect_format_error(mutated(fmt, mutate, unused=True), match="over-subscribe")


def test_oversubscribed_code_from_scratch():
    """Three symbols of length 1 in a HAM whose stream would decode fine."""
    m = cn.HAM.from_codebook(np.float32([1, 2, 3]), np.array([[0, 1, 2, 0]]))
    f = File(m.tobytes())
    f.sections[1] = bytes([1, 1, 1])
    expect_format_error(f.tobytes(), match="over-subscribe")


@HUFFMAN
def test_code_lengths_wrong_count(fmt):
    for delta in (-1, 1):

        def mutate(f, delta=delta):
            s = f.sections[LENGTHS[fmt]]
            f.sections[LENGTHS[fmt]] = s[:-1] if delta < 0 else s + b"\x00"

        expect_format_error(mutated(fmt, mutate), match="code lengths")


# -- zero-bit codes ------------------------------------------------------------------------
@HUFFMAN
@pytest.mark.parametrize("where", ["used", "unused"])
def test_zero_bit_length_with_other_codes(fmt, where):
    def mutate(f):
        lengths = bytearray(f.sections[LENGTHS[fmt]])
        pick = [i for i, l in enumerate(lengths) if bool(l) == (where == "used")]
        lengths[pick[-1]] = 255
        f.sections[LENGTHS[fmt]] = bytes(lengths)

    expect_format_error(mutated(fmt, mutate, unused=True))


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


# -- invalid codes in the stream -----------------------------------------------------------
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
