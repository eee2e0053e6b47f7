"""Telling model files apart and opening them for the command line."""
from __future__ import annotations

import os
import zipfile

from ..model import file_format

MATRIX_MAGIC = b"\x89CNN\r\n\x1a\n"


class UserError(Exception):
    """A mistake in what the user asked for: the CLI prints it as one line."""


def kind(path) -> str:
    """"model" (compactnn model file), "matrix" (one compressed matrix), "keras" (.keras
    archive) or "torch" (anything else: a file saved by torch.save)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UserError(f"no such file: {path}")
    if os.path.isdir(path):
        raise UserError(f"{path} is a directory, not a model file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == file_format.MAGIC:
        return "model"
    if head == MATRIX_MAGIC:
        return "matrix"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if {"config.json", "model.weights.h5"} <= set(z.namelist()):
                return "keras"
    return "torch"


def keras_module():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras  # noqa: F401

        import compactnn.keras as cnk
    except ImportError as e:
        raise UserError(f"this is a Keras model; Keras is needed: pip install keras "
                        f"({e})") from None
    return cnk


def torch_module():
    try:
        import compactnn.torch as cnt
    except ImportError:
        raise UserError("this is a PyTorch model; PyTorch is needed: "
                        "pip install torch==2.13.0") from None
    return cnt


def load_torch_whole(path):
    """A model saved whole with torch.save(model).  This unpickles the file, which runs
    code it names: only for files the user trusts, which is why only the CLI does it, on
    the user's explicit request."""
    cnt = torch_module()
    import pickle

    import torch

    try:
        obj = torch.load(os.fspath(path), map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile,
            AttributeError, ModuleNotFoundError, ValueError) as e:
        raise UserError(f"{path} is not a PyTorch model saved with torch.save(model), a "
                        f".keras file or a compactnn file: {type(e).__name__}: {e}") from None
    if isinstance(obj, dict):
        raise UserError(f"{path} holds a state dict, not a whole model: save the model "
                        "itself (torch.save(model)) or compress it in Python with "
                        "compactnn.torch.compress_model")
    if not isinstance(obj, torch.nn.Module):
        raise UserError(f"{path} holds a {type(obj).__name__}, not a torch.nn.Module")
    return cnt, obj.eval()
