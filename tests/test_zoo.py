"""The model zoo's architectures, `train` for classifiers and regressors, and the
concordance index."""
import functools
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from compactnn.evaluation import zoo
from compactnn.torch import compress_model
from compactnn.evaluation.datasets import PROTEIN_VOCAB, SMILES_VOCAB, fashion_mnist, kiba_sample


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def fashion_256():
    X, y, _, _ = fashion_mnist()
    return torch.from_numpy(X[:256, None]), torch.from_numpy(y[:256])


@pytest.fixture(scope="module")
def kiba_256():
    drugs, proteins, y = kiba_sample()["train"]
    X = (torch.from_numpy(drugs[:256]), torch.from_numpy(proteins[:256]))
    return X, torch.from_numpy(y[:256])


# -- architectures ---------------------------------------------------------------------------
@pytest.mark.parametrize("build, params", [
    (zoo.lenet_300_100, 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10),
    (zoo.lenet5, 6 * 25 + 6 + 6 * 16 * 25 + 16 + 400 * 120 + 120 + 120 * 84 + 84 + 84 * 10 + 10),
    (functools.partial(zoo.lenet5, channels=(20, 50), fc=(500,), padding=0),
     20 * 25 + 20 + 20 * 50 * 25 + 50 + 800 * 500 + 500 + 500 * 10 + 10),
    (zoo.vgg_style, (16 + 16 * 16 + 16 * 32 + 32 * 32 + 32 * 64 + 64 * 64) * 9 + 2 * (16 + 32 + 64)
     + 64 * 3 * 3 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10),
])
def test_image_models(build, params, fashion_256):
    model = build().eval()
    assert n_params(model) == params
    with torch.inference_mode():
        out = model(fashion_256[0][:5])
    assert out.shape == (5, 10) and out.dtype == torch.float32


def test_published_parameter_counts():
    assert n_params(zoo.lenet_300_100()) == 266_610
    assert n_params(zoo.lenet5()) == 61_706
    # Caffe's LeNet, Deep Compression's "LeNet-5" (431K)
    assert n_params(zoo.lenet5(channels=(20, 50), fc=(500,), padding=0)) == 431_080
    assert n_params(zoo.lenet_300_100(n_classes=3)) == 266_610 - 7 * 101


def test_lenet5_bad_geometry():
    with pytest.raises(ValueError, match="two positive channel counts"):
        zoo.lenet5(channels=(6,))
    with pytest.raises(ValueError, match="FC widths"):
        zoo.lenet5(fc=(120, 0))
    with pytest.raises(ValueError, match="padding >= 0"):
        zoo.lenet5(padding=-1)


def test_vgg_style_other_geometry():
    model = zoo.vgg_style(channels=(8, 16), fc=(64,), n_classes=5, in_channels=3, image=32)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model) == 4
    assert sum(isinstance(m, torch.nn.Dropout) for m in model) == 1
    assert model.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 5)
    with pytest.raises(ValueError, match="pools"):
        zoo.vgg_style(channels=(8, 8, 8, 8, 8), image=28)


def test_deepdta(kiba_256):
    model = zoo.deepdta(SMILES_VOCAB, PROTEIN_VOCAB).eval()
    f, e = 32, 128
    branch = lambda vocab, k: (vocab * e + e * f * k + f + f * 2 * f * k + 2 * f  # noqa: E731
                               + 2 * f * 3 * f * k + 3 * f)
    head = 6 * f * 1024 + 1024 + 1024 * 1024 + 1024 + 1024 * 512 + 512 + 512 + 1
    assert n_params(model) == branch(SMILES_VOCAB, 4) + branch(PROTEIN_VOCAB, 8) + head
    (drugs, proteins), _ = kiba_256
    with torch.inference_mode():
        out = model((drugs[:7], proteins[:7]))
    assert out.shape == (7,) and out.dtype == torch.float32 and torch.isfinite(out).all()
    # padding (code 0) embeds to zeros
    assert not model.smiles_embed.weight[0].any() and not model.protein_embed.weight[0].any()


def test_zoo_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None; "
            "import compactnn.evaluation.zoo, compactnn.evaluation.datasets; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


# -- train -----------------------------------------------------------------------------------
def _loss(model, X, y, fn):
    with torch.inference_mode():
        return float(fn(model.eval()(X), y))


@pytest.mark.training
def test_train_classifier_reduces_cross_entropy(fashion_256):
    X, y = fashion_256
    torch.manual_seed(0)
    model = zoo.lenet_300_100()
    before = _loss(model, X, y, torch.nn.functional.cross_entropy)
    zoo.train(model, X, y, epochs=2, lr=3e-3, batch_size=32, seed=0)
    after = _loss(model, X, y, torch.nn.functional.cross_entropy)
    assert not model.training
    assert after < 0.5 * before


