"""Every kernel set this CPU supports against the scalar reference, and thread counts."""
import numpy as np
import pytest

import compactnn as cn
from compactnn import _core
from helpers.convolution import conv_ref
from helpers.kernels import ISAS, compare_isas
from helpers.matrices import FORMATS, random_quantized

pytest.importorskip("hypothesis")  # an emulated platform without it skips this module
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = [pytest.mark.usefixtures("restore_isa"), pytest.mark.emulated]


# Shapes cover cols % 16 == 0 (the multi-row paths) and not, row counts that leave
# remainders after groups of 4, and sizes that build the one-lookup decode tables
# (HAM from 2^18 entries, HCSR from 16384 stored entries).
@pytest.mark.parametrize("shape", [(37, 64), (21, 70), (5, 1), (1, 300), (515, 512), (130, 2048)])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 11, 16, 17, 32, 40, 64, 65, 128, 256, 300])
def test_isas_agree(fmt, shape, k):
    rng = np.random.default_rng(k * 1000 + shape[0])
    W = random_quantized(rng, *shape, k, density=0.3 if fmt is cn.HCSR else 1.0, skew=0.2)
    compare_isas(fmt.from_dense(W), W, rng)


# Every index width with the whole codebook in use (from_dense keeps only the values that
# occur, which a skewed draw leaves below k), and column counts that are and are not
# multiples of 16, 32 and 64 (the byte-plane lookups need whole blocks of 32 or 64).
@pytest.mark.parametrize("k", [3, 9, 16, 17, 33, 64, 65, 100, 128, 129, 200, 256])
@pytest.mark.parametrize("shape", [(3, 64), (37, 128), (10, 192), (6, 1024), (7, 96), (5, 100)])
def test_isas_agree_full_codebooks(fmt, k, shape):
    rng = np.random.default_rng(k + shape[1])
    codebook = rng.standard_normal(k).astype(np.float32)
    idx = rng.integers(0, k, shape)
    m = fmt.from_codebook(codebook, idx)
    assert m.k == k or fmt is cn.HCSR
    compare_isas(m, codebook[idx], rng)


# Column counts of X around the register tiles' widths (16 AVX2, 64 AVX-512, 64 sparse,
# 256 per panel), rows around the tiles' 6 and linear's panels of 64.
@pytest.mark.parametrize("B", [2, 3, 15, 17, 49, 64, 65, 130, 1000])
@pytest.mark.parametrize("rows", [9, 130])
def test_isas_agree_wide_x(fmt, B, rows):
    rng = np.random.default_rng(B)
    W = random_quantized(rng, rows, 300, 16, density=0.3 if fmt is cn.HCSR else 1.0)
    compare_isas(fmt.from_dense(W), W, rng, B)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 70), m=st.integers(1, 200),
       k=st.sampled_from([1, 3, 8, 16, 30, 64, 200, 256, 1000]),
       density=st.sampled_from([0.05, 0.5, 1.0]), B=st.integers(1, 70))
def test_isas_agree_random(seed, n, m, k, density, B):
    rng = np.random.default_rng(seed)
    W = random_quantized(rng, n, m, k, density=density)
    for fmt in FORMATS:
        compare_isas(fmt.from_dense(W), W, rng, B)


def test_long_codes_on_every_isa():
    counts = 2 ** np.arange(20)
    values = np.repeat(np.arange(1, 21, dtype=np.float32), counts)
    np.random.default_rng(0).shuffle(values)
    W = np.zeros(1024 * 1024, np.float32)
    W[: values.size] = values
    W = W.reshape(1024, 1024)
    rng = np.random.default_rng(1)
    for fmt in (cn.HAM, cn.HCSR):
        compare_isas(fmt.from_dense(W), W, rng)


