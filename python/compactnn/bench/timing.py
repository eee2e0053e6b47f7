"""Timing and the machine a measurement ran on, for every benchmark and the demo."""
from __future__ import annotations

import os
import platform
import time
from typing import Callable

import numpy as np

from .. import _core


def median_time(f: Callable[[], object], min_repeat: int = 5, budget: float = 1.0,
                max_calls: int = 50) -> float:
    """Median wall time of f() after one warm-up call, over at least `min_repeat` calls and
    at most `max_calls` once `budget` seconds have passed."""
    f()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_repeat or (time.perf_counter() - start < budget
                                      and len(times) < max_calls):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def read_bandwidth(nbytes: int = 1 << 28) -> float:
    """Bytes per second of a parallel sum over a float32 array (a STREAM-like read)."""
    a = np.ones(nbytes // 4, np.float32)
    t = median_time(lambda: _core.parallel_sum(a), min_repeat=5, budget=0.5)
    return a.nbytes / t


def blas_warning() -> str | None:
    """A warning when the environment makes numpy run an older BLAS kernel."""
    set_vars = [f"{v}={os.environ[v]}" for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                if v in os.environ]
    if not set_vars:
        return None
    return (f"warning: {' '.join(set_vars)} is set: numpy runs an older OpenBLAS kernel, which "
            "flatters every ratio against numpy; measure with it unset (env -u ...)")


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    isa = _core.isa() + ("+vbmi" if _core.isa() == "avx512" and _core.vbmi() else "")
    return (f"{cpu}, {os.cpu_count()} logical CPUs; kernels: {isa}, "
            f"default threads: {_core.num_threads()}")
