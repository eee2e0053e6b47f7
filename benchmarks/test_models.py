"""Whole models: ccexam's MNIST CNN dense against compressed, in PyTorch, batch 1 and 64,
one benchmark group per batch size (run: pytest benchmarks/test_models.py
--benchmark-group-by=group)."""
import pytest
import torch

import compactnn.torch as cnt
from compactnn.evaluation.datasets import mnist_5k
from compactnn.evaluation.zoo import ccexam_mnist, mnist_input

CONFIGS = {
    "dense": None,
    # no retraining: one global threshold (psi 0.072, no accuracy lost on the 5,000 digits)
    "global 70% k=16": dict(prune=0.7, prune_scope="global", k=16),
    # the linear layer pruned hardest, as after weight retraining (see docs/case-study-ccexam.md)
    "fc 97% k=16": dict(prune=0.97, k=16, layers={"features.0": {"prune": 0.3},
                                                  "features.3": {"prune": 0.5},
                                                  "classifier.2": {"prune": 0.5}}),
}


@pytest.fixture(scope="module")
def models():
    dense = ccexam_mnist()
    return {name: dense if cfg is None else cnt.compress_model(dense, progress=False, **cfg)
            for name, cfg in CONFIGS.items()}


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("config", list(CONFIGS))
def test_ccexam_latency(benchmark, models, config, batch):
    benchmark.group = f"ccexam MNIST CNN, batch {batch}"
    x = mnist_input(mnist_5k()[0][:batch])
    model = models[config]

    def run():
        with torch.inference_mode():
            return model(x)

    benchmark(run)
