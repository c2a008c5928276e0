"""Training-loop overhead: images/s of `rlo train`'s Trainer against a bare PyTorch loop.

Both loops train the same net architecture from seed 0 on the same data set, batch size, loss
and Adam optimizer, on the CPU with DataLoader workers as given. The Trainer
runs through `run_train`, so its figure includes everything `rlo train` does per step: the
per-step cross-entropy and accuracy, metrics.jsonl, the heartbeat and the system monitor. The
bare loop is forward, loss, backward and optimizer step.

Throughput is timed from the end of step `--warmup` to the end of the last step, inside the
first epoch, so neither loop's window contains an evaluation or a checkpoint. Repeats alternate
the order of the two loops; the table gives medians. Usage:

    python benchmarks/bench_train_overhead.py [--net res18] [--image-size 16] [--batch-size 32]
        [--steps 30] [--warmup 3] [--repeats 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rlo_core.train.callbacks import Callback
from rlo_core.train.config import TrainConfig


class StepClock(Callback):
    """Record the time at the end of every optimizer step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_step_end(self, trainer, metrics) -> None:
        self.times.append(time.perf_counter())


def images_per_second(times: list[float], warmup: int, batch_size: int) -> float:
    timed = len(times) - warmup
    return timed * batch_size / (times[-1] - times[warmup - 1])


def trainer_throughput(args: argparse.Namespace, runs_dir: Path) -> float:
    from rlo_core.train.pipeline import run_train

    clock = StepClock()
    config = TrainConfig(dataset=args.dataset, net=args.net, loss=args.loss, epochs=1,
                         batch_size=args.batch_size, image_size=args.image_size, aug=False,
                         device="cpu", workers=args.workers, max_steps=args.warmup + args.steps,
                         seed=0, runs_dir=str(runs_dir), log_every=10**6)
    run_train(config, callbacks=[clock])
    return images_per_second(clock.times, args.warmup, args.batch_size)


def bare_throughput(args: argparse.Namespace) -> float:
    from torch.utils.data import DataLoader

    from rlo_core.data import DataOptions, build_dataset
    from rlo_core.losses import build_loss
    from rlo_core.models import create_net

    torch.manual_seed(0)
    dataset = build_dataset(args.dataset, DataOptions(
        data_dir=Path("./data"), image_size=args.image_size, aug=False, download=False, seed=0))
    model = create_net(args.net, dataset.num_classes, dataset.image_size)
    loss_fn = build_loss(args.loss, k=3.0, m=3.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(dataset.train, batch_size=args.batch_size, shuffle=True,
                        num_workers=args.workers)
    model.train()
    times: list[float] = []
    for images, labels in loader:
        loss = loss_fn(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter())
        if len(times) == args.warmup + args.steps:
            break
    return images_per_second(times, args.warmup, args.batch_size)


def steps_per_epoch(args: argparse.Namespace) -> int:
    from rlo_core.data import DataOptions, build_dataset

    dataset = build_dataset(args.dataset, DataOptions(
        data_dir=Path("./data"), image_size=args.image_size, aug=False, download=False, seed=0))
    return len(dataset.train) // args.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--net", default="res18")
    parser.add_argument("--loss", default="rlo")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30, help="Timed steps per measurement.")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed steps first (>= 1).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes.")
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's].")
    args = parser.parse_args()
    if args.warmup < 1:
        parser.error("--warmup must be at least 1: the timed window starts at the end of a step.")
    if args.threads:
        torch.set_num_threads(args.threads)
    available = steps_per_epoch(args)
    if args.warmup + args.steps > available:
        parser.error(f"--warmup + --steps ({args.warmup + args.steps}) must fit in one epoch "
                     f"({available} full batches of {args.batch_size}), so that no evaluation "
                     "falls inside the timed window. Lower --steps or --batch-size.")

    trainer_rates, bare_rates = [], []
    with tempfile.TemporaryDirectory(prefix="rlo-bench-") as runs_dir:
        for repeat in range(args.repeats):
            # Alternate the order so slow drift of the machine's load hits both loops alike.
            if repeat % 2 == 0:
                bare_rates.append(bare_throughput(args))
                trainer_rates.append(trainer_throughput(args, Path(runs_dir)))
            else:
                trainer_rates.append(trainer_throughput(args, Path(runs_dir)))
                bare_rates.append(bare_throughput(args))

    trainer, bare = statistics.median(trainer_rates), statistics.median(bare_rates)
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch "
          f"threads, torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"Setup: {args.net} on {args.dataset} at {args.image_size} px, batch {args.batch_size}, "
          f"loss {args.loss}, {args.workers} DataLoader workers, {args.steps} timed steps after "
          f"{args.warmup} warm-up steps, median of {args.repeats} alternating repeats")
    print()
    print("| loop | images/s (median) | all repeats | ratio to bare loop |")
    print("| --- | --- | --- | --- |")
    print(f"| bare PyTorch loop | {bare:.1f} | {', '.join(f'{r:.1f}' for r in bare_rates)} | 1.00 |")
    print(f"| rlo train (Trainer) | {trainer:.1f} | {', '.join(f'{r:.1f}' for r in trainer_rates)} "
          f"| {trainer / bare:.3f} |")


if __name__ == "__main__":
    main()
