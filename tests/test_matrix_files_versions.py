"""Matrix files across container versions: row offsets and row counts in the narrowest
integer width from version 4 on, the fixed widths of version 3, and widths no version
allows.  (Older versions of the lane layouts: test_hcsr_lanes.py, test_ham_lanes.py.)"""
import numpy as np
import pytest

import compactnn as cn
from helpers.files import File, expect_format_error
from helpers.matrices import bits, random_quantized

pytestmark = pytest.mark.emulated


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
