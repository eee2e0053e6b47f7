"""Every kernel set this CPU (or its emulation) supports, against the scalar schedule.  Tests
that switch kernel sets use conftest's `restore_isa` fixture."""
import numpy as np

from compactnn import _core

from .matrices import reference_error

ISAS = _core.supported_isas()


def products(m, x, X):
    return m.dot(x), m.dot(X), m.linear(X.T)


def compare_isas(m, W, rng, B=5):
    """m's products on every kernel set agree with the scalar kernels, which agree with W."""
    x = rng.standard_normal(W.shape[1]).astype(np.float32)
    X = rng.standard_normal((W.shape[1], B)).astype(np.float32)
    _core.set_isa("scalar")
    ref = products(m, x, X)
    assert reference_error(W, x, ref[0]) < 2e-6
    for isa in ISAS:
        _core.set_isa(isa)
        got = products(m, x, X)
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * (np.abs(W).sum(1).max() + 1))
        if B > 1:  # the batch-major product sums as the column-major one does
            np.testing.assert_array_equal(got[2], got[1].T)
