"""Reading trained weights from files other packages ship, without their frameworks."""
from __future__ import annotations

import collections
import pickle
import zipfile

import numpy as np

_STORAGE = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


def load_torch_state_dict(path) -> dict[str, np.ndarray]:
    """The tensors of a zip-format PyTorch state_dict as numpy arrays, without torch.

    Only tensors, their storages and OrderedDict are rebuilt; any other object in the
    pickle is refused, so the file cannot run code."""
    with zipfile.ZipFile(path) as z:
        pkl = next((n for n in z.namelist() if n.endswith("/data.pkl")), None)
        if pkl is None:
            raise ValueError(f"{path} is not a zip-format PyTorch file (no data.pkl)")
        prefix = pkl[: -len("data.pkl")]

        class Storage:
            def __init__(self, dtype, key):
                self.dtype, self.key = dtype, key

        def rebuild(storage, offset, size, stride, *_):
            buf = np.frombuffer(z.read(f"{prefix}data/{storage.key}"), dtype=storage.dtype)
            need = offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1 if size else offset + 1
            if offset < 0 or need > len(buf) or any(st < 0 for st in stride):
                raise ValueError(f"tensor outside its storage in {path}")
            view = np.lib.stride_tricks.as_strided(
                buf[offset:], tuple(size), tuple(s * buf.itemsize for s in stride))
            return view.copy()

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                    return rebuild
                if module == "torch" and name in _STORAGE:
                    return _STORAGE[name]
                if (module, name) == ("collections", "OrderedDict"):
                    return collections.OrderedDict
                raise pickle.UnpicklingError(f"refusing {module}.{name} in {path}")

            def persistent_load(self, pid):  # ('storage', type, key, location, numel)
                return Storage(pid[1], pid[2])

        with z.open(pkl) as f:
            return dict(Unpickler(f).load())
