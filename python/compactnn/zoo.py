"""Trained PyTorch models that installable packages ship (nothing is downloaded)."""
from __future__ import annotations

import os

import numpy as np

# ccexam's MNIST input normalization (ccexam/constants.py)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def ccexam_mnist():
    """The MNIST CNN of the ccexam package (MIT; 2 conv + 2 linear layers, 421,642
    weights), with its trained weights, in eval mode.  Its inputs are (N, 1, 28, 28)
    images in [0, 1] normalized by `mnist_input`."""
    try:
        import ccexam
        from ccexam.models import MNISTNet
    except ImportError:
        raise ImportError("the ccexam MNIST CNN is not installed: "
                          "pip install --no-deps ccexam==1.0.0") from None
    import torch

    model = MNISTNet(28)
    path = os.path.join(os.path.dirname(ccexam.__file__), "weights", "mnist.pth")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def mnist_input(images: np.ndarray):
    """(N, 28, 28) images in [0, 1] as the normalized (N, 1, 28, 28) tensor ccexam's
    network expects."""
    import torch

    x = (np.asarray(images, np.float32) - MNIST_MEAN) / MNIST_STD
    return torch.from_numpy(x.reshape(-1, 1, 28, 28))


def train(model, X, y, epochs: int = 10, lr: float = 3e-3, batch_size: int = 64,
          seed: int = 0):
    """Train a PyTorch classifier with Adam and cross-entropy, shuffling with `seed`, so
    that a baseline is the same on every run on a machine; returns it in eval mode."""
    import torch
    from torch import nn

    opt = torch.optim.Adam(model.parameters(), lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    return model.eval()
