"""PyTorch models: trained ones that installable packages ship (nothing is downloaded), and
untrained architectures of the compression literature (LeNet-300-100, LeNet-5, a VGG-style
network, DeepDTA) with `train` and `concordance_index` to fit and score them.  torch is
imported only when a model is built."""
from __future__ import annotations

import functools
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
          seed: int = 0, loss: str = "ce"):
    """Train a PyTorch model with Adam, shuffling with `seed`, so that a baseline is the
    same on every run on a machine; returns it in eval mode.

    loss="ce": a classifier, cross-entropy of its (N, classes) logits against int64 labels;
    loss="mse": a regressor, mean squared error of its (N,) outputs against float targets.
    Its last nn.Linear (the output) starts with weights 0 and bias the targets' mean: the
    model starts by predicting the mean, the layers learn the deviations from it, and
    pruning their weights pulls the predictions towards the mean rather than towards 0.
    X is a tensor, or a tuple of tensors (each indexed by the batch, the tuple passed to the
    model whole, as DeepDTA takes its drugs and proteins)."""
    import torch
    from torch import nn

    losses = {"ce": nn.functional.cross_entropy, "mse": nn.functional.mse_loss}
    if loss not in losses:
        raise ValueError(f"loss must be one of {sorted(losses)}, got {loss!r}")
    criterion = losses[loss]
    if loss == "mse":
        out = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
        if not out or out[0].bias is None or out[0].out_features != 1:
            raise ValueError("loss='mse' needs a model whose last nn.Linear has one output "
                             "and a bias")
        with torch.no_grad():
            out[0].weight.zero_()
            out[0].bias.fill_(float(y.float().mean()))
    opt = torch.optim.Adam(model.parameters(), lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch_size):
            idx = perm[i:i + batch_size]
            xb = tuple(x[idx] for x in X) if isinstance(X, (tuple, list)) else X[idx]
            opt.zero_grad()
            criterion(model(xb), y[idx]).backward()
            opt.step()
    return model.eval()


# -- architectures ---------------------------------------------------------------------------
def lenet_300_100(n_classes: int = 10):
    """LeNet-300-100 (LeCun et al. 1998; Deep Compression's first model): 784-300-100-10
    fully connected with ReLU, 266,610 parameters.  Input (N, 1, 28, 28), output (N, n_classes)
    logits."""
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                         nn.ReLU(), nn.Linear(100, n_classes))


