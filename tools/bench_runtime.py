"""The runtime's figures of docs/runtime.md: ccexam's MNIST CNN (70% pruned globally, cws
k=16, the fast objective) run by compactnn.runtime, by the compressed PyTorch model and,
for reference, the dense model by PyTorch and by ONNX Runtime (float32, its ONNX export),
side by side at batch 1 and 64 on the same inputs; then the peak resident memory of a fresh
process that loads the model and runs a batch of 64, for the runtime and for PyTorch.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python tools/bench_runtime.py [DIR]

Needs torch, onnx, onnxruntime and ccexam (`pip install --no-deps ccexam==1.0.0`).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import sys, numpy as np
kind, path, x = sys.argv[1], sys.argv[2], np.load(sys.argv[3])
if kind == "runtime":
    import compactnn.runtime as runtime
    y = runtime.load(path)(x)
else:
    import torch, compactnn.torch as cnt
    from ccexam.models import MNISTNet
    with torch.inference_mode():
        y = cnt.load(path, model=lambda: MNISTNet(28))(torch.from_numpy(x)).numpy()
# VmHWM: this process's peak resident set (ru_maxrss would carry the parent's over exec)
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(peak, "torch" in sys.modules)
"""

# One system per process, so that no system's threads (ONNX Runtime's and PyTorch's spin
# after a call) run while another is timed: in one process our runtime measured 20% slower.
# The process times `f` at the batch size each line of stdin names and prints the median ms.
TIMER = r"""
import sys, numpy as np
kind, work = sys.argv[1], sys.argv[2]
X = np.load(work + "/x.npy")
if kind == "onnxruntime":
    import onnxruntime as ort
    sess = ort.InferenceSession(work + "/ccexam.onnx", providers=["CPUExecutionProvider"])
    make = lambda b, x: (lambda: sess.run(None, {"x": x}))
elif kind.startswith("runtime"):
    import compactnn.runtime as runtime
    rt = runtime.load(work + "/ccexam.cnnm", forms="stored" if kind.endswith("stored") else "fast")
    make = lambda b, x: (lambda: rt(x))
else:
    import torch, compactnn.torch as cnt
    from ccexam.models import MNISTNet
    from compactnn.evaluation import zoo
    model = zoo.ccexam_mnist() if kind == "torch" else cnt.load(
        work + "/ccexam.cnnm", model=lambda: MNISTNet(28)).eval()
    def make(b, x):
        x = torch.from_numpy(x)
        def f():
            with torch.inference_mode():
                return model(x)
        return f
from compactnn.bench.timing import median_time
calls = {b: make(b, X[:b].copy()) for b in (1, 64)}
for line in sys.stdin:
    print(1e3 * median_time(calls[int(line)], budget=0.3, max_calls=2000), flush=True)
"""


ROUNDS = 5


def peak_rss_mb(kind: str, path: Path, x: Path) -> tuple[float, bool]:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path), str(x)], check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]) / 1024, out[1] == "True"


def main(work: Path) -> None:
    import torch

    import compactnn as cn
    import compactnn.runtime as runtime
    import compactnn.torch as cnt
    from compactnn.bench.timing import machine_line
    from compactnn.evaluation import zoo

    dense = zoo.ccexam_mnist()
    small = cnt.compress_model(dense, prune=0.7, prune_scope="global", k=16,
                               progress=False).eval()
    X = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model_path, onnx_path, x_path = work / "ccexam.cnnm", work / "ccexam.onnx", work / "x.npy"
    cnt.save(small, model_path, example_input=X[:2])
    torch.onnx.export(dense, (X[:1],), str(onnx_path), input_names=["x"],
                      dynamic_axes={"x": {0: "batch"}}, dynamo=False)
    np.save(x_path, X.numpy())
    rt = runtime.load(model_path)
    with torch.inference_mode():
        want = small(X).numpy()
    np.testing.assert_allclose(rt(X.numpy()), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())

    print(f"compactnn runtime, ccexam MNIST CNN: {machine_line()}; kernels "
          f"{cn.cpu_info()['isa']}\n")
    stored = runtime.load(model_path, forms="stored").graph.matrices
    changed = {n: f"{type(m).__name__} {m.nbytes:,} bytes" for n, m in rt.graph.matrices.items()
               if m.nbytes != stored[n].nbytes}
    print(f"runtime re-encodes at load: {changed or 'nothing'}\n")
    print("| system | bytes on disk | batch 1 ms | batch 64 ms |")
    print("|---|---:|---:|---:|")
    systems = [("PyTorch float32, eager", None, "torch"),
               ("ONNX Runtime float32", onnx_path.stat().st_size, "onnxruntime"),
               ("compactnn, compressed PyTorch modules", model_path.stat().st_size, "cnt"),
               ("compactnn.runtime, forms as stored", model_path.stat().st_size,
                "runtime-stored"),
               ("compactnn.runtime (numpy only; default forms)", model_path.stat().st_size,
                "runtime")]
    procs = {kind: subprocess.Popen([sys.executable, "-c", TIMER, kind, str(work)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _, _, kind in systems}
    # Rounds that take every system in turn, one at a time; a system's figure is its best
    # round's median (this 2-vCPU VM slows down for seconds at a time, which a single run
    # cannot tell apart).
    ms = {(kind, b): [] for _, _, kind in systems for b in (1, 64)}
    for _ in range(ROUNDS):
        for _, _, kind in systems:
            for b in (1, 64):
                procs[kind].stdin.write(f"{b}\n")
                procs[kind].stdin.flush()
                ms[kind, b].append(float(procs[kind].stdout.readline()))
    for p in procs.values():
        p.stdin.close()
        p.wait()
    for name, size, kind in systems:
        b1, b64 = min(ms[kind, 1]), min(ms[kind, 64])
        print(f"| {name} | {f'{size:,}' if size else '-'} | {b1:.3f} | {b64:.2f} |")
    print()
    for kind in ("runtime", "torch"):
        mb, imported = peak_rss_mb(kind, model_path, x_path)
        print(f"peak resident memory, load + batch 64, {kind}: {mb:.0f} MB "
              f"(torch imported: {imported})")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as d:
            main(Path(d))
