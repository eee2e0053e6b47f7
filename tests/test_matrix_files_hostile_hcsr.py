"""Hostile HCSR files (row layout) whose checksums are valid: parameters (entry count, gap
split, escape width) that are out of range or disagree with the codes, and entries or
escaped gaps that run past the row's columns or bits.  (The lane layout's hostile files:
test_hcsr_lanes.py.)"""
import numpy as np
import pytest

import compactnn as cn
from helpers.files import File, expect_format_error, mutated, sample_file, valid_file

pytestmark = pytest.mark.emulated


# -- parameters ----------------------------------------------------------------------------
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

    expect_format_error(mutated(cn.HCSR, mutate), match="gap")


@pytest.mark.parametrize("gap_bits", range(9))
def test_hcsr_gap_bits_inconsistent(gap_bits):
    """Another gap split than the code lengths were made for (the file's own loads)."""
    def mutate(f):
        p = _hcsr_params(f)
        p[1] = gap_bits
        f.set_u64(1, p)

    if gap_bits == _hcsr_params(sample_file(cn.HCSR))[1]:
        assert cn.frombytes(mutated(cn.HCSR, mutate)).nnz == cn.frombytes(valid_file(cn.HCSR)).nnz
    else:
        expect_format_error(mutated(cn.HCSR, mutate), match="code lengths")


@pytest.mark.parametrize("esc_bits", [49, 57, 60, 64, 65, 2**64 - 1])
def test_hcsr_escape_bits_too_large(esc_bits):
    def mutate(f):
        p = _hcsr_params(f)
        p[2] = esc_bits
        f.set_u64(1, p)

    expect_format_error(mutated(cn.HCSR, mutate))


@pytest.mark.parametrize("esc_bits", [0, 1, 20, 48])
def test_hcsr_escape_bits_changed(esc_bits):
    """Another escape width than the stream was written with (the file's own loads)."""
    def mutate(f):
        p = _hcsr_params(f)
        p[2] = esc_bits
        f.set_u64(1, p)

    if _hcsr_params(sample_file(cn.HCSR))[2] == esc_bits:
        assert cn.frombytes(mutated(cn.HCSR, mutate)).nnz == cn.frombytes(valid_file(cn.HCSR)).nnz
    else:
        expect_format_error(mutated(cn.HCSR, mutate))


@pytest.mark.parametrize("delta", [-1, 1, 2**63, -(2**20)])
def test_hcsr_wrong_nnz(delta):
    def mutate(f):
        p = _hcsr_params(f)
        p[0] = (p[0] + delta) % 2**64
        f.set_u64(1, p)

    expect_format_error(mutated(cn.HCSR, mutate), match="entries")


@pytest.mark.parametrize("params", [[], [0, 0], [0, 0, 0, 0]])
def test_hcsr_params_wrong_count(params):
    def mutate(f):
        f.set_u64(1, params)

    expect_format_error(mutated(cn.HCSR, mutate))


def test_hcsr_params_not_whole_words():
    def mutate(f):
        f.sections[1] = f.sections[1] + b"\x00"

    expect_format_error(mutated(cn.HCSR, mutate))


# -- columns and escapes -------------------------------------------------------------------
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


@pytest.mark.hardening
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
