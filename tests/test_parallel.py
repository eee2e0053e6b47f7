"""The persistent thread pool: products stay correct across fork, from many Python threads,
and with more threads asked for than there are cores."""
import multiprocessing
import os
import subprocess
import sys

import numpy as np
import pytest

import compactnn as cn
from helpers.matrices import random_quantized


def _product_in_child(queue):
    rng = np.random.default_rng(1)
    W = random_quantized(rng, 1024, 512, 16)
    m = cn.IndexMap.from_dense(W)
    x = rng.standard_normal(512).astype(np.float32)
    queue.put(bool(np.array_equal(m.dot(x, threads=2), m.dot(x, threads=1))))


@pytest.mark.emulated
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_products_after_fork():
    """A forked child has none of the parent's pool workers; its products start their own."""
    rng = np.random.default_rng(1)
    m = cn.IndexMap.from_dense(random_quantized(rng, 1024, 512, 16))
    m.dot(rng.standard_normal(512).astype(np.float32), threads=2)  # the parent's workers exist
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_product_in_child, args=(queue,), daemon=True)
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0, "the child hung or crashed"
    assert queue.get(timeout=5)


@pytest.mark.emulated
def test_many_threads_and_repeated_calls_agree():
    rng = np.random.default_rng(2)
    W = random_quantized(rng, 2000, 300, 8, density=0.5)
    X = rng.standard_normal((300, 40)).astype(np.float32)
    for fmt in (cn.IndexMap, cn.HAM, cn.HCSR):
        m = fmt.from_dense(W)
        ref = m.dot(X, threads=1)
        for _ in range(20):
            for t in (2, 5, 64):
                np.testing.assert_array_equal(m.dot(X, threads=t), ref)


def test_products_on_pytorchs_openmp_threads_match_the_pool():
    """Once compactnn.torch is imported, products run on PyTorch's OpenMP threads (where
    PyTorch uses OpenMP); results are the same as on compactnn's own pool."""
    import torch  # noqa: F401

    import compactnn.torch  # noqa: F401
    from compactnn import _core

    if "OpenMP" not in torch.__config__.parallel_info():
        pytest.skip("this PyTorch build does not use OpenMP")
    assert cn.cpu_info()["thread_runtime"] == "openmp"
    rng = np.random.default_rng(4)
    W = random_quantized(rng, 3000, 700, 16, density=0.4)
    X = rng.standard_normal((700, 9)).astype(np.float32)
    libs = [compactnn.torch.ops.openmp_library]
    try:
        for fmt in (cn.IndexMap, cn.HAM, cn.HCSR):
            m = fmt.from_dense(W)
            on_openmp = [m.dot(X[:, 0], threads=2), m.dot(X, threads=3)]
            assert _core.use_openmp("")
            assert cn.cpu_info()["thread_runtime"] == "pool"
            on_pool = [m.dot(X[:, 0], threads=2), m.dot(X, threads=3)]
            assert _core.use_openmp(libs[0])
            for a, b in zip(on_openmp, on_pool):
                np.testing.assert_array_equal(a, b)
    finally:
        _core.use_openmp(libs[0])
    assert not _core.use_openmp("/nonexistent/libgomp.so.1")
    assert not _core.use_openmp("libc.so.6")  # loaded, but not an OpenMP runtime


SHARED_RUNTIME = r"""
import os, sys
import sklearn.utils  # scikit-learn's wheels load an OpenMP runtime of their own
import torch
import compactnn.torch.ops as ops
maps = open("/proc/self/maps").read()
print(sum(1 for lib in {l.split()[-1] for l in maps.splitlines() if "libgomp" in l}))
print(ops.openmp_library)
print(os.path.dirname(os.path.realpath(torch.__file__)))
"""


def test_products_share_pytorchs_own_openmp_runtime():
    """With another package's OpenMP runtime loaded first, the products still share
    PyTorch's (sharing scikit-learn's left two sets of threads spinning: 8 ms a product)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    if "OpenMP" not in torch.__config__.parallel_info():
        pytest.skip("this PyTorch build does not use OpenMP")
    out = subprocess.run([sys.executable, "-c", SHARED_RUNTIME], capture_output=True,
                         text=True, check=True).stdout.split("\n")
    loaded, library, home = int(out[0]), out[1], out[2]
    assert library != "None", f"no runtime shared with {loaded} loaded"
    assert os.path.realpath(library).startswith(home + os.sep)


REFUSED = r"""
import resource, sys
import numpy as np
import compactnn as cn
from helpers.proc_status import status

rng = np.random.default_rng(0)
m = cn.IndexMap.from_dense(rng.integers(-8, 8, (4096, 2048)).astype(np.float32))
x = rng.standard_normal(2048).astype(np.float32)
ref = m.dot(x, threads=1)
threads = status("Threads:")
# A new thread's stack is mapped at its start: with the address space capped just above
# what is in use, the system refuses `stacks` threads' worth (0: the first one).
soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
stack = soft if 0 < soft < 2**40 else 32 << 20  # glibc's stack size for new threads
room = int((float(sys.argv[1]) + 0.5) * stack)
resource.setrlimit(resource.RLIMIT_AS, (status("VmSize:") * 1024 + room, resource.RLIM_INFINITY))
for _ in range(3):
    assert np.array_equal(m.dot(x, threads=3), ref)
print(status("Threads:") - threads)
"""


@pytest.mark.parametrize("stacks", [0, 1])
def test_products_when_the_system_refuses_threads(stacks):
    """If the pool cannot start a worker (none, or one of two), the product runs on the
    calling thread instead of aborting the interpreter."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-c", REFUSED, str(stacks)], capture_output=True,
                       text=True, timeout=120, cwd=os.path.dirname(__file__))
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout) == stacks  # the workers that did start, and no more
