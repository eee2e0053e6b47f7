"""compactnn.keras: compressed Dense/Conv1D/Conv2D against dense references, whole models,
.keras round trips and damaged files (Keras on the torch backend, set in conftest)."""
import io
import os
import zipfile

import h5py
import keras
import numpy as np
import pytest

import compactnn as cn
import compactnn.keras as cnk
from compactnn.model.plan import matrix_to_kernel


def decoded_reference(model, small):
    """The dense model whose kernels are the compressed model's decoded matrices."""
    ref = keras.models.clone_model(model)
    ref.set_weights(model.get_weights())
    for layer in ref.layers:
        compressed = small.get_layer(layer.name)
        if isinstance(compressed, (cnk.CompressedDense, cnk.CompressedConv1D,
                                   cnk.CompressedConv2D)):
            W = compressed.matrix.to_dense()
            shape = tuple(layer.kernel.shape)
            layer.kernel.assign(W.T if isinstance(layer, keras.layers.Dense)
                                else matrix_to_kernel(W, shape, "...io"))
    return ref


def check(model, x, **kw):
    # "small": every layer compact (the fast objective keeps small ones dense)
    small = cnk.compress_model(model, progress=False,
                               **{"prune": 0.5, "k": 16, "objective": "small", **kw})
    y = keras.ops.convert_to_numpy(small(x))
    ref = keras.ops.convert_to_numpy(decoded_reference(model, small)(x))
    assert y.dtype == np.float32 and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(ref).max()))
    return small


CONV2D = [dict(), dict(strides=2), dict(padding="same"), dict(padding="same", strides=2),
          dict(dilation_rate=2), dict(strides=(1, 2), padding="same"),
          dict(data_format="channels_first"), dict(use_bias=False, activation="relu")]


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("kw", CONV2D, ids=str)
def test_conv2d(kw, batch):
    shape = (3, 11, 10) if kw.get("data_format") == "channels_first" else (11, 10, 3)
    model = keras.Sequential([keras.Input(shape), keras.layers.Conv2D(6, (3, 4), **kw)])
    x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
    check(model, x)


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("kw", [dict(), dict(padding="causal"), dict(padding="same"),
                                dict(strides=3), dict(dilation_rate=2, padding="causal")],
                         ids=str)
def test_conv1d(kw, batch):
    model = keras.Sequential([keras.Input((30, 4)), keras.layers.Conv1D(5, 3, **kw)])
    x = np.random.default_rng(1).standard_normal((batch, 30, 4)).astype(np.float32)
    check(model, x)


@pytest.mark.parametrize("shape", [(1, 40), (64, 40), (2, 3, 40)])
def test_dense(shape):
    model = keras.Sequential([keras.Input(shape[1:]), keras.layers.Dense(7, activation="tanh")])
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    for fmt in ("indexmap", "ham", "hcsr"):
        small = check(model, x, format=fmt)
        assert type(small.layers[0].matrix).__name__.lower() == fmt


