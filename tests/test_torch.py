"""compactnn.torch: compressed layers against dense references, whole models, operators
under torch.compile and torch.export, sizes and the per-layer table.  Models are compressed
with objective="small", so that every layer is compact (test_objective.py tests "fast")."""
import copy
import io
import pickle

import numpy as np
import pytest
import torch
from torch import nn

import compactnn as cn
import compactnn.torch as cnt

torch.manual_seed(0)


def max_rel_error(y, ref, scale):
    """max |y - ref| / scale, where scale bounds the sum of |terms| (float64)."""
    return float(((y.double() - ref).abs() / (scale + 1e-30)).max()) if y.numel() else 0.0


def check_layer(layer, x):
    """A compressed layer's output equals its decoded dense layer's, to float32 rounding:
    the error is measured against float64 and relative to the sum of |terms|."""
    dense = cnt.decompress(layer).double()
    with torch.inference_mode():
        y = layer(x)
        ref = dense(x.double())
        absolute = copy.deepcopy(dense)
        absolute.weight.abs_()
        if absolute.bias is not None:
            absolute.bias.abs_()
        if getattr(absolute, "padding_mode", "zeros") == "zeros":
            scale = absolute(x.double().abs())
        else:  # padding copies input values, so bound them by the largest
            scale = absolute(torch.full_like(x.double(), float(x.abs().max())))
    assert y.dtype == torch.float32 and y.shape == ref.shape
    assert max_rel_error(y, ref, scale) < 1e-5


def compressed(layer, prune=0.5, k=16, fmt="auto"):
    return cnt.compress_model(layer, prune=prune, k=k, format=fmt, objective="small", progress=False)


CONVS = [
    dict(),
    dict(stride=2),
    dict(padding=2, dilation=2),
    dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    dict(padding="same"),
    dict(padding="same", dilation=2),
    dict(padding="valid"),
    dict(padding=1, padding_mode="reflect"),
    dict(padding=1, padding_mode="circular"),
    dict(padding=2, padding_mode="replicate", bias=False),
]


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("kw", CONVS, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_conv2d_matches_decoded_dense(kw, batch):
    layer = nn.Conv2d(5, 12, (3, 4), **kw)
    x = torch.randn(batch, 5, 11, 13)
    check_layer(compressed(layer), x)


@pytest.mark.parametrize("fmt", ["indexmap", "ham", "hcsr"])
@pytest.mark.parametrize("batch", [1, 3, 64])
def test_every_format_serves_conv_and_linear(fmt, batch):
    conv = compressed(nn.Conv2d(4, 6, 3, padding=1), fmt=fmt)
    assert type(conv.matrix).__name__.lower() == fmt
    check_layer(conv, torch.randn(batch, 4, 9, 9))
    lin = compressed(nn.Linear(40, 24), fmt=fmt)
    check_layer(lin, torch.randn(batch, 40))


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("kw", CONVS[:8], ids=str)
def test_conv1d_matches_decoded_dense(kw, batch):
    kw = {k: (v[0] if isinstance(v, tuple) else v) for k, v in kw.items()}
    layer = nn.Conv1d(6, 10, 5, **kw)
    check_layer(compressed(layer), torch.randn(batch, 6, 40))


@pytest.mark.parametrize("shape", [(40,), (1, 40), (64, 40), (2, 3, 40), (0, 40)])
def test_linear_matches_decoded_dense(shape):
    layer = compressed(nn.Linear(40, 24))
    check_layer(layer, torch.randn(*shape))


def test_unbatched_and_other_dtypes():
    conv = compressed(nn.Conv2d(3, 4, 3))
    x = torch.randn(3, 8, 8)
    with torch.no_grad():
        assert conv(x).shape == (4, 6, 6)
        assert torch.equal(conv(x), conv(x[None])[0])
        y64 = conv(x.double())
        assert y64.dtype == torch.float32 and torch.equal(y64, conv(x))
        assert conv(x.to(torch.bfloat16)).dtype == torch.float32
    conv1 = compressed(nn.Conv1d(3, 4, 3))
    with torch.no_grad():
        assert torch.equal(conv1(x[:, 0]), conv1(x[None, :, 0])[0])


def test_wrong_input_shapes_are_refused():
    lin = compressed(nn.Linear(40, 24))
    with pytest.raises(ValueError, match="40 features"):
        lin(torch.randn(2, 41))
    conv = compressed(nn.Conv2d(3, 4, 3))
    for shape in [(2, 5, 8, 8), (2, 3, 8), (3, 8), (1, 2, 3, 8, 8)]:
        with pytest.raises(ValueError, match=r"expects input of shape \(N, 3, ...\)"):
            conv(torch.randn(*shape))


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 10),
    ).eval()