def test_hcsr_second_level_tables():
    """At 99% sparsity the joint (value, gap) alphabet is nearly flat and many codes are
    longer than the 12-bit table: their prefixes link to second-level tables."""
    rng = np.random.default_rng(11)
    W = random_quantized(rng, 4096, 4096, 32, density=0.01)
    m = cn.HCSR.from_dense(W).with_layout("rows")
    info = m.info()
    assert info["max_code_length"] > 12 and info["table_entries"] > 4096
    compare_isas(m, W, rng, B=9)
    assert cn.frombytes(m.tobytes()).info() == info


@pytest.mark.parametrize("isa", ISAS)
def test_threads_do_not_change_results(fmt, isa):
    _core.set_isa(isa)
    rng = np.random.default_rng(3)
    W = random_quantized(rng, 1030, 512, 32, density=0.2 if fmt is cn.HCSR else 1.0)
    m = fmt.from_dense(W)
    x = rng.standard_normal(512).astype(np.float32)
    X = rng.standard_normal((512, 33)).astype(np.float32)
    one = (m.dot(x, threads=1), m.dot(X, threads=1), m.linear(X.T, threads=1))
    for t in (2, 3, 7):
        many = (m.dot(x, threads=t), m.dot(X, threads=t), m.linear(X.T, threads=t))
        for a, b in zip(one, many):
            np.testing.assert_array_equal(a, b)


