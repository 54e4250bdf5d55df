#!/usr/bin/python3
"""Where the training time of the HOC model goes, per operator (CPU), with torch.profiler.

The model and the step mirror the native addon (native/models.cc, native/trainer.cc) on the same
libtorch (Debian's python3-torch 1.13 = the libtorch the addon links):
  - HOC block, fused: conv2d(cat[x, x*x], cat[w, w_sq], b + b_sq, padding 1) -> BN -> ReLU -> maxpool 2;
    blocks 3->16->32, then flatten, dense 2048->64 + ReLU, dropout 0.5, dense 64->1;
  - channels-last (NHWC) conv weights and inputs, the TS config's default;
  - data resident as uint8 N x 3 x 32 x 32; per batch index_select, .float() * (1/255), channels-last;
  - BCE-with-logits, grads set to None, Adam lr 1e-3 (single-tensor, as libtorch's C++ Adam);
  - the loop's per-step loss / accuracy sums;
  - OMP_NUM_THREADS set to the available CPUs before torch loads, unless set (as src/native.ts);
  - glibc malloc kept from returning memory (mallopt M_MMAP_THRESHOLD 256 MiB, M_TRIM_THRESHOLD
    1 GiB), as native/addon.cc does at load unless MALLOC_*_ is set (--glibc-defaults turns it off).
Differences: Python issues the ops (a few us each; the addon's loop is C++), and the profiler adds
per-op overhead; the unprofiled step time is printed for comparison. Data are random uint8 (the
cost of these ops does not depend on pixel values).

Usage: /usr/bin/python3 bench/profile_hoc.py [--threads 2] [--batch 32] [--steps 150] [--rows 25] [--unfused] [--nchw]
Needs python3-torch (apt-get install python3-torch); about 10-20 s on 2 cores.
"""
import argparse
import ctypes
import os
import time
from collections import defaultdict

