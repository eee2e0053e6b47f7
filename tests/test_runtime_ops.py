"""The runtime's ops against numpy references, from graphs written by hand: numpy alone
(no framework), so that the sanitizer builds and the emulated kernel sets run them too."""
import numpy as np
import pytest

import compactnn as cn
from compactnn import _core
import compactnn.runtime as runtime
from compactnn.model import file_format
from helpers.convolution import conv_ref

pytestmark = pytest.mark.emulated


def run(tmp_path, nodes, inputs, tensors=None, matrices=None, output=None):
    """The graph of `nodes` on `inputs` ({name: array}), run by the runtime."""
    graph = dict(inputs=[dict(name=k, shape=[None, *v.shape[1:]],
                              dtype="int64" if v.dtype.kind in "iu" else "float32")
                         for k, v in inputs.items()],
                 outputs=[output or nodes[-1]["name"]],
                 nodes=[dict(dict.fromkeys(runtime.graph.OPS[n["op"]]), module="", **n)
                        for n in nodes])
    path = tmp_path / "g.cnnm"
    file_format.write(path, dict(framework="runtime-test", graph=graph), matrices or {},
                      tensors or {})
    rt = runtime.load(path)
    xs = list(inputs.values())
    return rt(xs if len(xs) > 1 else xs[0])


@pytest.mark.parametrize("compressed", [False, True])
def test_conv_linear_relu_chain(tmp_path, compressed):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 7, 6)).astype(np.float32)
    w = rng.choice(np.float32([-1, -0.5, 0, 0.25, 1]), (4, 2, 3, 2))
    b = rng.standard_normal(4).astype(np.float32)
    fc = rng.choice(np.float32([-2, 0, 0.5, 3]), (5, 4 * 5 * 6))
    tensors = dict(b=b, fcb=np.zeros(5, np.float32))
    matrices = {}
    if compressed:
        matrices = dict(w=cn.HCSR.from_dense(w.reshape(4, -1)), fc=cn.IndexMap.from_dense(fc))
        conv_w, fc_w = dict(matrix="w"), dict(matrix="fc")
    else:
        tensors.update(w=w, fc=fc)
        conv_w, fc_w = dict(weight="w"), dict(weight="fc")
    nodes = [dict(name="c", op="conv2d", inputs=["x"], bias="b", kernel=[3, 2], stride=[2, 1],
                  padding=[2, 1], dilation=[1, 2], dims=2, **conv_w),
             dict(name="r", op="relu", inputs=["c"]),
             dict(name="f", op="flatten", inputs=["r"], start=1, end=-1),
             dict(name="y", op="linear", inputs=["f"], bias="fcb", **fc_w)]
    got = run(tmp_path, nodes, dict(x=x), tensors, matrices)
    c = np.maximum(conv_ref(x, w, b, (2, 1), (2, 1), (1, 2)), 0)
    assert c.shape == (3, 4, 5, 6)
    np.testing.assert_allclose(got, c.reshape(3, -1) @ fc.T, rtol=1e-5, atol=1e-5)



@pytest.mark.parametrize("form", ["dense", "indexmap", "hcsr"])
@pytest.mark.parametrize("channels, kernel, pad", [(32, 3, 1), (256, 1, 0)])
def test_one_image_split_in_bands_between_threads(tmp_path, form, channels, kernel, pad):
    # Enough work that one image's output rows are split in bands, one a thread (15 rows:
    # uneven bands for 2 and 4 threads); a 1x1 convolution multiplies the image itself.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, channels, 15, 13)).astype(np.float32)
    w = rng.choice(np.float32([-1, -0.5, 0, 0.25, 1]), (64, channels, kernel, kernel))
    b = rng.standard_normal(64).astype(np.float32)
    tensors, matrices, weight = dict(b=b), {}, dict(matrix="w")
    if form == "dense":
        tensors["w"], weight = w, dict(weight="w")
    else:
        fmt = cn.IndexMap if form == "indexmap" else cn.HCSR
        matrices["w"] = fmt.from_dense(w.reshape(64, -1))
    graph = dict(inputs=[dict(name="x", shape=[None, channels, 15, 13], dtype="float32")],
                 outputs=["c"],
                 nodes=[dict(name="c", op="conv2d", inputs=["x"], module="", bias="b",
                             kernel=[kernel] * 2, stride=[1, 1], padding=[pad] * 2,
                             dilation=[1, 1], dims=2, **dict(dict(matrix=None, weight=None),
                                                             **weight))])
    path = tmp_path / "g.cnnm"
    file_format.write(path, dict(framework="runtime-test", graph=graph), matrices, tensors)
    rt = runtime.load(path, forms="stored")
    want = conv_ref(x, w, b, (1, 1), (pad, pad), (1, 1))
    for threads in (1, 2, 4):
        np.testing.assert_allclose(rt(x, threads=threads), want, rtol=1e-5, atol=1e-4,
                                   err_msg=f"{threads} threads")


