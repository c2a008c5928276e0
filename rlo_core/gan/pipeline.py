"""`run_gan(config) -> GanResult`: train a GAN in a run directory, StyleGAN2-ADA style.

The run directory gets `reals.png`, `fakes_init.png`, a `fakesNNNNNN.png` grid, a
`network-snapshot-NNNNNN.safetensors` (NNNNNN = kimg) and an FID record every `snap` ticks
and at the end, `metrics.jsonl` (split "train" per tick, split "eval" per FID), and
`checkpoints/last.pt` for `--resume`. Training length and progress count thousands of real
images shown to the discriminator (kimg).
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from rlo_core.config import to_dict
from rlo_core.errors import CheckpointError, ConfigError, TrainingInterrupted
from rlo_core.gan.config import GanConfig
from rlo_core.gan.data import GanData, load_gan_data
from rlo_core.gan.progress import KimgProgress, format_seconds
from rlo_core.gan.session import CHECKPOINT_NAME, TrainingSession
from rlo_core.gan.training import TickStats
from rlo_core.runs import Run

log = logging.getLogger(__name__)

__all__ = ["GanConfig", "GanResult", "resume_gan", "run_gan"]


@dataclass
class GanResult:
    run_dir: Path
    kimg: float
    steps: int
    seconds: float
    fid_kind: str | None = None  # "inception", "feature" or None when FID is off
    fid_note: str | None = None
    initial_fid: float | None = None
    final_fid: float | None = None
    best_fid: float | None = None
    final_snapshot: Path | None = None
    final_grid: Path | None = None
    last_stats: dict[str, float] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but CUDA is not available in this torch "
                          "build or machine. Use --device cpu or --device auto.")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run_gan(config: GanConfig) -> GanResult:
    """Train a new GAN run described by `config`."""
    config.validate()
    device = resolve_device(config.device)
    data = load_gan_data(config.dataset, config.resolution, max_images=config.max_images,
                         workers=config.workers)
    run = Run.create("gan", config.name or config.default_name(), to_dict(config),
                     runs_dir=Path(config.runs_dir) if config.runs_dir else None)
    with run:
        return _train(run, config, data, device, checkpoint=None)


# Options that may change when a run is resumed; the others define the networks and data.
RESUMABLE_OPTIONS = {"kimg", "tick", "snap", "fid_samples", "fid_classifier_steps", "grid",
                     "amp", "device", "workers", "runs_dir"}


def resume_gan(reference: str, overrides: dict[str, Any] | None = None,
               runs_dir: str | None = None) -> GanResult:
    """Continue a run from `checkpoints/last.pt`; `overrides` may extend `kimg` and the like."""
    from rlo_core.config.schema import build_config, validate_options
    from rlo_core.runs import resolve_run

    run_dir = resolve_run(reference, Path(runs_dir) if runs_dir else None, command="gan")
    run = Run.open(run_dir)
    if run.command != "gan":
        raise ConfigError(f"Run {run_dir} was made by 'rlo {run.command}', not 'rlo gan'. "
                          "Resume it with its own command.")
    options = validate_options(GanConfig, run.config, source=str(run_dir / "config.yaml"))
    changed = sorted(set(overrides or {}) - RESUMABLE_OPTIONS)
    if changed:
        raise ConfigError(f"Options {', '.join('--' + c.replace('_', '-') for c in changed)} "
                          "cannot change when resuming, because they define the networks, data "
                          "or losses of the run. Resume without them, or start a new run. "
                          f"Options that may change: {', '.join(sorted(RESUMABLE_OPTIONS))}.")
    options.update(validate_options(GanConfig, overrides or {}, source="the command line"))
    try:
        config = build_config(GanConfig, options)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    checkpoint = load_checkpoint(run.checkpoint_dir / CHECKPOINT_NAME)
    done_nimg = int(checkpoint["trainer"]["cur_nimg"])
    if int(checkpoint["trainer"]["step"]) >= math.ceil(config.kimg * 1000 / config.batch):
        raise ConfigError(f"Run {run_dir} already reached {done_nimg / 1000:.1f} kimg. Pass a "
                          "larger --kimg with --resume to train further.")
    device = resolve_device(config.device)
    data = load_gan_data(config.dataset, config.resolution, max_images=config.max_images,
                         workers=config.workers)
    run.config = to_dict(config)
    run.write_config()
    with run:
        return _train(run, config, data, device, checkpoint=checkpoint)


def load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} was not found, so the run cannot be resumed. "
                              "A checkpoint is written at every snapshot and at the end; start a "
                              "new run if this one stopped before its first snapshot.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or unsafe files
        raise CheckpointError(f"Could not load checkpoint {path} with weights_only=True: "
                              f"{str(error)[:300]}. The file is corrupt or not from 'rlo gan'.") \
            from error


@contextmanager
def _interrupt_flag() -> Iterator[dict[str, bool]]:
    """Turn the first Ctrl-C into a flag the loop checks between steps (a second one stops at
    once). Only the main thread can install signal handlers; elsewhere the flag stays False."""
    flag = {"requested": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handle(signum, frame):
        if flag["requested"]:
            raise KeyboardInterrupt
        flag["requested"] = True
        log.warning("Interrupt received: stopping after this step and saving a checkpoint. "
                    "Press Ctrl-C again to stop at once without one.")

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _train(run: Run, config: GanConfig, data: GanData, device: torch.device,
           checkpoint: dict | None) -> GanResult:
    from rlo_core.gan.fid import build_fid_metric

    started = time.monotonic()
    session = TrainingSession(run, config, data, device)
    trainer = session.trainer
    total_steps = math.ceil(config.kimg * 1000 / config.batch)
    log.info("Training %s on %s (%d images at %d px), loss %s%s, %.1f kimg on %s.", config.arch,
             data.name, len(data), config.resolution, config.loss,
             f" k={config.k:g}" if config.loss == "rlo" else "", config.kimg, device)
    if checkpoint is not None:
        session.restore(checkpoint)
    else:
        session.save_reals()
        session.save_fakes("fakes_init.png")
    if config.fid_samples > 0:
        session.fid_metric = build_fid_metric(
            data=data, run_dir=run.dir, device=device, inception_path=config.fid_inception,
            classifier_steps=config.fid_classifier_steps, seed=config.seed)
        if checkpoint is None:
            session.initial_fid = session.evaluate_fid()
    session.update_status(total_steps)

    stats, tick_started = TickStats(), time.monotonic()
    means: dict[str, float] = {}
    with KimgProgress(config.kimg, trainer.cur_nimg / 1000, f"gan {config.loss}") as progress, \
            _interrupt_flag() as interrupt:
        while trainer.step < total_steps:
            stats.add(**trainer.train_step())
            progress.update(trainer.cur_nimg / 1000)
            done = trainer.step >= total_steps
            tick_done = trainer.cur_nimg >= session.tick_start_nimg + config.tick * 1000
            if done or tick_done:
                means = session.end_tick(stats, tick_started, progress)
                stats, tick_started = TickStats(), time.monotonic()
                if done or session.tick % config.snap == 0:
                    session.snapshot()
                session.update_status(total_steps)
            if interrupt["requested"] and not done:
                session.save_checkpoint()
                raise TrainingInterrupted(
                    f"Interrupted at {trainer.cur_nimg / 1000:.1f} kimg. Continue with "
                    f"'rlo gan --resume {run.dir}'.")

    result = GanResult(
        run_dir=run.dir, kimg=trainer.cur_nimg / 1000, steps=trainer.step,
        seconds=time.monotonic() - started,
        fid_kind=session.fid_metric.kind if session.fid_metric else None,
        fid_note=session.fid_metric.note if session.fid_metric else None,
        initial_fid=session.initial_fid, final_fid=session.final_fid, best_fid=session.best_fid,
        final_snapshot=session.last_snapshot, final_grid=session.last_grid, last_stats=means)
    log.info("Finished %s: %.1f kimg in %s.", run.dir, result.kimg,
             format_seconds(result.seconds))
    return result