@pytest.mark.parametrize("batch", [1, 64])
def test_whole_model_matches_decoded_dense(batch):
    model = small_cnn()
    small = cnt.compress_model(model, prune=0.6, k=8, objective="small", progress=False)
    assert sum(isinstance(m, cnt.CompressedModule) for m in small.modules()) == 4
    x = torch.randn(batch, 1, 16, 16)
    with torch.inference_mode():
        torch.testing.assert_close(small(x), cnt.decompress(small)(x), rtol=1e-5, atol=1e-5)
    # the original is untouched
    assert all(not isinstance(m, cnt.CompressedModule) for m in model.modules())


def test_compressed_layers_hold_no_dense_weight():
    small = cnt.compress_model(small_cnn(), prune=0.5, k=16, objective="small", progress=False)
    for mod in small.modules():
        if isinstance(mod, cnt.CompressedModule):
            size = int(np.prod(mod.weight_shape()))
            for t in list(mod.parameters()) + list(mod.buffers()):
                assert t.numel() < size
            assert not hasattr(mod, "weight")


def test_model_nbytes_counts_everything_once():
    model = small_cnn()
    dense_bytes = sum(t.numel() * t.element_size()
                      for t in list(model.parameters()) + list(model.buffers()))
    assert cnt.model_nbytes(model) == dense_bytes
    small = cnt.compress_model(model, prune=0.5, k=16, objective="small", progress=False)
    expected = 0
    for mod in small.modules():
        if isinstance(mod, cnt.CompressedModule):
            expected += mod.matrix.nbytes
    expected += sum(t.numel() * t.element_size()
                    for t in list(small.parameters()) + list(small.buffers()))
    assert cnt.model_nbytes(small) == expected < dense_bytes / 4


def test_shared_module_is_compressed_everywhere_and_counted_once():
    shared = nn.Linear(16, 16)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    small = cnt.compress_model(model, k=8, objective="small", progress=False)
    assert small[0] is small[2] and isinstance(small[0], cnt.CompressedLinear)
    assert cnt.model_nbytes(small) == small[0].matrix.nbytes + 16 * 4


def test_summary_table():
    small = cnt.compress_model(small_cnn(), prune=0.5, k=16, objective="small", progress=False,
                               layers={"7": "dense"})
    out = io.StringIO()
    rows = cnt.summary(small, file=out)
    text = out.getvalue()
    assert [r.name for r in rows] == ["0", "4", "7", "10"]
    assert rows[2].format == "dense" and rows[2].nbytes == 32 * 256 * 4
    assert rows[0].format in ("IndexMap", "HAM", "HCSR") and rows[0].k <= 16
    assert rows[1].density == pytest.approx(0.5, abs=0.01)
    for r in rows:
        assert f"| {r.name} |" in text
    whole = text.splitlines()[-1]
    assert whole.startswith("| whole model |") and f"{cnt.model_nbytes(small):,}" in whole


def test_layer_settings():
    model = small_cnn()
    small = cnt.compress_model(
        model, prune=0.5, k=16, objective="small", progress=False,
        layers={"0": "dense", "4": {"k": 4, "format": "ham"}, "10": {"prune": 0.0}})
    assert type(small[0]) is nn.Conv2d
    assert isinstance(small[4].matrix, cn.HAM) and small[4].matrix.k <= 4
    assert small[10].matrix.nnz == 320
    by_kind = cnt.compress_model(model, k=16, objective="small", progress=False,
                                 layers=lambda name, mod: "dense" if isinstance(mod, nn.Conv2d)
                                 else None)
    assert [type(m).__name__ for m in by_kind if hasattr(m, "weight") or
            isinstance(m, cnt.CompressedModule)][:2] == ["Conv2d", "BatchNorm2d"]
    assert isinstance(by_kind[7], cnt.CompressedLinear)


def test_global_pruning_uses_one_threshold():
    model = small_cnn()
    small = cnt.compress_model(model, prune=0.8, prune_scope="global", k=16, objective="small",
                               progress=False)
    mats = [m.matrix for m in small.modules() if isinstance(m, cnt.CompressedModule)]
    total = sum(m.size for m in mats)
    assert sum(m.nnz for m in mats) == pytest.approx(0.2 * total, abs=2)
    densities = sorted(m.nnz / m.size for m in mats)
    assert densities[0] < 0.15 < 0.3 < densities[-1]  # layers differ, unlike per-layer pruning
    kept = min(float(np.abs(m.to_dense()[m.to_dense() != 0]).min()) for m in mats)
    assert kept > 0


