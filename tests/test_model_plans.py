"""Per-layer plans shared by the adapters: a layer whose compact form would not be smaller
than its float32 weights stays dense, unchanged, in PyTorch and in Keras, and the summary
says why."""
import io

import numpy as np

from compactnn.model.plan import Layer, Plan, compress_layers, kept_dense, plans_for
from compactnn.model.summary import KEPT_DENSE


def test_a_layer_that_would_grow_is_left_out():
    rng = np.random.default_rng(0)
    tiny = Layer("tiny", "Conv2d", None, rng.standard_normal((2, 9)).astype(np.float32))
    big = Layer("big", "Linear", None, rng.standard_normal((64, 256)).astype(np.float32))
    plans = plans_for([tiny, big], Plan(prune=0.5, k=16), None)
    out = compress_layers([tiny, big], plans, "global")
    assert set(out) == {"big"} and out["big"].nbytes < out["big"].nbytes_dense
    assert kept_dense(plans, out) == ["tiny"]


def test_torch_keeps_a_tiny_layer_dense():
    import torch
    from torch import nn

    import compactnn.torch as cnt

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2 * 6 * 6, 64)).eval()
    small = cnt.compress_model(model, prune=0.5, k=16, progress=False)
    assert type(small[0]) is nn.Conv2d and isinstance(small[3], cnt.CompressedLinear)
    assert torch.equal(small[0].weight, model[0].weight)
    out = io.StringIO()
    rows = cnt.summary(small, file=out)
    assert [r.format for r in rows] == [KEPT_DENSE, small[3].matrix.__class__.__name__]
    assert f"| 0 | Conv2d | 2x1x3x3 | {KEPT_DENSE} |" in out.getvalue()
    layers = cnt.compress_model(model, prune=0.5, k=16, layers={"0": "dense"}, progress=False)
    assert cnt.summary(layers, file=io.StringIO())[0].format == "dense"


def test_keras_keeps_a_tiny_layer_dense():
    import keras

    import compactnn.keras as cnk

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3),
                              keras.layers.Flatten(), keras.layers.Dense(64)])
    small = cnk.compress_model(model, prune=0.5, k=16, progress=False)
    conv = small.layers[0]
    assert type(conv) is keras.layers.Conv2D
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(conv.kernel),
                                  keras.ops.convert_to_numpy(model.layers[0].kernel))
    rows = cnk.summary(small, file=io.StringIO())
    assert rows[0].format == KEPT_DENSE and rows[1].format != "dense"
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 1)).astype(np.float32)
    assert keras.ops.convert_to_numpy(small(x)).shape == (2, 64)
