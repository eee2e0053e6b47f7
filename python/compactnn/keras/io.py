"""Loading `.keras` files that hold compressed layers."""
from __future__ import annotations

import os
import zipfile

import keras

from ..matrix.formats import FormatError


def load(path, **kwargs):
    """keras.saving.load_model for a `.keras` file, with the compressed layers registered;
    a file that is not a valid Keras archive, or whose matrices are invalid, raises
    compactnn.FormatError (a missing file FileNotFoundError)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if not zipfile.is_zipfile(path):
        raise FormatError(f"{path} is not a .keras file (not a zip archive)")
    try:
        return keras.saving.load_model(path, **kwargs)
    except FormatError:
        raise
    except Exception as e:  # Keras reports a damaged archive in many ways
        raise FormatError(f"{path} could not be loaded as a Keras model: "
                          f"{type(e).__name__}: {e}") from None
