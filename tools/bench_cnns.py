"""The whole-CNN comparison of docs/performance.md: ccexam's MNIST CNN (pretrained, PyPI
ccexam), LeNet-5 and the VGG-style network of the zoo (random weights: their speed does not
depend on what they learned) compressed under each objective, against the dense model in the
same run, at batch 1 and 64.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/bench_cnns.py [fast] [small]
"""
from __future__ import annotations

import io
import sys

import torch

import compactnn.torch as cnt
from compactnn.bench.models import side_by_side
from compactnn.evaluation import zoo


def main(objectives):
    torch.manual_seed(0)
    models = {
        "ccexam MNIST CNN, 70% global": (zoo.ccexam_mnist(),
                                         dict(prune=0.7, prune_scope="global", k=16)),
        "LeNet-5, 90% per layer": (zoo.lenet5().eval(), dict(prune=0.9, k=16)),
        "VGG-style, 95% global": (zoo.vgg_style().eval(),
                                  dict(prune=0.95, prune_scope="global", k=16)),
    }

    def make(b):
        return torch.randn(b, 1, 28, 28, generator=torch.Generator().manual_seed(0))

    def run(m):
        def f(x):
            with torch.inference_mode():
                return m(x)
        return f

    print("| model (cws k=16) | objective | bytes (dense) | batch 1 | batch 64 | kept dense |")
    print("|---|---|---:|---:|---:|---|")
    for name, (model, opts) in models.items():
        for objective in objectives:
            small = cnt.compress_model(model, objective=objective, progress=False, **opts)
            rows = side_by_side(run(model), run(small), make, rounds=3, budget=0.2)
            kept = [r.name for r in cnt.summary(small, file=io.StringIO())
                    if r.format.startswith("dense (kept")]
            print(f"| {name} | {objective} | {cnt.model_nbytes(small):,} "
                  f"({cnt.model_nbytes(model):,}) | {rows[0]['speedup']:.2f}x | "
                  f"{rows[1]['speedup']:.2f}x | {', '.join(kept)} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["small", "fast"])
