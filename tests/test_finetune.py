"""compactnn.torch.finetune on a small real task: scikit-learn's 8x8 digits."""
import numpy as np
import pytest
import torch
from torch import nn

import compactnn as cn
import compactnn.torch as cnt
from compactnn.evaluation.datasets import digits_8x8, split
from compactnn.evaluation.zoo import train
from compactnn.matrix.formats import form_name


@pytest.fixture(scope="module")
def task():
    X, y = digits_8x8()
    Xtr, ytr, Xte, yte = map(torch.from_numpy, split(X[:, None], y, 1200, seed=0))
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(16 * 64, 64), nn.ReLU(), nn.Linear(64, 10))
    return train(model, Xtr, ytr, epochs=15), (Xtr, ytr), (Xte, yte)


def accuracy(model, data):
    X, y = data
    with torch.inference_mode():
        return float((model(X).argmax(1) == y).float().mean())


def layers(model):
    return {name: mod for name, mod in model.named_modules()
            if isinstance(mod, cnt.CompressedModule)}


@pytest.mark.training
def test_codebook_retraining_recovers_accuracy_and_keeps_the_index_maps(task):
    model, train, test = task
    assert accuracy(model, test) > 0.95
    small = cnt.compress_model(model, prune=0.9, k=4, prune_scope="global", progress=False)
    before = {name: (form_name(m.matrix), *m.matrix.to_codebook())
              for name, m in layers(small).items()}
    acc_before = accuracy(small, test)
    out = cnt.finetune(small, train, epochs=3, lr=1e-3, progress=False)
    assert out is small
    assert accuracy(small, test) > acc_before + 0.08
    for name, m in layers(small).items():
        fmt, codebook, indices = before[name]
        new_codebook, new_indices = m.matrix.to_codebook()
        assert form_name(m.matrix) == fmt  # format and layout (the objective's choice)
        np.testing.assert_array_equal(new_indices, indices)  # the index map stays fixed
        zero = codebook == 0
        assert (new_codebook[zero] == 0).all()  # pruned weights stay exactly zero
        assert not np.array_equal(new_codebook[~zero], codebook[~zero])  # the rest learned
        assert m.bias is not None and not m.bias.requires_grad
    # the model still holds no dense weight
    for m in layers(small).values():
        assert all(t.numel() < np.prod(m.weight_shape()) for t in m.state_dict().values()
                   if isinstance(t, torch.Tensor) and t.dtype != torch.uint8)


@pytest.mark.training
def test_weight_retraining_then_quantizing(task):
    model, train, test = task
    small = cnt.compress_model(model, prune=0.9, k=8, prune_scope="global", progress=False)
    zeros = {name: m.matrix.to_dense() == 0 for name, m in layers(small).items()}
    acc_before = accuracy(small, test)
    cnt.finetune(small, train, epochs=4, lr=3e-3, retrain="weights", progress=False)
    assert accuracy(small, test) > acc_before + 0.03
    for name, m in layers(small).items():
        dense = m.matrix.to_dense()
        assert (dense[zeros[name]] == 0).all()  # the mask holds
        assert len(np.unique(dense)) <= 8  # quantized again by the layer's plan (k = 8)


@pytest.mark.training
def test_a_data_loader_works_and_interruptions_leave_the_model(task):
    model, train, test = task
    small = cnt.compress_model(model, prune=0.5, k=8, progress=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*train), batch_size=100)
    cnt.finetune(small, loader, epochs=1, lr=1e-4, progress=False)
    bytes_before = {n: m.matrix.tobytes() for n, m in layers(small).items()}

    def bad_loss(out, y):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cnt.finetune(small, train, bad_loss, progress=False)
    assert {n: m.matrix.tobytes() for n, m in layers(small).items()} == bytes_before


@pytest.mark.training
@pytest.mark.parametrize("kw, message", [
    (dict(retrain="all"), "retrain must be"), (dict(epochs=0), "epochs"),
    (dict(lr=-1.0), "lr must be"), (dict(optimizer="lbfgs"), "optimizer"),
    (dict(schedule="step"), "schedule"), (dict(batch_size=0), "batch_size"),
])
def test_bad_arguments(task, kw, message):
    model, train, _ = task
    small = cnt.compress_model(model, prune=0.5, k=8, progress=False)
    with pytest.raises(ValueError, match=message):
        cnt.finetune(small, train, progress=False, **kw)


@pytest.mark.training
def test_needs_a_compressed_model(task):
    model, train, _ = task
    with pytest.raises(ValueError, match="no compressed layers"):
        cnt.finetune(model, train, progress=False)
    with pytest.raises(ValueError, match="inputs but"):
        cnt.finetune(cnt.compress_model(model, k=8, progress=False),
                     (train[0], train[1][:10]), progress=False)


