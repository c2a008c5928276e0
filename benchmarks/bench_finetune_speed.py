"""Finetuning speed: tokens/s of `rlo finetune` with `--loss rlo` against `--loss ce`.

Each measurement is a full `run_finetune` call with `max_steps` optimizer steps on the same
model, text and batch. Tokens/s is `FinetuneResult.train_tokens / wall_time_s`. That wall time
covers `Trainer.train()`: the steps, one validation pass at the end (capped by
`--max-eval-blocks`, the same for both losses) and one checkpoint save. Repeats alternate the
order of the losses; the table gives medians. Usage:

    python benchmarks/bench_finetune_speed.py [--model tiny-opt] [--dataset pydoc]
        [--block-size 128] [--batch-size 8] [--steps 40] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile

import torch


def tokens_per_second(args: argparse.Namespace, loss: str, runs_dir: str) -> float:
    from rlo_core.lm.config import FinetuneConfig
    from rlo_core.lm.finetune import run_finetune

    result = run_finetune(FinetuneConfig(
        model=args.model, dataset=args.dataset, loss=loss, max_steps=args.steps, lr=1e-4,
        warmup_steps=0, block_size=args.block_size, batch_size=args.batch_size, grad_accum=1,
        max_eval_blocks=args.max_eval_blocks, eval_seqlen=args.block_size,
        log_every=10**6, device="cpu", runs_dir=runs_dir), terminal=False)
    return result.train_tokens / result.wall_time_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-opt")
    parser.add_argument("--dataset", default="pydoc")
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--max-eval-blocks", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's].")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    rates: dict[str, list[float]] = {"ce": [], "rlo": []}
    with tempfile.TemporaryDirectory(prefix="rlo-bench-") as runs_dir:
        for repeat in range(args.repeats):
            # Alternate the order so slow drift of the machine's load hits both losses alike.
            order = ("ce", "rlo") if repeat % 2 == 0 else ("rlo", "ce")
            for loss in order:
                rates[loss].append(tokens_per_second(args, loss, runs_dir))

    ce = statistics.median(rates["ce"])
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
          f"threads, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"Setup: {args.model} on {args.dataset}, block {args.block_size}, batch "
          f"{args.batch_size}, {args.steps} steps per measurement, median of {args.repeats} "
          "alternating repeats")
    print()
    print("| loss | tokens/s (median) | all repeats | ratio to ce |")
    print("| --- | --- | --- | --- |")
    for loss in ("ce", "rlo"):
        median = statistics.median(rates[loss])
        print(f"| {loss} | {median:.0f} | {', '.join(f'{r:.0f}' for r in rates[loss])} | "
              f"{median / ce:.3f} |")


if __name__ == "__main__":
    main()
