"""Peak memory and time of the causal-LM loss, chunked versus in one piece, at OPT's vocabulary.

For each setting, a fresh worker process allocates logits [tokens, vocab] (requiring grad),
then runs `causal_lm_loss` forward and backward with the rooted loss (k=5, m=5). Reported:

- extra peak memory: on CPU, the growth of the process's peak resident set size
  (ru_maxrss) over its resident size once the logits exist; on CUDA,
  max_memory_allocated minus the memory allocated once the logits exist. Either way it
  counts what the loss adds: saved tensors, temporaries and the gradient of the logits.
- time: median of 3 forward+backward passes after the measured one.

Usage:

    python benchmarks/bench_lm_loss.py [--tokens 1024 4096] [--vocab 50272] \\
        [--chunk-tokens 1024] [--dtypes float32 bfloat16] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time


def worker(tokens: int, vocab: int, chunk_tokens: int, dtype_name: str, device: str) -> dict:
    import psutil
    import torch

    from rlo_core.lm.loss import build_criterion, causal_lm_loss

    dtype = getattr(torch, dtype_name)
    criterion = build_criterion("rlo", k=5, m=5)
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(1, tokens, vocab, generator=generator).to(device=device, dtype=dtype)
    logits.requires_grad_(True)
    labels = torch.randint(0, vocab, (1, tokens), generator=generator).to(device)

    def step() -> None:
        loss = causal_lm_loss(logits, labels, criterion, chunk_tokens=chunk_tokens or None)
        loss.backward()
        logits.grad = None

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        torch.cuda.synchronize()
        extra = torch.cuda.max_memory_allocated() - base
    else:
        base = psutil.Process().memory_info().rss
        step()
        # Linux reports ru_maxrss in KiB.
        extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times = []
    for _ in range(3):
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    logits_mib = logits.numel() * logits.element_size() / 2**20
    return {"extra_mib": max(extra, 0) / 2**20, "time_s": statistics.median(times),
            "logits_mib": logits_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--vocab", type=int, default=50272)
    parser.add_argument("--chunk-tokens", type=int, default=1024)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tokens, chunk, dtype = args.worker.split(",")
        print(json.dumps(worker(int(tokens), args.vocab, int(chunk), dtype, args.device)))
        return

    print(f"Causal-LM loss (rlo, k=5, m=5), vocabulary {args.vocab:,}, device {args.device}, "
          f"{platform.processor() or platform.machine()}, torch in a fresh process per row.\n")
    print("| tokens | logits dtype | logits MiB | loss | extra peak MiB | time s |")
    print("| ---: | --- | ---: | --- | ---: | ---: |")
    for tokens in args.tokens:
        for dtype in args.dtypes:
            for label, chunk in (("one piece", 0), (f"chunks of {args.chunk_tokens}", args.chunk_tokens)):
                command = [sys.executable, __file__, "--worker", f"{tokens},{chunk},{dtype}",
                           "--vocab", str(args.vocab), "--device", args.device]
                output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                row = json.loads(output.strip().splitlines()[-1])
                print(f"| {tokens} | {dtype} | {row['logits_mib']:.0f} | {label} | "
                      f"{row['extra_mib']:.0f} | {row['time_s']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
