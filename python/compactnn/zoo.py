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
