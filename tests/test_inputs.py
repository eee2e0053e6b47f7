"""Bad input gets a clear error, never a crash or a silently wrong answer."""
import numpy as np
import pytest

pytestmark = pytest.mark.emulated


@pytest.fixture
def m(fmt):
    return fmt.from_dense(np.array([[1, 0, 2], [0, 3, 1]], np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(fmt, bad):
    W = np.ones((3, 4))
    W[1, 2] = bad
    with pytest.raises(ValueError, match=r"non-finite.*\(1, 2\)"):
        fmt.from_dense(W)
    with pytest.raises(ValueError, match="non-finite"):
        fmt.from_codebook([1.0, bad], np.zeros((2, 2), int))


def test_wrong_ndim(fmt):
    for W in (np.ones(5), np.ones((2, 2, 2)), np.float32(3)):
        with pytest.raises(ValueError, match="2-D"):
            fmt.from_dense(W)


@pytest.mark.parametrize("W", [np.ones((2, 2), complex), np.array([[1, "a"]], object),
                               np.array([["x"]])])
def test_wrong_dtype(fmt, W):
    with pytest.raises(TypeError, match="real numbers"):
        fmt.from_dense(W)


def test_too_many_distinct_values(fmt):
    W = np.arange(65537, dtype=np.float32).reshape(1, -1)
    with pytest.raises(ValueError, match="more than 65536 distinct values.*quantize"):
        fmt.from_dense(W)


def test_bad_codebook_input(fmt):
    with pytest.raises(ValueError, match="outside the codebook"):
        fmt.from_codebook([1.0, 2.0], [[0, 2]])
    with pytest.raises(ValueError, match="outside the codebook"):
        fmt.from_codebook([1.0, 2.0], [[-1, 0]])
    with pytest.raises(TypeError, match="integers"):
        fmt.from_codebook([1.0, 2.0], [[0.0, 1.0]])
    with pytest.raises(ValueError, match="1..65536"):
        fmt.from_codebook([], np.zeros((1, 1), int))
    with pytest.raises(ValueError, match="65537 distinct"):
        fmt.from_codebook(np.zeros(65537), np.zeros((1, 1), int))
    with pytest.raises(ValueError, match="2-D"):
        fmt.from_codebook([1.0], [0, 0])


def test_dot_shape_mismatch_names_both_shapes(m):
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4,\) not aligned"):
        m.dot(np.ones(4))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 5\) not aligned"):
        m @ np.ones((2, 5))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        m.dot(np.ones((3, 1, 1)))
    with pytest.raises(ValueError, match=r"\(4, 2\).*\(2, 3\)"):
        m.linear(np.ones((4, 2)))
    with pytest.raises(ValueError, match="2-D"):
        m.linear(np.ones(3))


def test_dot_wrong_dtype(m):
    with pytest.raises(TypeError, match="real numbers"):
        m.dot(np.ones(3, complex))
    with pytest.raises(TypeError, match="real numbers"):
        m.dot(np.array(["a", "b", "c"]))


def test_bad_out(m):
    x = np.ones(3, np.float32)
    with pytest.raises(TypeError, match="float32"):
        m.dot(x, out=np.empty(2, np.float64))
    with pytest.raises(ValueError, match="shape"):
        m.dot(x, out=np.empty(3, np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        m.dot(x, out=np.empty(4, np.float32)[::2])
    ro = np.empty(2, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        m.dot(x, out=ro)
    with pytest.raises(TypeError, match="numpy array"):
        m.dot(x, out=[0.0, 0.0])


def test_matmul_with_other_types(m):
    with pytest.raises(TypeError):
        m @ m
    with pytest.raises(TypeError):
        m.to(np.ndarray)


def test_direct_construction_is_refused(fmt):
    with pytest.raises(TypeError, match="from_dense"):
        fmt(np.ones((2, 2)))


def test_native_layer_checks_shapes(m):
    """The binding checks shapes itself, so a wrong call cannot read out of bounds."""
    with pytest.raises(ValueError):
        m._c.matvec(np.ones(2, np.float32), np.empty(2, np.float32))
    with pytest.raises(TypeError):
        m._c.matvec(np.ones(3, np.float64), np.empty(2, np.float32))
    with pytest.raises(ValueError):
        m._c.linear(np.ones((2, 3), np.float32), np.empty((2, 5), np.float32))


@pytest.mark.parametrize("rows, match", [(2**64 - 1, "too large"), (2**63, "too large"),
                                         (2**40, "wrong shape")])
def test_private_hcsr_constructor_checks_the_shape_first(rows, match):
    """rows + 1 wrapped to 0 once, so empty arrays passed the indptr check and the
    constructor read indptr[rows] (found by AddressSanitizer)."""
    from compactnn import _core

    empty_u64 = np.zeros(0, np.uint64)
    with pytest.raises(ValueError, match=match):
        _core.hcsr(rows, 1, np.ones(1, np.float32), empty_u64, empty_u64, np.zeros(0, np.uint32))
