"""Peak memory and time of the causal-LM loss, chunked versus in one piece, at OPT's vocabulary.

Each row runs in a fresh worker process: forward and backward of `causal_lm_loss` with the
rooted loss (k=5, m=5) on [tokens, vocab] logits. Two set-ups:

- `logits`: the logits are a tensor that stays alive (requires grad), so the row shows what
  the loss itself adds: saved tensors, temporaries and the gradient of the logits.
- `head`: the logits come from an output layer (hidden [tokens, 768] times a [vocab, 768]
  weight, as in OPT-125m) inside the step and are dropped before backward, as in training.
  The chunked loss overwrites them with their gradient, as the Trainer hook does. The row
  then also counts the logits and the weight gradient.

On CPU, extra peak memory is the growth of the process's peak resident set size (ru_maxrss)
over its resident size before the step. On CUDA, it is max_memory_allocated minus the memory
allocated before the step. Time is the median of `--repeats` steps after the measured one.

Usage:

    python benchmarks/bench_lm_loss.py [--tokens 1024 4096] [--vocab 50272] \\
        [--chunk-tokens 512] [--dtypes float32 bfloat16] [--setups logits head] \\
        [--repeats 3] [--device cpu]
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


def worker(tokens: int, vocab: int, chunk_tokens: int, dtype_name: str, setup: str,
           device: str, repeats: int) -> dict:
    import psutil
    import torch
    import torch.nn.functional as F

    from rlo_core.lm.loss import build_criterion, causal_lm_loss

    dtype = getattr(torch, dtype_name)
    criterion = build_criterion("rlo", k=5, m=5)
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, vocab, (1, tokens), generator=generator).to(device)
    if setup == "head":
        hidden = torch.randn(1, tokens, 768, generator=generator).to(device=device, dtype=dtype)
        weight = (0.02 * torch.randn(vocab, 768, generator=generator)).to(device=device, dtype=dtype)
        hidden.requires_grad_(True)
        weight.requires_grad_(True)
        leaves = [hidden, weight]

        def forward():
            # As in the Trainer hook, nothing reads these logits later, so they may hold the gradient.
            return causal_lm_loss(F.linear(hidden, weight), labels, criterion,
                                  chunk_tokens=chunk_tokens or None, overwrite_logits=True)
    else:
        logits = torch.randn(1, tokens, vocab, generator=generator).to(device=device, dtype=dtype)
        logits.requires_grad_(True)
        leaves = [logits]

        def forward():
            return causal_lm_loss(logits, labels, criterion, chunk_tokens=chunk_tokens or None)

    def step() -> None:
        forward().backward()
        for leaf in leaves:
            leaf.grad = None

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
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    logits_mib = tokens * vocab * torch.finfo(dtype).bits / 8 / 2**20
    return {"extra_mib": max(extra, 0) / 2**20,
            "time_s": statistics.median(times) if times else None,
            "logits_mib": logits_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--vocab", type=int, default=50272)
    parser.add_argument("--chunk-tokens", type=int, default=512)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per row (0: no timing)")
    parser.add_argument("--setups", nargs="+", default=["logits", "head"], choices=["logits", "head"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tokens, chunk, dtype, setup = args.worker.split(",")
        print(json.dumps(worker(int(tokens), args.vocab, int(chunk), dtype, setup, args.device,
                                args.repeats)))
        return

    print(f"Causal-LM loss (rlo, k=5, m=5), vocabulary {args.vocab:,}, device {args.device}, "
          f"{platform.processor() or platform.machine()}, torch in a fresh process per row.\n")
    print("| set-up | tokens | dtype | logits MiB | loss | extra peak MiB | time s |")
    print("| --- | ---: | --- | ---: | --- | ---: | ---: |")
    for setup in args.setups:
        for tokens in args.tokens:
            for dtype in args.dtypes:
                for label, chunk in (("one piece", 0), (f"chunks of {args.chunk_tokens}",
                                                        args.chunk_tokens)):
                    command = [sys.executable, __file__, "--worker",
                               f"{tokens},{chunk},{dtype},{setup}", "--vocab", str(args.vocab),
                               "--device", args.device, "--repeats", str(args.repeats)]
                    output = subprocess.run(command, check=True, capture_output=True,
                                            text=True).stdout
                    row = json.loads(output.strip().splitlines()[-1])
                    seconds = "-" if row["time_s"] is None else f"{row['time_s']:.3f}"
                    print(f"| {setup} | {tokens} | {dtype} | {row['logits_mib']:.0f} | {label} | "
                          f"{row['extra_mib']:.0f} | {seconds} |", flush=True)


if __name__ == "__main__":
    main()