def lenet5(n_classes: int = 10, channels=(6, 16), fc=(120, 84), padding: int = 2):
    """LeNet-5 with ReLU and max pooling: two 5 x 5 convolutions of `channels`, each
    followed by a 2 x 2 max pool, then fully connected layers of the widths in `fc`.  The
    defaults are LeCun's (the first convolution padded so 28 x 28 inputs give LeNet's 32 x 32
    geometry), 61,706 parameters; channels=(20, 50), fc=(500,), padding=0 is Caffe's LeNet,
    the one Deep Compression reports (431,080 parameters).  Input (N, 1, 28, 28), output
    (N, n_classes) logits."""
    from torch import nn

    if len(channels) != 2 or min(channels) < 1 or min(fc, default=1) < 1 or padding < 0:
        raise ValueError(f"lenet5 needs two positive channel counts, positive FC widths and "
                         f"padding >= 0; got channels={channels}, fc={fc}, padding={padding}")
    side = ((28 + 2 * padding - 4) // 2 - 4) // 2  # 4 or more for padding >= 0
    layers = [nn.Conv2d(1, channels[0], 5, padding=padding), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(channels[0], channels[1], 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
    prev = channels[1] * side * side
    for width in fc:
        layers += [nn.Linear(prev, width), nn.ReLU()]
        prev = width
    return nn.Sequential(*layers, nn.Linear(prev, n_classes))


def vgg_style(channels=(16, 32, 64), fc=(512, 512), n_classes: int = 10, in_channels: int = 1,
              image: int = 28):
    """A small VGG: per width in `channels` a block of two 3 x 3 convolutions (ReLU) and a
    2 x 2 max pool, then fully connected layers of the widths in `fc` (ReLU, dropout 0.5),
    which hold most of the weights as in VGG-16.  Input (N, in_channels, image, image),
    output (N, n_classes) logits; 635,002 parameters at the defaults."""
    from torch import nn

    side = image // 2 ** len(channels)  # each pool halves the side, rounding down
    if side < 1:
        raise ValueError(f"{len(channels)} pools leave nothing of a {image} x {image} image")
    layers, prev = [], in_channels
    for width in channels:
        layers += [nn.Conv2d(prev, width, 3, padding=1), nn.ReLU(),
                   nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        prev = width
    layers.append(nn.Flatten())
    prev = prev * side * side
    for width in fc:
        layers += [nn.Linear(prev, width), nn.ReLU(), nn.Dropout(0.5)]
        prev = width
    layers.append(nn.Linear(prev, n_classes))
    return nn.Sequential(*layers)


@functools.cache
def _deepdta_class():
    """The DeepDTA module class, made on first use so that this module imports without torch."""
    import torch
    from torch import nn

    def branch(vocab, embed, filters, k):
        # Conv1d wants (N, channels, length): the embedding's (N, L, embed) is transposed in
        # forward; the global max pool over positions is there too.
        return nn.Embedding(vocab, embed, padding_idx=0), nn.Sequential(
            nn.Conv1d(embed, filters, k), nn.ReLU(),
            nn.Conv1d(filters, 2 * filters, k), nn.ReLU(),
            nn.Conv1d(2 * filters, 3 * filters, k), nn.ReLU())

    class DeepDTA(nn.Module):
        """DeepDTA (Öztürk et al. 2018): a convolutional branch for the SMILES and one for
        the protein, max pooled, concatenated and regressed by fully connected layers."""

        def __init__(self, smiles_vocab, protein_vocab, filters, smiles_kernel,
                     protein_kernel, embed):
            super().__init__()
            self.smiles_embed, self.smiles_conv = branch(smiles_vocab, embed, filters,
                                                         smiles_kernel)
            self.protein_embed, self.protein_conv = branch(protein_vocab, embed, filters,
                                                           protein_kernel)
            self.head = nn.Sequential(
                nn.Linear(6 * filters, 1024), nn.ReLU(), nn.Dropout(0.1),
                nn.Linear(1024, 1024), nn.ReLU(), nn.Dropout(0.1),
                nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, 1))

        def forward(self, pair):
            drugs, proteins = pair
            d = self.smiles_conv(self.smiles_embed(drugs).transpose(1, 2)).amax(dim=2)
            p = self.protein_conv(self.protein_embed(proteins).transpose(1, 2)).amax(dim=2)
            return self.head(torch.cat([d, p], dim=1)).squeeze(1)

    return DeepDTA


def deepdta(smiles_vocab: int, protein_vocab: int, filters: int = 32, smiles_kernel: int = 4,
            protein_kernel: int = 8, embed: int = 128):
    """DeepDTA for drug-target affinity.  `model((drugs, proteins))` takes int64 tensors
    (N, SMILES_LEN) and (N, PROTEIN_LEN) of character codes (0 pads; datasets.kiba_sample's
    encoding, with vocabularies datasets.SMILES_VOCAB and PROTEIN_VOCAB) and returns the
    (N,) float32 predicted affinities."""
    return _deepdta_class()(smiles_vocab, protein_vocab, filters, smiles_kernel,
                            protein_kernel, embed)


# -- scores ----------------------------------------------------------------------------------
def concordance_index(y_true, y_pred) -> float:
    """DeepDTA's concordance index: over the pairs whose true values differ, the fraction
    the predictions order the same way, a tie in prediction counting 1/2; 0.0 when all true
    values are equal (as DeepDTA's get_cindex).  Exact, O(n^2) comparisons in row blocks."""
    y = np.asarray(y_true, np.float64).ravel()
    p = np.asarray(y_pred, np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{y.size} true values but {p.size} predictions")
    block = max(1, 4_000_000 // max(len(y), 1))  # about 4M comparisons (bools) at a time
    pairs = concordant = ties = 0
    for i in range(0, len(y), block):
        more = y[i:i + block, None] > y[None, :]  # pairs (i, j) with y_i > y_j
        pi = p[i:i + block, None]
        pairs += int(more.sum())
        concordant += int((more & (pi > p[None, :])).sum())
        ties += int((more & (pi == p[None, :])).sum())
    return (concordant + 0.5 * ties) / pairs if pairs else 0.0
