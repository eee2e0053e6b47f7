"""compactnn.keras.finetune: the training stand-ins compute what the compressed layers do,
codebook retraining keeps every index map and zero, weight retraining quantizes again in
the layer's format, the model learns, nothing changes when training fails, and bad
settings are named.  Runs on the backend conftest (or KERAS_BACKEND) chose."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
import compactnn.keras as cnk  # noqa: E402
from compactnn.keras.finetune import _training_copy  # noqa: E402
from compactnn.evaluation.datasets import digits_8x8  # noqa: E402
from compactnn.matrix.formats import form_name  # noqa: E402


def conv_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(6, 3, padding="same", activation="relu"),
        keras.layers.BatchNormalization(), keras.layers.Conv2D(8, 3, strides=2),
        keras.layers.Flatten(), keras.layers.Dense(24, activation="relu"),
        keras.layers.Dense(10)])


def data(n=600):
    """scikit-learn's 8x8 digits (its first n)."""
    X, y = digits_8x8()
    return X[:n, :, :, None].astype(np.float32), y[:n]


def compressed(model, **kw):
    return cnk.compress_model(model, progress=False,
                              **{"prune": 0.5, "k": 8, "objective": "small", **kw})


def outputs(model, X):
    return keras.ops.convert_to_numpy(model(X, training=False))


def accuracy(model, X, y):
    return float((outputs(model, X).argmax(1) == y).mean())


def compact(model):
    return {layer.name: layer for layer in model.layers
            if isinstance(layer, (cnk.CompressedDense, cnk.CompressedConv1D,
                                  cnk.CompressedConv2D))}


LAYERS = [
    lambda: keras.layers.Conv2D(5, 3, strides=(2, 1), padding="same", activation="relu"),
    lambda: keras.layers.Conv2D(5, (2, 3), dilation_rate=2, use_bias=False),
    lambda: keras.layers.Conv2D(5, 3, data_format="channels_first"),
]


@pytest.mark.parametrize("retrain", ["codebook", "weights"])
@pytest.mark.parametrize("make", range(len(LAYERS)))
def test_stand_ins_compute_what_the_compressed_layers_do(make, retrain):
    keras.utils.set_random_seed(make)
    model = keras.Sequential([keras.Input((7, 9, 4)), LAYERS[make](), keras.layers.Flatten(),
                              keras.layers.Dense(6, activation="tanh")])
    small = compressed(model)
    X = np.random.default_rng(1).standard_normal((3, 7, 9, 4)).astype(np.float32)
    want = outputs(small, X)
    got = outputs(_training_copy(small, retrain), X)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("kw", [dict(padding="causal"), dict(strides=2, padding="same"),
                                dict(data_format="channels_first", dilation_rate=2)], ids=str)