@pytest.mark.training
def test_uncompressed_layers_train_too(task):
    model, train, _ = task
    small = cnt.compress_model(model, prune=0.5, k=8, progress=False, layers={"3": "dense"})
    before = small[3].weight.detach().clone()
    cnt.finetune(small, train, epochs=1, lr=1e-3, progress=False)
    assert not torch.equal(small[3].weight, before)
    assert isinstance(small[0].matrix, (cn.IndexMap, cn.HAM, cn.HCSR))


@pytest.mark.training
def test_weight_retraining_of_an_unquantized_model(task):
    """A model compressed without weight sharing (its weights already had few values) is
    shared again with k-means after its weights were trained."""
    model, train_data, _ = task
    small = cnt.compress_model(model, prune=0.5, k=8, progress=False)
    again = cnt.compress_model(cnt.decompress(small), quantize=None, progress=False)
    cnt.finetune(again, train_data, epochs=1, lr=1e-3, retrain="weights", progress=False)
    assert all(len(np.unique(m.matrix.to_dense())) <= 8 for m in layers(again).values())


@pytest.mark.training
def test_prune_gradually_reaches_the_amount_and_keeps_zeros():
    from compactnn.torch import prune_gradually

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 4))
    X = torch.randn(256, 20)
    y = (X[:, :4].argmax(1))
    before = [m.weight.detach().clone() for m in (model[0], model[2])]
    prune_gradually(model, (X, y), 0.8, steps=3, epochs_per_step=2, batch_size=32,
                    progress=False)
    for m, w0 in zip((model[0], model[2]), before):
        zero = m.weight == 0
        assert abs(zero.float().mean().item() - 0.8) < 0.02  # per layer ("layer" scope)
        assert not torch.equal(m.weight[~zero], w0[~zero])  # survivors were trained
    assert not model.training
    # global scope: one threshold, so the layers' fractions differ but the total is 80%
    model2 = nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 4))
    with torch.no_grad():
        model2[2].weight.mul_(10)  # the second layer's weights are the large ones
    prune_gradually(model2, (X, y), 0.8, steps=2, epochs_per_step=1, scope="global",
                    progress=False)
    zeros = [(m.weight == 0).sum().item() for m in (model2[0], model2[2])]
    assert abs(sum(zeros) / (600 + 120) - 0.8) < 0.01 and zeros[1] < 0.8 * 120


@pytest.mark.training
def test_prune_gradually_with_per_layer_amounts():
    """`layers=` gives layers their own amount; under the global scope the layers sharing
    the default amount share one threshold, and compress_model with the same settings finds
    every zero in place."""
    from compactnn.torch import compress_model, prune_gradually

    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 40),
                          nn.ReLU(), nn.Linear(40, 3))
    X, y = torch.randn(64, 1, 6, 6), torch.randint(0, 3, (64,))

    def conv_kept(name, mod):
        return 0.0 if isinstance(mod, nn.Conv2d) else None

    prune_gradually(model, (X, y), 0.9, steps=2, epochs_per_step=1, scope="global",
                    layers=conv_kept, batch_size=16, progress=False)
    assert (model[0].weight != 0).all()
    zeros = [(m.weight == 0).sum().item() for m in (model[3], model[5])]
    assert sum(zeros) == int(0.9 * (64 * 40 + 40 * 3))
    small = compress_model(model, prune=0.9, quantize=None, prune_scope="global",
                           layers=lambda n, m: {"prune": 0.0} if n == "0" else None,
                           objective="small", progress=False)
    for name, m in (("3", model[3]), ("5", model[5])):
        assert np.array_equal(small.get_submodule(name).matrix.to_dense() == 0,
                              (m.weight == 0).numpy())
    with pytest.raises(ValueError, match="layer '0'"):
        prune_gradually(model, (X, y), 0.5, layers=lambda n, m: 1.5 if n == "0" else None,
                        progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"amount": 1.0}, "amount must lie"), ({"steps": 0}, "steps must be"),
    ({"scope": "model"}, "scope must be"), ({"epochs_per_step": 1.5}, "epochs_per_step must"),
])
def test_prune_gradually_rejects_bad_arguments(kwargs, match):
    from compactnn.torch import prune_gradually

    args = {"amount": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        prune_gradually(nn.Sequential(nn.Linear(4, 2)), (torch.zeros(4, 4), torch.zeros(4).long()),
                        **args, progress=False)