def functional():
    inp = keras.Input((16, 16, 1))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(8, 3, groups=2)(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(32, activation="relu")(h)
    return keras.Model(inp, keras.layers.Dense(10, name="head")(h))


def test_whole_model_predict_and_sizes():
    model = functional()
    x = np.random.default_rng(3).standard_normal((5, 16, 16, 1)).astype(np.float32)
    small = check(model, x, prune=0.6, k=8)
    np.testing.assert_allclose(small.predict(x, verbose=0),
                               keras.ops.convert_to_numpy(small(x)), rtol=1e-6)
    kinds = [type(layer).__name__ for layer in small.layers]
    assert kinds.count("CompressedConv2D") == 1 and kinds.count("CompressedDense") == 2
    assert "Conv2D" in kinds  # the grouped convolution stays dense
    for layer in small.layers:
        if isinstance(layer, (cnk.CompressedDense, cnk.CompressedConv2D)):
            assert [tuple(v.shape) for v in layer.weights] == [(layer.matrix.shape[0],)]
    matrices = sum(layer.matrix.nbytes for layer in small.layers if hasattr(layer, "matrix"))
    variables = sum(int(np.prod(v.shape)) * 4 for v in small.weights)
    assert cnk.model_nbytes(small) == matrices + variables
    out = io.StringIO()
    rows = cnk.summary(small, file=out)
    assert [r.name for r in rows][-1] == "head" and any(r.format == "dense" for r in rows)
    assert out.getvalue().splitlines()[-1].startswith("| whole model |")


def test_layer_settings_and_global_pruning():
    model = functional()
    small = cnk.compress_model(model, k=16, progress=False, layers={"head": "dense"})
    assert type(small.get_layer("head")) is keras.layers.Dense
    with pytest.raises(ValueError, match="not compressible layers"):
        cnk.compress_model(model, progress=False, layers={"nope": "dense"})
    small = cnk.compress_model(model, prune=0.8, prune_scope="global", objective="small",
                               progress=False)
    mats = [layer.matrix for layer in small.layers if hasattr(layer, "matrix")]
    assert sum(m.nnz for m in mats) == pytest.approx(0.2 * sum(m.size for m in mats), abs=2)


def test_save_and_load_round_trip(tmp_path):
    model = functional()
    small = cnk.compress_model(model, prune=0.5, k=16, progress=False)
    path = tmp_path / "small.keras"
    small.save(path)
    back = cnk.load(path)
    x = np.random.default_rng(4).standard_normal((3, 16, 16, 1)).astype(np.float32)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(back(x)),
                                  keras.ops.convert_to_numpy(small(x)))
    assert cnk.model_nbytes(back) == cnk.model_nbytes(small)
    assert back.get_layer("head").plan == small.get_layer("head").plan
    assert os.path.getsize(path) < 0.5 * 4 * sum(int(np.prod(v.shape)) for v in model.weights) \
        + 40000  # the archive's own JSON and HDF5 overhead


def test_damaged_files(tmp_path):
    small = cnk.compress_model(functional(), prune=0.5, k=16, progress=False)
    path = tmp_path / "small.keras"
    small.save(path)
    data = path.read_bytes()
    bad = tmp_path / "bad.keras"
    for cut in (0, 100, len(data) // 2, len(data) - 10):
        bad.write_bytes(data[:cut])
        with pytest.raises(cn.FormatError):
            cnk.load(bad)
    # a matrix damaged inside an archive that is otherwise valid
    with zipfile.ZipFile(path) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    weights = tmp_path / "w.h5"
    weights.write_bytes(parts["model.weights.h5"])
    with h5py.File(weights, "r+") as f:
        names = []
        f.visit(lambda n: names.append(n) if n.endswith("matrix") else None)
        blob = f[names[0]][...]
        blob[len(blob) // 2] ^= 0xFF
        f[names[0]][...] = blob
    parts["model.weights.h5"] = weights.read_bytes()
    with zipfile.ZipFile(bad, "w") as z:
        for name, content in parts.items():
            z.writestr(name, content)
    with pytest.raises(cn.FormatError):
        cnk.load(bad)
    with pytest.raises(FileNotFoundError):
        cnk.load(tmp_path / "missing.keras")


def test_refuses_what_it_cannot_compress():
    with pytest.raises(TypeError, match="keras.Model"):
        cnk.compress_model(np.zeros(3))

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(3)

        def call(self, x):
            return self.d(x)

    sub = Sub()
    sub(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="Sequential and Functional"):
        cnk.compress_model(sub, progress=False)
    layer = cnk.CompressedDense(3, matrix=cn.IndexMap.from_dense(np.ones((3, 2), np.float32)))
    assert layer.units == 3
    with pytest.raises(ValueError, match="units"):
        cnk.CompressedDense(5, matrix=cn.IndexMap.from_dense(np.ones((3, 2), np.float32)))