@pytest.mark.training
def test_train_regressor_on_a_tuple_reduces_mse(kiba_256):
    (drugs, proteins), y = kiba_256
    X, y = (drugs[:128], proteins[:128]), y[:128]
    torch.manual_seed(0)
    # narrow branches: DeepDTA's own widths take seconds a batch here
    model = zoo.deepdta(SMILES_VOCAB, PROTEIN_VOCAB, filters=4, embed=8, protein_kernel=4)
    before = _loss(model, X, y, torch.nn.functional.mse_loss)
    zoo.train(model, X, y, epochs=2, lr=1e-3, batch_size=32, seed=0, loss="mse")
    after = _loss(model, X, y, torch.nn.functional.mse_loss)
    assert not model.training
    assert after < 0.5 * before


@pytest.mark.training
def test_train_default_is_the_former_classifier_loop(fashion_256):
    """The default loss and a tensor X train exactly as `train` did before loss= and tuples."""
    X, y = fashion_256[0][:96], fashion_256[1][:96]

    def former(model, epochs, lr, batch_size, seed):
        opt = torch.optim.Adam(model.parameters(), lr)
        g = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(X), generator=g)
            for i in range(0, len(X), batch_size):
                idx = perm[i:i + batch_size]
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
                opt.step()
        return model.eval()

    torch.manual_seed(1)
    a = zoo.lenet5()
    b = zoo.lenet5()
    b.load_state_dict(a.state_dict())
    zoo.train(a, X, y, epochs=2, lr=3e-3, batch_size=32, seed=5)
    former(b, epochs=2, lr=3e-3, batch_size=32, seed=5)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def _predict(model, X):
    with torch.inference_mode():
        return model(X)


def test_regressor_output_starts_at_the_mean_and_pruning_keeps_it_there(kiba_256):
    """loss="mse" starts the model at predicting the targets' mean (about 11.6 for KIBA):
    with the output bias at 0, pruning the head's weights pulled DeepDTA's predictions
    towards 0 (test MSE 42-136 against a baseline's 0.57).  Pruned 95%, the predictions stay
    near the mean."""
    (drugs, proteins), y = kiba_256
    X = (drugs[:64], proteins[:64])
    torch.manual_seed(0)
    model = zoo.deepdta(SMILES_VOCAB, PROTEIN_VOCAB, filters=4, embed=8, protein_kernel=4)
    zoo.train(model, X, y[:64], epochs=0, loss="mse")
    assert model.head[-1].bias.item() == pytest.approx(float(y[:64].mean()), rel=1e-6)
    assert torch.allclose(_predict(model, X), y[:64].mean())
    zoo.train(model, X, y[:64], epochs=1, batch_size=32, loss="mse")
    pruned = compress_model(model, prune=0.95, prune_scope="global", k=16, progress=False)
    for m in (model, pruned):
        p = _predict(m, X)
        assert float(torch.mean((p - y[:64]) ** 2)) < 2 * float(y[:64].var()) + 0.1
    # the same model with its output bias at 0 collapses, as the former recipe did
    with torch.no_grad():
        model.head[-1].bias.zero_()
    p = _predict(compress_model(model, prune=0.95, prune_scope="global", k=16, progress=False), X)
    assert float(torch.mean((p - y[:64]) ** 2)) > 50


def test_regressor_needs_one_output_with_a_bias(fashion_256):
    X, y = fashion_256
    with pytest.raises(ValueError, match="last nn.Linear has one output and a bias"):
        zoo.train(zoo.lenet_300_100(), X, y.float(), epochs=1, loss="mse")


def test_train_rejects_an_unknown_loss(fashion_256):
    with pytest.raises(ValueError, match="loss must be one of"):
        zoo.train(zoo.lenet5(), *fashion_256, epochs=1, loss="hinge")


# -- concordance index -----------------------------------------------------------------------
def brute_force_ci(y, p):
    """DeepDTA's get_cindex, pair by pair."""
    pairs = total = 0.0
    for i in range(len(y)):
        for j in range(len(y)):
            if y[i] > y[j]:
                pairs += 1
                total += 1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0
    return total / pairs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_concordance_index_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.integers(0, 20, n).astype(np.float32)  # ties in the true values
    p = y + rng.integers(-5, 6, n)  # and in the predictions
    assert zoo.concordance_index(y, p) == pytest.approx(brute_force_ci(y, p), abs=1e-12)


def test_concordance_index_extremes_and_speed():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(3000)
    assert zoo.concordance_index(y, 2 * y + 1) == 1.0
    assert zoo.concordance_index(y, -y) == 0.0
    assert zoo.concordance_index(y, np.zeros_like(y)) == 0.5
    assert zoo.concordance_index(np.ones(4), [1, 2, 3, 4]) == 0.0  # no pairs: DeepDTA's 0
    t = time.perf_counter()
    ci = zoo.concordance_index(y, y + rng.standard_normal(3000))
    assert time.perf_counter() - t < 1.0
    assert 0.5 < ci < 1.0
    with pytest.raises(ValueError):
        zoo.concordance_index(y, y[:-1])
