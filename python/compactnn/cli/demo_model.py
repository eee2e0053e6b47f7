"""`compactnn demo`: a small CNN trained on scikit-learn's 8x8 digits, pruned gradually,
compressed whole (convolutions included) and its codebooks fine-tuned; then
compared with the dense model: accuracy, bytes, psi and batch-1 latency, in PyTorch and
(when installed) Keras.

The recipe (80% of the weights pruned by one global threshold in 4 steps of 2 epochs, cws
k = 16) keeps every seed from 0 to 4 within 0.3 points of the dense model in both
frameworks on this split; pruning 90% in one shot, as the demo once did, lost 2 points in
PyTorch and 4 in Keras."""
from __future__ import annotations

import os
import time

import numpy as np

from ..bench.timing import median_time
from ..evaluation.datasets import digits_8x8, split
from ..evaluation.zoo import train

PRUNE, K, TRAIN = 0.8, 16, 1397
STEPS, EPOCHS_PER_STEP = 4, 2
RECIPE = f"{PRUNE:.0%} pruned globally in {STEPS} steps, cws k={K}"


def _table(rows) -> str:
    lines = ["| model | accuracy | bytes | psi | batch-1 latency ms |",
             "|---|---:|---:|---:|---:|"]
    base = rows[0][2]
    for name, acc, nbytes, ms in rows:
        lines.append(f"| {name} | {100 * acc:.2f}% | {nbytes:,} | {nbytes / base:.4f} | "
                     f"{ms:.3f} |")
    return "\n".join(lines)


def _torch_part(data, seed: int) -> None:
    import torch
    from torch import nn

    import copy

    import compactnn.torch as cnt

    Xtr, ytr, Xte, yte = (torch.from_numpy(a) for a in data)
    Xtr, Xte = Xtr[:, None], Xte[:, None]
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 4 * 4, 128), nn.ReLU(),
        nn.Linear(128, 10))
    t = time.perf_counter()
    train(model, Xtr, ytr, epochs=15, seed=seed)
    print(f"PyTorch: trained {sum(p.numel() for p in model.parameters()):,} weights in "
          f"{time.perf_counter() - t:.1f} s\n")

    def measure(name, m):
        with torch.inference_mode():
            acc = float((m(Xte).argmax(1) == yte).float().mean())
            x = Xte[:1].clone()
            ms = 1e3 * median_time(lambda: m(x), budget=0.5)
        return name, acc, cnt.model_nbytes(m), ms

    rows = [measure("dense float32", model)]
    t = time.perf_counter()
    pruned = cnt.prune_gradually(copy.deepcopy(model), (Xtr, ytr), PRUNE, steps=STEPS,
                                 epochs_per_step=EPOCHS_PER_STEP, scope="global", seed=seed,
                                 progress=False)
    small = cnt.compress_model(pruned, prune=PRUNE, prune_scope="global", k=K, progress=False)
    rows.append(measure(f"compressed ({RECIPE})", small))
    cnt.finetune(small, (Xtr, ytr), epochs=3, lr=1e-3, progress=False)
    rows.append(measure("compressed + codebook fine-tuning (3 epochs)", small))
    cnt.summary(small)
    print(f"\n(pruning, compression and fine-tuning took {time.perf_counter() - t:.1f} s)\n")
    print(_table(rows))


def _keras_part(data, seed: int) -> None:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        print("\n(Keras part skipped: pip install keras)")
        return
    import compactnn.keras as cnk

    Xtr, ytr, Xte, yte = data
    Xtr, Xte = Xtr[..., None], Xte[..., None]
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(), keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    t = time.perf_counter()
    model.fit(Xtr, ytr, batch_size=64, epochs=15, verbose=0)
    print(f"\nKeras ({keras.backend.backend()} backend): trained "
          f"{model.count_params():,} weights in {time.perf_counter() - t:.1f} s\n")

    def measure(name, m):
        acc = float((np.asarray(m.predict(Xte, verbose=0)).argmax(1) == yte).mean())
        x = Xte[:1]
        ms = 1e3 * median_time(lambda: m(x), budget=0.5)
        return name, acc, cnk.model_nbytes(m), ms

    rows = [measure("dense float32", model)]
    t = time.perf_counter()
    cnk.prune_gradually(model, (Xtr, ytr), PRUNE, steps=STEPS, epochs_per_step=EPOCHS_PER_STEP,
                        scope="global", seed=seed, progress=False)
    small = cnk.compress_model(model, prune=PRUNE, prune_scope="global", k=K, progress=False)
    rows.append(measure(f"compressed ({RECIPE})", small))
    cnk.finetune(small, (Xtr, ytr), epochs=3, lr=1e-3, seed=seed, progress=False)
    rows.append(measure("compressed + codebook fine-tuning (3 epochs)", small))
    cnk.summary(small)
    print(f"\n(pruning, compression and fine-tuning took {time.perf_counter() - t:.1f} s)\n")
    print(_table(rows))


def run(seed: int = 0, keras: bool = True) -> int:
    X, y = digits_8x8()
    data = split(X, y, TRAIN, seed=seed)
    print(f"compactnn demo: a small CNN on scikit-learn's 8x8 digits ({len(y):,} images: "
          f"{TRAIN:,} to train, {len(y) - TRAIN:,} to test), compressed whole: every "
          "convolution and linear layer on a compact matrix\n")
    _torch_part(data, seed)
    if keras:
        _keras_part(data, seed)
    return 0