# As src/native.ts before it loads the addon: OMP_NUM_THREADS = the CPUs available, unless set.
# OpenBLAS (Debian's pthread variant here) and OpenMP read it when they load; the per-session
# thread count (--threads, torch.set_num_threads) is set afterwards.
os.environ.setdefault("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.profiler import ProfilerActivity, profile, record_function  # noqa: E402


class Block(nn.Module):
    def __init__(self, cin, cout, fused):
        super().__init__()
        self.fused = fused
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv_sq = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        if self.fused:
            w = torch.cat([self.conv.weight, self.conv_sq.weight], 1)
            b = self.conv.bias + self.conv_sq.bias
            y = F.conv2d(torch.cat([x, x * x], 1), w, b, 1, 1)
        else:
            y = self.conv(x) + self.conv_sq(x * x)
        return F.max_pool2d(F.relu(self.bn(y)), 2)


class HocNet(nn.Module):
    def __init__(self, fused=True):
        super().__init__()
        self.block1 = Block(3, 16, fused)
        self.block2 = Block(16, 32, fused)
        self.dense1 = nn.Linear(32 * 8 * 8, 64)
        self.dropout = nn.Dropout(0.5)
        self.out = nn.Linear(64, 1)

    def forward(self, x):
        x = self.block2(self.block1(x)).flatten(1)
        return self.out(self.dropout(F.relu(self.dense1(x)))).view(-1)


# Forward: category of the outermost aten op under the 'forward' scope. Backward: of the autograd
# node ("autograd::engine::evaluate_function: <Node>").
FORWARD = {
    "aten::conv2d": "conv forward",
    "aten::batch_norm": "batchnorm forward",
    "aten::max_pool2d": "max-pool forward",
    "aten::relu": "relu forward",
    "aten::mul": "x*x (HOC square) forward",
    "aten::cat": "HOC concat [x, x*x] and [w, w_sq] forward",
    "aten::add": "HOC bias sum / unfused conv sum forward",
    "aten::linear": "dense forward",
    "aten::dropout": "dropout forward",
    "aten::flatten": "view/flatten",
    "aten::view": "view/flatten",
}
BACKWARD = {
    "ConvolutionBackward0": "conv backward",
    "NativeBatchNormBackward0": "batchnorm backward",
    "MaxPool2DWithIndicesBackward0": "max-pool backward",
    "ReluBackward0": "relu backward",
    "MulBackward0": "x*x (HOC square) backward",
    "CatBackward0": "HOC concat backward",
    "AddBackward0": "HOC bias sum / unfused conv sum backward",
    "AddmmBackward0": "dense backward",
    "TBackward0": "dense backward",
    "MmBackward0": "dense backward",
    "NativeDropoutBackward0": "dropout backward",
    "BinaryCrossEntropyWithLogitsBackward0": "loss backward",
    "torch::autograd::AccumulateGrad": "gradient accumulation (AccumulateGrad)",
}
SCOPES = {
    "data": "data: index_select + uint8->float*1/255 + channels-last",
    "loss": "loss forward (BCE with logits)",
    "zero_grad": "zero_grad (set to None)",
    "optimizer": "Adam step",
    "bookkeeping": "loss/accuracy sums",
}


def blas_libraries():
    """BLAS libraries mapped into this process, resolved (Debian's libblas.so.3 is an alternative)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                i = line.find("/")
                if i >= 0 and "blas" in os.path.basename(line[i:].strip()).lower():
                    libs.add(os.path.realpath(line[i:].strip()))
    except OSError:
        pass
    return ", ".join("/".join(x.split("/")[-2:]) for x in sorted(libs)) or "?"


def category(ev):
    chain = []
    e = ev
    while e is not None:
        chain.append(e)
        e = e.cpu_parent
    chain.reverse()  # root first
    names = [c.name for c in chain]
    for n in names:
        if n.startswith("autograd::engine::evaluate_function: "):
            node = n.split(": ", 1)[1]
            return BACKWARD.get(node, f"backward: {node}")
    for i, n in enumerate(names):
        if n == "forward":
            if i + 1 < len(names):
                return FORWARD.get(names[i + 1], f"forward: {names[i + 1]}")
            return "forward (Python/scope self time)"
        if n in SCOPES:
            return SCOPES[n]
        if n.startswith("Optimizer.step#") or n.startswith("Optimizer.zero_grad#"):
            return "Adam step" if "step" in n else SCOPES["zero_grad"]
    return "backward engine / other" if "backward" in names else f"other: {names[0]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=150, help="profiled steps (and as many unprofiled, timed)")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--max-seconds", type=float, default=15, help="stop the timed and the profiled loop after this long")
    ap.add_argument("--rows", type=int, default=25)
    ap.add_argument("--images", type=int, default=8192, help="resident uint8 images the batches are drawn from")
    ap.add_argument("--unfused", action="store_true", help="two convs, conv(x) + conv'(x*x)")
    ap.add_argument("--nchw", action="store_true", help="no channels-last")
    ap.add_argument("--glibc-defaults", action="store_true", help="leave glibc malloc's thresholds alone")
    a = ap.parse_args()

    malloc = "glibc defaults"
    if not a.glibc_defaults:
        # As native/addon.cc: without this, every step returns and re-faults multi-MB activation buffers.
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        set_ = []
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ and libc.mallopt(M_MMAP_THRESHOLD, 256 << 20):
            set_.append("mmap threshold 256 MiB")
        if "MALLOC_TRIM_THRESHOLD_" not in os.environ and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30):
            set_.append("trim threshold 1 GiB")
        malloc = "malloc " + (", ".join(set_) if set_ else "from MALLOC_*_ env")

    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    channels_last = not a.nchw
    model = HocNet(fused=not a.unfused)
    if channels_last:
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 4:
                    p.data = p.data.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=False)
    images = torch.randint(0, 256, (a.images, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 2, (a.images,)).float()
    order = torch.randperm(a.images)
    sums = [torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.long)]  # loss sum, correct
    model.train()
    cursor = [0]

    def step():
        start = cursor[0]
        if start + a.batch > a.images:
            start = 0
        cursor[0] = start + a.batch
        idx = order[start : start + a.batch]
        with record_function("data"):
            x = images.index_select(0, idx).to(torch.float).mul_(1.0 / 255.0)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            y = labels.index_select(0, idx)
        with record_function("forward"):
            logits = model(x)
        with record_function("loss"):
            loss = F.binary_cross_entropy_with_logits(logits, y)
        with record_function("zero_grad"):
            for p in model.parameters():
                p.grad = None
        with record_function("backward"):
            loss.backward()
        with record_function("optimizer"):
            opt.step()
        with record_function("bookkeeping"):
            sums[0] += loss.detach().to(torch.float64) * a.batch
            sums[1] += ((logits.detach() >= 0) == (y > 0.5)).sum()

    for _ in range(a.warmup):
        step()

    def run(steps):
        t0 = time.perf_counter()
        n = 0
        while n < steps and (n == 0 or time.perf_counter() - t0 < a.max_seconds):
            step()
            n += 1
        return n, (time.perf_counter() - t0) / n

    # Unprofiled halves before and after the profiled run: the machine's speed drifts.
    before = run(max(1, a.steps // 2))
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        steps, profiled = run(a.steps)
    after = run(max(1, a.steps // 2))
    plain_steps = before[0] + after[0]
    plain = (before[0] * before[1] + after[0] * after[1]) / plain_steps

    layout = "NCHW" if a.nchw else "channels-last"
    openblas = f", OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}" if "OPENBLAS_NUM_THREADS" in os.environ else ""
    print(
        f"HOC ({'unfused' if a.unfused else 'fused'}, {layout}), batch {a.batch}, {a.threads} threads (OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}{openblas}; BLAS {blas_libraries()}), torch {torch.__version__}, {malloc}; "
        f"{plain_steps} steps: {plain * 1e3:.2f} ms/step unprofiled ({before[1] * 1e3:.2f} before, {after[1] * 1e3:.2f} after the profiled run) = {a.batch / plain:.0f} img/s "
        f"(= {90000 / a.batch * plain:.1f} s per 90k-image epoch); {steps} steps: {profiled * 1e3:.2f} ms/step under the profiler; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
    if steps < a.steps or plain_steps < 2 * (a.steps // 2):
        print(f"(stopped at --max-seconds {a.max_seconds:g}: the machine is slow or busy; figures are per step)\n")

    events = [e for e in prof.events() if e.device_type.name == "CPU"]
    cats = defaultdict(float)
    for e in events:
        cats[category(e)] += e.self_cpu_time_total
    total = sum(cats.values())
    print("### Self CPU time by operator family (per step)\n")
    print("| operator family | ms/step | share |")
    print("|---|---:|---:|")
    small = [(n, us) for n, us in cats.items() if us < 0.005 * total]
    for name, us in sorted(cats.items(), key=lambda kv: -kv[1]):
        if us >= 0.005 * total:
            print(f"| {name} | {us / steps / 1e3:.3f} | {100 * us / total:.1f}% |")
    if small:
        us = sum(u for _, u in small)
        print(f"| {len(small)} smaller entries (each < 0.5%) | {us / steps / 1e3:.3f} | {100 * us / total:.1f}% |")
    print(f"| **total (profiled thread)** | {total / steps / 1e3:.3f} | 100% |\n")

    print(f"### Top {a.rows} ops by self CPU time ({steps} steps)\n")
    rows = sorted(prof.key_averages(), key=lambda k: -k.self_cpu_time_total)
    rows = [r for r in rows if r.key not in ("data", "forward", "loss", "zero_grad", "backward", "optimizer", "bookkeeping")]
    print("| op | calls/step | self ms/step | self share | total ms/step |")
    print("|---|---:|---:|---:|---:|")
    for r in rows[: a.rows]:
        print(
            f"| {r.key} | {r.count / steps:.1f} | {r.self_cpu_time_total / steps / 1e3:.3f} | "
            f"{100 * r.self_cpu_time_total / total:.1f}% | {r.cpu_time_total / steps / 1e3:.3f} |"
        )


if __name__ == "__main__":
    main()