def test_cpu_info_and_isa_choice():
    import platform

    info = cn.cpu_info()
    machine = platform.machine()
    assert info["arch"] == {"AMD64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    assert info["isa"] in ISAS and "scalar" in info["supported"]
    x86 = info["arch"] in ("x86_64", "x86")
    sets = {"x86_64": "scalar, avx2, avx512", "x86": "scalar, avx2, avx512",
            "aarch64": "scalar, neon"}.get(info["arch"], "scalar")
    with pytest.raises(ValueError, match=f"unknown kernel set 'sse9': this {info['arch']} build has {sets}$"):
        _core.set_isa("sse9")
    for isa in ("avx2", "avx512"):
        if isa not in ISAS:
            with pytest.raises(ValueError, match="cannot run" if x86 else "unknown kernel set"):
                _core.set_isa(isa)


def test_isa_environment_variable():
    import subprocess
    import sys

    code = "import compactnn as cn; print(cn.cpu_info()['isa'])"
    out = subprocess.run([sys.executable, "-c", code], env={"COMPACTNN_ISA": "scalar", "PATH": ""},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "scalar"
    bad = subprocess.run([sys.executable, "-c", code], env={"COMPACTNN_ISA": "nope", "PATH": ""},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown kernel set 'nope'" in bad.stderr


def test_set_num_threads():
    before = cn.get_num_threads()
    try:
        cn.set_num_threads(1)
        assert cn.get_num_threads() == 1
        with pytest.raises(ValueError):
            cn.set_num_threads(-1)
    finally:
        cn.set_num_threads(before)


def test_concurrent_products_from_python_threads(fmt):
    """Products release the GIL and share nothing mutable: calls from several Python
    threads at once give the same results as one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(7)
    W = random_quantized(rng, 300, 256, 16, density=0.3 if fmt is cn.HCSR else 1.0)
    m = fmt.from_dense(W)
    xs = [rng.standard_normal(256).astype(np.float32) for _ in range(16)]
    expected = [m.dot(x, threads=1) for x in xs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x: m.dot(x, threads=2), xs))
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def _ieee_class(a):
    """0 finite, 1 NaN, +-2 +-inf: what IEEE arithmetic decides, independent of rounding."""
    return np.where(np.isnan(a), 1, np.where(np.isinf(a), 2 * np.sign(a), 0))


@pytest.mark.parametrize("shape", [(37, 300), (64, 2048)])
@pytest.mark.parametrize("fmt", FORMATS)
def test_inf_and_nan_in_x_follow_ieee(fmt, shape):
    """x holding inf, -inf and NaN: dense formats give numpy's dense results (0 * inf is
    NaN, so every row meets them); HCSR gives scipy.sparse's, as implicit zeros are not
    multiplied (the reference sums the stored entries only, with numpy alone, as this test
    also runs where scipy is absent).  Same on every kernel set, layout and thread count."""
    rng = np.random.default_rng(5)
    W = rng.choice(np.float32([0, 0, 0, -0.5, 0.25, 1.0]), size=shape)
    W[1] = 0  # a row of zeros: NaN in numpy, 0 in scipy.sparse
    W[2, :] = 0
    W[2, 3] = 1.0  # meets +inf only
    x = rng.standard_normal(shape[1]).astype(np.float32)
    x[3], x[10], x[20] = np.inf, -np.inf, np.nan
    X = np.stack([x, -x, np.where(np.isfinite(x), x, 0)], 1).astype(np.float32)
    with np.errstate(invalid="ignore"):
        if fmt is cn.HCSR:
            def stored(v):
                return np.where(W != 0, W * v, 0).sum(axis=1)

            ref, refX = stored(x), np.stack([stored(c) for c in X.T], 1)
        else:
            ref, refX = W @ x, W @ X
    m = fmt.from_dense(W)
    mats = [m] + ([m.with_layout(lay) for lay in ("rows", "lanes")] if fmt is not cn.IndexMap else [])
    for isa in ISAS:
        _core.set_isa(isa)
        for mat in mats:
            for threads in (1, 2):
                y, Y = mat.dot(x, threads=threads), mat.dot(X, threads=threads)
                L = mat.linear(X.T, threads=threads)
                np.testing.assert_array_equal(_ieee_class(y), _ieee_class(ref))
                np.testing.assert_array_equal(_ieee_class(Y), _ieee_class(refX))
                np.testing.assert_array_equal(_ieee_class(L), _ieee_class(refX.T))
                finite = _ieee_class(y) == 0
                np.testing.assert_allclose(y[finite], ref[finite], rtol=1e-5, atol=1e-5)


def test_native_linear_adds_the_bias_as_numpy_does():
    """The native linear (compactnn.torch's one call per layer) adds a bias after the
    product, the same bits as numpy's add; a bias of the wrong length is refused."""
    rng = np.random.default_rng(5)
    m = cn.IndexMap.from_dense(random_quantized(rng, 7, 40, 16))
    bias = rng.standard_normal(7).astype(np.float32)
    for batch in (0, 1, 3):
        X = rng.standard_normal((batch, 40)).astype(np.float32)
        Y = np.empty((batch, 7), np.float32)
        m._c.linear(X, Y, 1, bias)
        np.testing.assert_array_equal(Y, m.linear(X) + bias)
    with pytest.raises(ValueError, match="bias"):
        m._c.linear(X, Y, 1, bias[:6])


# Image widths around the vector widths of the patch copies (4, 8, 16 floats), with and
# without padding, unit stride (copied rows) and not; one image (output rows split between
# threads) and several (images split).
@pytest.mark.parametrize("width", [1, 3, 8, 9, 16, 17, 35])
@pytest.mark.parametrize("pad, stride", [((0, 0), (1, 1)), ((1, 2), (1, 1)), ((1, 0), (2, 1)),
                                         ((0, 1), (1, 2))])
@pytest.mark.parametrize("n", [1, 3])
def test_isas_agree_convolution(width, pad, stride, n):
    rng = np.random.default_rng(width * 10 + n)
    kh, kw = 3, min(3, width + 2 * pad[1])
    W = random_quantized(rng, 5, 2 * kh * kw, 16).reshape(5, 2, kh, kw)
    X = rng.standard_normal((n, 2, 6, width)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    want = conv_ref(X, W, bias, stride, pad, (1, 1))
    m = cn.IndexMap.from_dense(W.reshape(5, -1))
    for isa in ["scalar", *ISAS]:
        _core.set_isa(isa)
        Y = np.full(want.shape, np.nan, np.float32)
        m._c.conv2d(X, Y, (kh, kw), stride, pad, (1, 1), bias)
        np.testing.assert_allclose(Y, want, rtol=1e-5, atol=1e-5, err_msg=isa)
