"""A direct convolution in float64, the reference the convolution tests compare with."""
import numpy as np


def conv_ref(x, w, b, stride, pad, dil):
    """y (n, o, ho, wo) = w (o, c, kh, kw) convolved with x (n, c, h, w) + b (o)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (pad[0],) * 2, (pad[1],) * 2])
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    y = np.zeros((n, o, ho, wo))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i * dil[0]:i * dil[0] + stride[0] * ho:stride[0],
                       j * dil[1]:j * dil[1] + stride[1] * wo:stride[1]]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return y + b[None, :, None, None]
