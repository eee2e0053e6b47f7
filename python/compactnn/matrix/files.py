"""Atomic file writes, shared by matrix and model files."""
from __future__ import annotations

import os
import tempfile


def atomic_write(path, parts) -> None:
    """Write the byte strings `parts` to `path`: an existing file is replaced only once the
    new one is complete.  The file gets the permissions a new file would (or keeps the old
    file's)."""
    path = os.fsdecode(os.fspath(path))
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".compactnn-")
    try:
        with os.fdopen(fd, "wb") as f:
            for p in parts:
                f.write(p)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
