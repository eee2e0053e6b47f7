"""compactnn.keras.prune_gradually: the zeros land where compress_model looks for them, the
pruned weights stay zero through training, and bad settings are named."""
import io

import numpy as np
import pytest

keras = pytest.importorskip("keras")
import compactnn.keras as cnk  # noqa: E402


def small_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3),
                             keras.layers.Flatten(), keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(3)])


def data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 6, 6, 1)).astype(np.float32), rng.integers(0, 3, n)


def kernels(model):
    return [keras.ops.convert_to_numpy(layer.kernel) for layer in cnk.compressible_layers(model)]


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_prunes_the_amount_and_compress_model_finds_the_zeros(scope):
    model = small_model()
    out = cnk.prune_gradually(model, data(), 0.6, steps=2, epochs_per_step=1, scope=scope,
                              progress=False)
    assert out is model
    ks = kernels(model)
    zeros = [int((k == 0).sum()) for k in ks]
    if scope == "global":
        assert sum(zeros) == round(0.6 * sum(k.size for k in ks))
    else:
        assert zeros == [round(0.6 * k.size) for k in ks]
    small = cnk.compress_model(model, prune=0.6, prune_scope=scope, k=8, progress=False)
    rows = cnk.summary(small, file=io.StringIO())
    assert rows[1].format in ("IndexMap", "HAM", "HCSR")  # the 64 x 32 Dense layer
    for row, k in zip(rows, ks):
        assert row.density == pytest.approx(np.count_nonzero(k) / k.size)


def test_pruned_weights_stay_zero_while_training():
    model = small_model(1)
    cnk.prune_gradually(model, data(seed=1), 0.5, steps=1, epochs_per_step=3, scope="layer",
                        lr=1e-2, progress=False)
    for k in kernels(model):
        assert (k == 0).sum() == round(0.5 * k.size)


@pytest.mark.parametrize("kwargs, match", [
    (dict(amount=1.0), "amount must lie in"), (dict(amount=0.5, steps=0), "steps must be"),
    (dict(amount=0.5, scope="all"), "scope must be"),
    (dict(amount=0.5, epochs_per_step=1.5), "epochs_per_step must be")])
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cnk.prune_gradually(small_model(), data(), progress=False, **kwargs)


def test_data_must_be_a_matching_pair():
    X, y = data()
    with pytest.raises(TypeError, match="pair"):
        cnk.prune_gradually(small_model(), X, 0.5, progress=False)
    with pytest.raises(ValueError, match="96 inputs but 95 targets"):
        cnk.prune_gradually(small_model(), (X, y[:95]), 0.5, progress=False)
