"""The lane-interleaved layout of HAM and HCSR: its file sections and the check every lane
test makes."""
import numpy as np

import compactnn as cn

from .kernels import compare_isas

# Sections of a lane-layout file (docs/FORMAT.md), HCSR's and HAM's alike (HAM's gap code
# is one bucket of zero bits).
PARAMS, GAP_LENGTHS, VALUE_LENGTHS, COUNTS, GROUP_WORDS, WORDS = range(1, 7)


def check(m, W, rng, B=5):
    """Exact decode, and every kernel set's products against the scalar schedule."""
    assert m.layout == "lanes"
    np.testing.assert_array_equal(m.to_dense().view(np.uint32), W.view(np.uint32))
    back = cn.frombytes(m.tobytes())
    assert back.layout == "lanes" and back.tobytes() == m.tobytes()
    compare_isas(m, W, rng, B=B)


def set_param(i, value):
    """A mutation (for File) that sets the lane parameters' value i."""
    def mutate(f):
        p = f.u64(PARAMS)
        p[i] = value
        f.set_u64(PARAMS, p)
    return mutate