def test_conv1d_stand_ins(kw):
    keras.utils.set_random_seed(0)
    shape = (3, 12) if kw.get("data_format") == "channels_first" else (12, 3)
    model = keras.Sequential([keras.Input(shape), keras.layers.Conv1D(4, 3, **kw),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    small = compressed(model)
    X = np.random.default_rng(2).standard_normal((5, *shape)).astype(np.float32)
    want = outputs(small, X)
    np.testing.assert_allclose(outputs(_training_copy(small, "codebook"), X), want,
                               rtol=1e-4, atol=1e-5 * np.abs(want).max())


def test_codebook_retraining_keeps_index_maps_and_zeros_and_learns():
    X, y = data()
    model = conv_model()
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(X, y, batch_size=64, epochs=10, verbose=0)
    small = compressed(model, prune=0.7, k=4)  # costs accuracy (0.96 -> 0.69 on torch)
    before = {name: layer.matrix for name, layer in compact(small).items()}
    acc0 = accuracy(small, X, y)
    out = cnk.finetune(small, (X, y), epochs=5, lr=3e-3, progress=False)
    assert out is small
    changed = 0
    for name, layer in compact(small).items():
        old, new = before[name], layer.matrix
        assert form_name(new) == form_name(old) and new.shape == old.shape
        (cb0, idx0), (cb1, idx1) = old.to_codebook(), new.to_codebook()
        np.testing.assert_array_equal(idx1, idx0)            # the index map stays fixed
        np.testing.assert_array_equal(cb1[cb0 == 0], 0.0)     # pruned weights stay zero
        changed += int(np.any(cb1 != cb0))
    assert changed == len(before)
    assert accuracy(small, X, y) > acc0 + 0.03


def test_weight_retraining_quantizes_again_in_the_format():
    X, y = data()
    small = compressed(conv_model(), k=4)
    before = {name: layer.matrix for name, layer in compact(small).items()}
    cnk.finetune(small, (X, y), epochs=2, retrain="weights", optimizer="sgd",
                 schedule="constant", progress=False)
    for name, layer in compact(small).items():
        old, new = before[name], layer.matrix
        assert form_name(new) == form_name(old)
        assert new.k <= 4
        dense0, dense1 = old.to_dense(), new.to_dense()
        assert np.all(dense1[dense0 == 0] == 0)  # trained under the pruning mask
        assert not np.array_equal(dense1, dense0)


def test_other_variables_train_and_come_back():
    X, y = data()
    small = compressed(conv_model())
    norm = next(layer for layer in small.layers
                if isinstance(layer, keras.layers.BatchNormalization))
    stats = [w.copy() for w in norm.get_weights()]
    last = list(compact(small).values())[-1]
    bias = keras.ops.convert_to_numpy(last.bias).copy()
    cnk.finetune(small, (X, y), epochs=1, progress=False)
    assert all(not np.array_equal(a, b) for a, b in zip(norm.get_weights(), stats))
    assert not np.array_equal(keras.ops.convert_to_numpy(last.bias), bias)


def test_a_failing_run_leaves_the_model_as_it_was():
    X, y = data(128)
    small = compressed(conv_model())
    before = {name: layer.matrix.tobytes() for name, layer in compact(small).items()}
    weights = [w.copy() for w in small.get_weights()]

    def loss(y_true, y_pred):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        cnk.finetune(small, (X, y), loss=loss, progress=False)
    assert {name: layer.matrix.tobytes() for name, layer in compact(small).items()} == before
    for a, b in zip(small.get_weights(), weights):
        np.testing.assert_array_equal(a, b)


def test_saves_and_loads_after_finetuning(tmp_path):
    X, y = data(128)
    small = compressed(conv_model())
    cnk.finetune(small, (X, y), epochs=1, progress=False)
    path = tmp_path / "m.keras"
    small.save(path)
    np.testing.assert_array_equal(outputs(cnk.load(path), X), outputs(small, X))


def test_bad_settings_are_named():
    X, y = data(64)
    small = compressed(conv_model())
    with pytest.raises(ValueError, match="no compressed layers"):
        cnk.finetune(conv_model(), (X, y))
    with pytest.raises(TypeError, match="keras.Model"):
        cnk.finetune("model", (X, y))
    for kw, match in [(dict(retrain="all"), "retrain"), (dict(optimizer="lbfgs"), "optimizer"),
                      (dict(schedule="step"), "schedule"), (dict(epochs=0), "epochs"),
                      (dict(batch_size=2.5), "batch_size"), (dict(lr=float("nan")), "lr")]:
        with pytest.raises(ValueError, match=match):
            cnk.finetune(small, (X, y), **kw)
    with pytest.raises(ValueError, match="64 inputs but 30 targets"):
        cnk.finetune(small, (X, y[:30]))
    with pytest.raises(TypeError, match="pair"):
        cnk.finetune(small, (X, y, y))
    with pytest.raises(ValueError, match="number of batches"):
        cnk.finetune(small, iter([(X, y)]))