@pytest.mark.usefixtures("restore_isa")
@pytest.mark.parametrize("isa", ["scalar", *_core.supported_isas()])
@pytest.mark.parametrize("batch", [1, 4])
def test_relu_fused_only_into_a_sole_reader(tmp_path, batch, isa):
    """A relu is done by the linear or convolution before it (by the dense kernels of every
    set, tile by tile) when it is that output's only reader; where the output is read again
    (the residual add here), it is not."""
    _core.set_isa(isa)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((batch, 3, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 3, 3, 3)).astype(np.float32)
    fc = rng.standard_normal((6, 75)).astype(np.float32)
    tensors = dict(w=w, fc=fc, b=rng.standard_normal(3).astype(np.float32))
    nodes = [dict(name="c", op="conv2d", inputs=["x"], weight="w", bias="b", kernel=[3, 3],
                  stride=[1, 1], padding=[1, 1], dilation=[1, 1], dims=2),
             dict(name="r", op="relu", inputs=["c"]),
             dict(name="s", op="add", inputs=["r", "c"]),  # c read twice: not fused
             dict(name="c2", op="conv2d", inputs=["s"], weight="w", kernel=[3, 3],
                  stride=[1, 1], padding=[1, 1], dilation=[1, 1], dims=2),
             dict(name="r2", op="relu", inputs=["c2"]),  # fused
             dict(name="f", op="flatten", inputs=["r2"], start=1, end=-1),
             dict(name="l", op="linear", inputs=["f"], weight="fc"),
             dict(name="y", op="relu", inputs=["l"])]  # fused, and the graph's output
    got = run(tmp_path, nodes, dict(x=x), tensors)
    c = conv_ref(x, w, tensors["b"], (1, 1), (1, 1), (1, 1))
    c2 = np.maximum(conv_ref(np.maximum(c, 0) + c, w, np.zeros(3), (1, 1), (1, 1), (1, 1)), 0)
    want = np.maximum(c2.reshape(batch, -1) @ fc.T, 0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    plan = runtime.load(tmp_path / "g.cnnm")._plan(batch)[0]
    off = plan.offsets
    assert off["r"] != off["c"] and off["r2"] == off["c2"] and off["y"] == off["l"]
    # NaN goes through a fused relu as through torch.relu
    x[0, 0, 2, 2] = np.nan
    assert np.isnan(run(tmp_path, nodes, dict(x=x), tensors)[0]).all()

@pytest.mark.usefixtures("restore_isa")
@pytest.mark.parametrize("isa", ["scalar", *_core.supported_isas()])
@pytest.mark.parametrize("form", ["dense", "indexmap"])
@pytest.mark.parametrize("batch, size", [(1, (8, 6)), (1, (15, 13)), (4, (7, 9))])
def test_max_pooling_fused_into_the_convolution_before(tmp_path, form, batch, size, isa):
    """A 2x2 max pool of stride 2 right after a convolution (and its relu) that nothing else
    reads is done by the convolution, image by image (odd sizes: the last row and column
    left out; 32 x 15 x 13: one image split in bands); where the output is read twice, or
    the pool is not 2x2 of stride 2, the pool is a step of its own.  Every kernel set."""
    _core.set_isa(isa)
    rng = np.random.default_rng(4)
    c_in = 32 if size == (15, 13) else 3
    x = rng.standard_normal((batch, c_in, *size)).astype(np.float32)
    x[0, :, :4, :4] = np.nan  # kept by the relu and the pools, as torch does
    w1 = rng.choice(np.float32([-1, -0.5, 0, 0.25, 1]), (16, c_in, 3, 3))
    w2 = rng.choice(np.float32([-1, -0.5, 0, 0.25, 1]), (16, 16, 3, 3))
    b = rng.standard_normal(16).astype(np.float32)
    tensors, matrices = dict(b=b), {}
    if form == "dense":
        tensors.update(w1=w1, w2=w2)
        weights = [dict(weight="w1"), dict(weight="w2")]
    else:
        matrices = dict(w1=cn.IndexMap.from_dense(w1.reshape(16, -1)),
                        w2=cn.IndexMap.from_dense(w2.reshape(16, -1)))
        weights = [dict(matrix="w1"), dict(matrix="w2")]
    conv = dict(op="conv2d", kernel=[3, 3], stride=[1, 1], padding=[1, 1], dilation=[1, 1],
                dims=2)
    pool = dict(op="max_pool2d", kernel=[2, 2], stride=[2, 2], padding=[0, 0],
                dilation=[1, 1], ceil_mode=False)
    c = lambda x, w, b: conv_ref(x, w, b, (1, 1), (1, 1), (1, 1))
    p = lambda x, s=(2, 2): pool_ref(x, (2, 2), s, (0, 0), False, "max")
    fusable = [dict(name="c1", inputs=["x"], bias="b", **conv, **weights[0]),
               dict(name="r1", op="relu", inputs=["c1"]),
               dict(name="p1", inputs=["r1"], **pool),  # with the relu
               dict(name="c2", inputs=["p1"], bias=None, **conv, **weights[1]),
               dict(name="p2", inputs=["c2"], **pool)]  # without
    got = run(tmp_path, fusable, dict(x=x), tensors, matrices)
    want = p(c(p(np.maximum(c(x, w1, b), 0)), w2, np.zeros(16)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    assert np.isnan(got[0]).any() and not np.isnan(got[1:]).any()
    offsets = runtime.load(tmp_path / "g.cnnm")._plan(batch)[0].offsets
    assert "c1" not in offsets and "c2" not in offsets  # never stored
    separate = [*fusable[:3], dict(name="q1", inputs=["r1"], **pool),  # r1 read twice
                dict(name="s", op="add", inputs=["p1", "q1"]),
                dict(name="c2", inputs=["s"], bias=None, **conv, **weights[1]),
                dict(name="p2", inputs=["c2"], **{**pool, "stride": [1, 1]})]
    got = run(tmp_path, separate, dict(x=x), tensors, matrices)
    want = p(c(2 * p(np.maximum(c(x, w1, b), 0)), w2, np.zeros(16)), (1, 1))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    offsets = runtime.load(tmp_path / "g.cnnm")._plan(batch)[0].offsets
    assert "c1" in offsets and "c2" in offsets
    # Two branches, each conv -> relu -> pool, in an order where a pool's relu does not
    # follow its own convolution: neither pool is fused, and the results stay right.
    w3 = np.resize(w2, (16, c_in, 3, 3))
    if form == "dense":
        tensors["w3"] = w3
    else:
        matrices["w3"] = cn.IndexMap.from_dense(w3.reshape(16, -1))
    other = dict(weight="w3") if form == "dense" else dict(matrix="w3")
    branches = [dict(name="a", inputs=["x"], bias="b", **conv, **weights[0]),
                dict(name="b2", inputs=["x"], bias=None, **conv, **other),
                dict(name="ra", op="relu", inputs=["a"]), dict(name="pa", inputs=["ra"], **pool),
                dict(name="rb", op="relu", inputs=["b2"]), dict(name="pb", inputs=["rb"], **pool),
                dict(name="s", op="add", inputs=["pa", "pb"])]
    got = run(tmp_path, branches, dict(x=x), tensors, matrices)
    want = p(np.maximum(c(x, w1, b), 0)) + p(np.maximum(c(x, w3, np.zeros(16)), 0))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    offsets = runtime.load(tmp_path / "g.cnnm")._plan(batch)[0].offsets
    assert "a" in offsets and "b2" in offsets


def pool_ref(x, k, s, p, ceil, kind, count_pad=True, divisor=None, dil=(1, 1)):
    n, c, h, w = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (p[0],) * 2, (p[1],) * 2],
                constant_values=fill)
    size = []
    for i, d in enumerate((h, w)):
        span = dil[i] * (k[i] - 1) + 1
        out = (d + 2 * p[i] - span + (s[i] - 1 if ceil else 0)) // s[i] + 1
        if ceil and (out - 1) * s[i] >= d + p[i]:
            out -= 1
        size.append(out)
    y = np.zeros((n, c, *size))
    for oy in range(size[0]):
        for ox in range(size[1]):
            y0, x0 = oy * s[0], ox * s[1]
            win = xp[:, :, y0:y0 + dil[0] * (k[0] - 1) + 1:dil[0],
                     x0:x0 + dil[1] * (k[1] - 1) + 1:dil[1]]
            if kind == "max":
                y[:, :, oy, ox] = win.max((2, 3))
                continue
            # the window within the padded input (count_include_pad) or within the input
            hy, hx = min(y0 + k[0], h + 2 * p[0]) - y0, min(x0 + k[1], w + 2 * p[1]) - x0
            inside = np.zeros(xp.shape[2:], bool)
            inside[p[0]:p[0] + h, p[1]:p[1] + w] = True
            valid = inside[y0:y0 + k[0], x0:x0 + k[1]].sum()
            count = divisor or (hy * hx if count_pad else valid)
            y[:, :, oy, ox] = win.sum((2, 3)) / count
    return y


@pytest.mark.parametrize("kind, k, s, p, ceil, extra", [
    ("max", (2, 2), (2, 2), (0, 0), False, {}),
    ("max", (3, 2), (2, 1), (1, 1), True, {}),
    ("max", (2, 2), (1, 2), (0, 1), False, dict(dil=(2, 1))),
    ("avg", (2, 2), (2, 2), (0, 0), False, {}),
    ("avg", (3, 3), (2, 2), (1, 1), True, dict(count_pad=False)),
    ("avg", (3, 2), (1, 2), (1, 0), False, dict(divisor=5)),
])
def test_pooling(tmp_path, kind, k, s, p, ceil, extra):
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 6)).astype(np.float32)
    node = dict(name="y", op=f"{kind}_pool2d", inputs=["x"], kernel=list(k), stride=list(s),
                padding=list(p), ceil_mode=ceil)
    if kind == "max":
        node["dilation"] = list(extra.get("dil", (1, 1)))
    else:
        node.update(count_include_pad=extra.get("count_pad", True), divisor=extra.get("divisor"))
    got = run(tmp_path, [node], dict(x=x))
    want = pool_ref(x, k, s, p, ceil, kind, extra.get("count_pad", True), extra.get("divisor"),
                    extra.get("dil", (1, 1)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.usefixtures("restore_isa")
@pytest.mark.parametrize("isa", ["scalar", *_core.supported_isas()])
def test_2x2_max_pooling_every_width_on_every_set(tmp_path, isa):
    """The 2x2 stride-2 max pool (a kernel of each set) on widths around the vector widths,
    odd sizes (the last row and column left out), NaN in either column or row of a window,
    and ties of -0.0 and +0.0 (the first of the window wins, as in torch): the same bits as
    a plain loop in window order."""
    _core.set_isa(isa)
    rng = np.random.default_rng(5)
    for w in [2, 3, 7, 8, 9, 15, 16, 17, 28, 31, 32, 33, 34, 47, 64, 65]:
        x = rng.standard_normal((2, 3, 5, w)).astype(np.float32)
        x[0, 0, 0, 1] = x[1, 2, 3, 0] = np.nan
        x[0, 1, :2, :2] = [[-0.0, 0.0], [0.0, -0.0]]
        x[1, 1, :2, :2] = [[0.0, -0.0], [-0.0, 0.0]]
        got = run(tmp_path, [dict(name="y", op="max_pool2d", inputs=["x"], kernel=[2, 2],
                                  stride=[2, 2], padding=[0, 0], dilation=[1, 1],
                                  ceil_mode=False)], dict(x=x))
        want = np.empty((2, 3, 2, w // 2), np.float32)
        for idx in np.ndindex(want.shape):
            n, c, oy, ox = idx
            win = x[n, c, 2 * oy:2 * oy + 2, 2 * ox:2 * ox + 2].reshape(-1)
            m = win[0]
            for v in win[1:]:  # torch's order: a later value wins if larger or NaN
                m = v if (v > m or np.isnan(v)) else m
            want[idx] = m
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32),
                                      err_msg=f"{isa}, width {w}")


def test_max_pooling_propagates_nan(tmp_path):
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = np.nan
    got = run(tmp_path, [dict(name="y", op="max_pool2d", inputs=["x"], kernel=[2, 2],
                              stride=[2, 2], padding=[0, 0], dilation=[1, 1], ceil_mode=False)],
              dict(x=x))
    assert np.isnan(got[0, 0, 0, 0]) and not np.isnan(got[0, 0, 1:, 1:]).any()


def test_elementwise_views_and_reductions(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    v = rng.standard_normal((1, 3, 5)).astype(np.float32)
    table = rng.standard_normal((6, 2)).astype(np.float32)
    idx = rng.integers(0, 6, (2, 4))
    nodes = [
        dict(name="p", op="permute", inputs=["x"], perm=[0, 2, 1, 3]),          # (2, 4, 3, 5)
        dict(name="m", op="mul", inputs=["p"], constant="v"),                   # broadcast
        dict(name="a", op="add", inputs=["m"], scalar=0.5),
        dict(name="mx", op="reduce", inputs=["a"], kind="max", dims=[2, 3], keepdim=False),
        dict(name="mn", op="reduce", inputs=["a"], kind="mean", dims=[3], keepdim=True),
        dict(name="sq", op="squeeze", inputs=["mn"], dims=[3]),                 # (2, 4, 3)
        dict(name="e", op="embedding", inputs=["i"], weight="t"),               # (2, 4, 2)
        dict(name="c", op="cat", inputs=["sq", "e"], dim=2),                    # (2, 4, 5)
        dict(name="s", op="softmax", inputs=["c"], dim=1),
        dict(name="g", op="gelu", inputs=["s"], approximate="tanh"),
        dict(name="u", op="unsqueeze", inputs=["mx"], dim=2),                   # (2, 4, 1)
        dict(name="y", op="add", inputs=["g", "u"]),
    ]
    got = run(tmp_path, nodes, dict(x=x, i=idx), dict(v=v, t=table))
    a = x.transpose(0, 2, 1, 3) * v + 0.5
    c = np.concatenate([a.mean(3), table[idx]], axis=2).astype(np.float64)
    s = np.exp(c - c.max(1, keepdims=True))
    s /= s.sum(1, keepdims=True)
    g = 0.5 * s * (1 + np.tanh(np.sqrt(2 / np.pi) * (s + 0.044715 * s ** 3)))
    np.testing.assert_allclose(got, g + a.max((2, 3))[:, :, None], rtol=1e-5, atol=1e-6)


def test_a_bad_index_is_an_error(tmp_path):
    table = np.ones((3, 2), np.float32)
    node = dict(name="e", op="embedding", inputs=["i"], weight="t")
    with pytest.raises(ValueError, match="index 3 is not a row of the 3-row table"):
        run(tmp_path, [node], dict(i=np.array([[0, 3]])), dict(t=table))


def test_the_core_checks_fused_steps():
    relu = (3, [0], 4, [4], None, None, None, False)  # a relu over 4 floats
    _core.Program([(*relu, False)], 8)
    with pytest.raises(ValueError, match="only a convolution step takes a fused pooling"):
        _core.Program([(*relu, True)], 8)
    conv = (2, [0], 9, [1, 1, 3, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1], None,
            np.ones(9, np.float32), None, False, True)  # 3x3 image, 3x3 kernel: 1x1 out
    with pytest.raises(ValueError, match="too small to pool"):
        _core.Program([conv], 16)
