"""Progress bars (tqdm) that appear only on work that lasts more than about two seconds."""
from __future__ import annotations


class _Silent:
    """Stands in for tqdm where it is not installed."""

    def __init__(self, iterable=None, **kw):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        pass

    def set_postfix(self, *a, **kw):
        pass

    def close(self):
        pass


def bar(iterable=None, *, disable: bool = False, **kw):
    """A tqdm bar, shown once its work has lasted 2 s."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = _Silent
    return tqdm(iterable, delay=2.0, disable=disable, dynamic_ncols=True, **kw)
