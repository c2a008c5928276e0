"""Forward+backward time and peak memory of the classification losses.

Compares `rlo`, `rlo-convex`, `focal`, `F.cross_entropy` and the naive softmax-gather-pow
form of RLO on logits [8192, C], measured in one process, and prints a markdown table with
ratios to cross-entropy. Usage:

    python benchmarks/bench_losses.py [--classes 10 1000 50272] [--repeats 20] [--device cpu]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import tracemalloc

import torch
import torch.nn.functional as F

from rlo_core.losses import focal_loss, rlo_convex_loss, rlo_loss


def naive_rlo(logits, target, k=3.0, m=3.0):
    p = torch.softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)
    return (m * (1 - p.pow(1 / k))).mean()


LOSSES = {
    "cross_entropy": lambda z, y: F.cross_entropy(z, y),
    "rlo": lambda z, y: rlo_loss(z, y, k=3, m=3),
    "rlo-convex": lambda z, y: rlo_convex_loss(z, y, k=3),
    "focal": lambda z, y: focal_loss(z, y, alpha=0.25, gamma=3),
    "naive softmax-pow rlo": naive_rlo,
}


def time_once(fn, logits, target, device) -> float:
    logits.grad = None
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn(logits, target).backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def peak_memory(fn, logits, target, device) -> float:
    """Peak bytes allocated during forward+backward beyond the inputs (MiB)."""
    logits.grad = None
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn(logits, target).backward()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    # On the CPU, torch's allocator is not traced; use the profiler's memory accounting.
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn(logits, target).backward()
    peak, current = 0, 0
    events = sorted((e for e in prof.events() if e.cpu_memory_usage),
                    key=lambda e: e.time_range.start)
    for event in events:
        current += event.cpu_memory_usage
        peak = max(peak, current)
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 1000, 50272])
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    tracemalloc.stop()

    print(f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} "
          f"threads, torch {torch.__version__}, device {device}")
    print("| logits | loss | median ms | ratio to CE | peak MiB |")
    print("| --- | --- | --- | --- | --- |")
    for classes in args.classes:
        generator = torch.Generator().manual_seed(0)
        logits = torch.randn(args.batch, classes, generator=generator).to(device)
        logits.requires_grad_(True)
        target = torch.randint(0, classes, (args.batch,), generator=generator).to(device)
        repeats = args.repeats if classes <= 1000 else max(3, args.repeats // 4)
        for fn in LOSSES.values():
            time_once(fn, logits, target, device)  # warm-up
        # Interleave the losses within each repeat so load changes hit all of them alike.
        times: dict[str, list[float]] = {name: [] for name in LOSSES}
        for _ in range(repeats):
            for name, fn in LOSSES.items():
                times[name].append(time_once(fn, logits, target, device))
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, fn in LOSSES.items():
            ratio = medians[name] / medians["cross_entropy"]
            memory = peak_memory(fn, logits, target, device)
            print(f"| [{args.batch}, {classes}] | {name} | {medians[name] * 1e3:.2f} | "
                  f"{ratio:.2f}x | {memory:.0f} |")


if __name__ == "__main__":
    main()