@pytest.mark.parametrize("kw, message", [
    (dict(k=1), "k must be"), (dict(prune=1.5), "prune must be"),
    (dict(quantize="nope"), "quantize must be"), (dict(format="csr"), "format must be"),
    (dict(prune_scope="model"), "prune_scope"),
    (dict(layers={"nope": "dense"}), "not compressible layers"),
    (dict(layers={"0": {"k": 0}}), "layer '0': k must be"),
    (dict(layers={"0": 3}), "settings must be"),
])
def test_bad_settings_are_refused(kw, message):
    with pytest.raises((ValueError, TypeError), match=message):
        cnt.compress_model(small_cnn(), progress=False, **kw)


def test_not_a_model_is_refused():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        cnt.compress_model(np.zeros((3, 3)))


def test_grouped_convolution_stays_dense():
    model = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2), nn.Conv2d(8, 8, 1))
    small = cnt.compress_model(model, objective="small", progress=False)
    assert type(small[0]) is nn.Conv2d and isinstance(small[1], cnt.CompressedConv2d)
    assert [r.format for r in cnt.summary(small, file=io.StringIO())] == ["dense", small[1].matrix.__class__.__name__]


def test_compile_and_export_see_one_operator_per_layer():
    small = cnt.compress_model(small_cnn(), prune=0.5, k=16, objective="small", progress=False)
    x = torch.randn(2, 1, 16, 16)
    graphs = []

    def backend(gm, inputs):
        graphs.append(gm)
        return gm.forward

    with torch.no_grad():
        expected = small(x)
        torch.testing.assert_close(torch.compile(small, backend=backend, fullgraph=True)(x),
                                   expected, rtol=0, atol=0)
        torch.testing.assert_close(torch.compile(small, backend="aot_eager")(x), expected,
                                   rtol=0, atol=0)
    ours = [str(n.target) for n in graphs[0].graph.nodes if "compactnn" in str(n.target)]
    assert len(ours) == 4
    exported = torch.export.export(small, (x,))
    targets = [str(n.target) for n in exported.graph.nodes if n.op == "call_function"]
    assert targets.count("compactnn.conv2d.default") == 2
    assert targets.count("compactnn.linear.default") == 2
    torch.testing.assert_close(exported.module()(x), expected, rtol=0, atol=0)


def test_no_grad_modes_agree_and_gradients_are_refused():
    small = cnt.compress_model(small_cnn(), prune=0.5, k=16, objective="small", progress=False)
    x = torch.randn(3, 1, 16, 16)
    with torch.inference_mode():
        a = small(x)
    with torch.no_grad():
        b = small(x)
    assert torch.equal(a, b) and torch.equal(small(x), a)
    xg = x.clone().requires_grad_(True)
    with pytest.raises(RuntimeError, match="finetune"):
        small(xg).sum().backward()


def test_copies_share_the_matrix_and_pickle_rebuilds_it():
    small = cnt.compress_model(small_cnn(), prune=0.5, k=16, objective="small", progress=False)
    x = torch.randn(2, 1, 16, 16)
    twin = copy.deepcopy(small)
    assert twin[0].matrix is small[0].matrix
    again = pickle.loads(pickle.dumps(small))
    del small
    with torch.no_grad():
        torch.testing.assert_close(again(x), twin(x), rtol=0, atol=0)


def test_state_dict_carries_the_matrices():
    small = cnt.compress_model(small_cnn(), prune=0.5, k=16, objective="small", progress=False)
    buf = io.BytesIO()
    torch.save(small.state_dict(), buf)
    other = cnt.compress_model(small_cnn(), prune=0.2, k=4, objective="small", progress=False)
    other.load_state_dict(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(other(x), small(x), rtol=0, atol=0)
    assert other[0].matrix.nbytes == small[0].matrix.nbytes


def test_deleted_module_handle_is_a_clear_error():
    from compactnn.torch import ops

    h = ops.register(cn.IndexMap.from_dense(np.ones((2, 2), np.float32)))
    with pytest.raises(RuntimeError, match="no longer exists"):
        torch.ops.compactnn.linear(torch.ones(1, 2), h, 2, None)


def test_bad_state_dict_matrix_is_refused():
    small = compressed(nn.Linear(64, 32))  # big enough to be compressed
    state = small.state_dict()
    for bad in (torch.zeros(3), "matrix", torch.zeros(5, dtype=torch.uint8)):
        with pytest.raises(ValueError):
            small.load_state_dict({**state, "_extra_state": bad})
