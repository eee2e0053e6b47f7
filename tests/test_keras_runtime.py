"""compactnn.keras.save_graph: Sequential and Functional Keras models (dense and compressed,
channels last and first) run on compactnn.runtime as Keras runs them; what the runtime
cannot express is named.  Runs on the backend conftest (or KERAS_BACKEND) chose."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")
import compactnn.keras as cnk  # noqa: E402
import compactnn.runtime as runtime  # noqa: E402
from compactnn.keras.export import CaptureError  # noqa: E402

L = keras.layers


def functional():
    inp = keras.Input((8, 8, 3))
    a = L.BatchNormalization()(L.Conv2D(4, 3, padding="same", activation="relu")(inp))
    b = L.Conv2D(4, 1)(inp)
    c = L.MaxPooling2D()(L.Add()([a, b]))
    d = L.Concatenate()([c, L.AveragePooling2D(2)(b)])
    e = L.Dense(6, activation="gelu")(L.Flatten()(d))
    return keras.Model(inp, L.Dense(3, activation="softmax")(L.Dropout(0.2)(e)))


def conv1d():
    return keras.Sequential([keras.Input((12, 2)), L.Conv1D(5, 3, strides=2, activation="tanh"),
                             L.Conv1D(4, 2, dilation_rate=2), L.ReLU(),
                             L.GlobalMaxPooling1D(), L.Dense(2, activation="sigmoid")])


def channels_first():
    return keras.Sequential([
        keras.Input((3, 9, 7)),
        L.Conv2D(4, (3, 2), strides=(2, 1), data_format="channels_first"),
        L.BatchNormalization(axis=1), L.Activation("relu"),
        L.MaxPooling2D(data_format="channels_first"),
        L.GlobalAveragePooling2D(data_format="channels_first"), L.Dense(3), L.Softmax()])


def multiply_reshape():
    inp = keras.Input((6,))
    h = L.Dense(8)(inp)
    gate = L.Dense(8, activation="sigmoid")(inp)
    x = L.Reshape((2, 4))(L.Multiply()([h, gate]))
    return keras.Model(inp, L.Dense(3)(L.Flatten()(x)))


MODELS = {"functional": functional, "conv1d": conv1d, "channels_first": channels_first,
          "multiply_reshape": multiply_reshape}


def randomise_norms(model):
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(np.linspace(-1, 1, n).astype("float32"))
            layer.moving_variance.assign(np.linspace(0.5, 2, n).astype("float32"))


@pytest.mark.parametrize("compress", [False, True], ids=["dense", "compressed"])
@pytest.mark.parametrize("name", MODELS)
def test_models_run_as_keras_runs_them(name, compress, tmp_path):
    keras.utils.set_random_seed(0)
    model = MODELS[name]()
    randomise_norms(model)
    if compress:
        model = cnk.compress_model(model, prune=0.5, k=8, progress=False, objective="small")
    path = tmp_path / "m.cnnm"
    cnk.save_graph(model, path)
    rt = runtime.load(path)
    rng = np.random.default_rng(1)
    for batch in (1, 64):
        x = rng.standard_normal((batch, *model.inputs[0].shape[1:])).astype(np.float32)
        want = keras.ops.convert_to_numpy(model(x, training=False))
        np.testing.assert_allclose(rt(x), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_a_convolution_stack_permutes_once_each_way(tmp_path):
    cnk.save_graph(functional(), tmp_path / "m.cnnm")
    ops = [op for _, op, _, _ in runtime.load(tmp_path / "m.cnnm").describe()]
    assert ops.count("permute") == 2 and ops[0] == "permute"


def test_what_it_cannot_express_is_named(tmp_path):
    cases = [
        (keras.Sequential([keras.Input((5,)), L.Dense(3), L.LayerNormalization()]),
         "LayerNormalization"),
        (keras.Sequential([keras.Input((6, 6, 1)), L.Conv2D(2, 2, padding="same")]),
         "uneven"),
        (keras.Sequential([keras.Input((5,)), L.Dense(3, activation="elu")]), "'elu'"),
        (keras.Sequential([L.Dense(3)]), "built"),
    ]
    for model, match in cases:
        with pytest.raises(CaptureError, match=match):
            cnk.save_graph(model, tmp_path / "m.cnnm")
    assert not (tmp_path / "m.cnnm").exists()
