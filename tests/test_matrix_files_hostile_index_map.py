"""Hostile IndexMap files whose checksums are valid: packed indices at or above k, a packed
section of the wrong size for the shape, and index bytes where k = 1 needs none."""
import numpy as np
import pytest

import compactnn as cn
from helpers.files import File, expect_format_error, mutated, sample_file

pytestmark = pytest.mark.emulated


@pytest.mark.parametrize("rows", [0, 1, 5, 11, 100])
def test_index_map_rows_mismatch(rows):
    """IndexMap: 8x24 entries fill 2 groups of 128; a row count that needs another number
    of groups disagrees with the packed index size."""

    def mutate(f):
        f.rows = rows

    expect_format_error(mutated(cn.IndexMap, mutate), match="index section")


def test_index_map_cols_changed():
    """IndexMap: another shape with the same packed size is a different matrix, not an
    error (there is nothing to check it against); a different packed size is an error."""
    f = sample_file(cn.IndexMap)
    f.cols = 23
    m = cn.frombytes(f.tobytes())  # 8*23 = 184 entries: still 2 groups of 128
    assert m.shape == (8, 23)
    f.cols = 10
    expect_format_error(f.tobytes())


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
        f = sample_file(cn.IndexMap)
        s = f.sections[1]
        f.sections[1] = s[:delta] if delta < 0 else s + bytes(delta)
        expect_format_error(f.tobytes(), match="index section")


def test_index_map_k1_with_index_bytes():
    m = cn.IndexMap.from_dense(np.full((3, 3), np.float32(1.0)))
    f = File(m.tobytes())
    assert f.sections[1] == b""
    f.sections[1] = bytes(16)
    expect_format_error(f.tobytes())
