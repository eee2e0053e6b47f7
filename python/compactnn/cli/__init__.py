"""The `compactnn` command (also `python -m compactnn`)."""
from .main import main

__all__ = ["main"]
