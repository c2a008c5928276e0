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

from rlo_core import atomic
from rlo_core.config import to_dict
from rlo_core.errors import CheckpointError, ConfigError, TrainingInterrupted
from rlo_core.gan.config import GanConfig
from rlo_core.gan.data import GanData, batch_indices, load_gan_data, to_float
from rlo_core.gan.grids import save_grid
from rlo_core.gan.networks import NetworkSpec
from rlo_core.gan.progress import KimgProgress, format_seconds
from rlo_core.gan.snapshots import save_snapshot, snapshot_name
from rlo_core.gan.training import GanTrainer, TickStats
from rlo_core.runs import Run

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "last.pt"
GRID_SEED_OFFSET = 1  # latents of the fakes grids come from seed + 1
FID_SEED_OFFSET = 2  # latents and noise of the FID samples come from seed + 2
MIN_GRID_CELL_PX = 64  # grids of small images are enlarged to at least this many pixels a cell

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


def network_spec(config: GanConfig, data: GanData) -> NetworkSpec:
    return NetworkSpec(arch=config.arch, resolution=config.resolution,
                       img_channels=data.img_channels, z_dim=config.z_dim, w_dim=config.w_dim,
                       channel_base=config.channel_base, channel_max=config.channel_max,
                       mapping_layers=config.mapping_layers)


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


class _Session:
    """State of one training session inside a run (a fresh start or a resume)."""

    def __init__(self, run: Run, config: GanConfig, data: GanData, device: torch.device):
        self.run, self.config, self.data, self.device = run, config, data, device
        self.trainer = GanTrainer(config, network_spec(config, data), data, device)
        self.tick = 0
        self.tick_start_nimg = 0
        self.fid_metric = None
        self.initial_fid: float | None = None
        self.final_fid: float | None = None
        self.best_fid: float | None = None
        self.last_snapshot: Path | None = None
        self.last_grid: Path | None = None
        count = config.grid * config.grid
        self.grid_latents = torch.randn(
            count, config.z_dim, generator=torch.Generator().manual_seed(
                config.seed + GRID_SEED_OFFSET)).to(device)
        self.grid_scale = max(1, MIN_GRID_CELL_PX // config.resolution)

    # -- outputs -----------------------------------------------------------------------------

    def save_fakes(self, name: str) -> Path:
        with torch.no_grad():
            images = torch.cat([self.trainer.G_ema(z, noise_mode="const").float().cpu()
                                for z in self.grid_latents.split(64)])
        self.last_grid = save_grid(images, self.run.dir / name, self.config.grid, self.grid_scale)
        return self.last_grid

    def save_reals(self) -> None:
        indices, _ = batch_indices(self.config.seed, -1, self.config.grid ** 2, len(self.data))
        save_grid(to_float(self.data.images[indices]), self.run.dir / "reals.png",
                  self.config.grid, self.grid_scale)

    def evaluate_fid(self) -> float | None:
        if self.fid_metric is None:
            return None
        started = time.monotonic()
        value = self.fid_metric.compute(self.trainer.G_ema, num_samples=self.config.fid_samples,
                                        device=self.device,
                                        seed=self.config.seed + FID_SEED_OFFSET)
        kimg = self.trainer.cur_nimg / 1000
        self.run.log_metrics(step=self.trainer.step, split="eval", kimg=kimg, fid=value,
                             fid_kind=self.fid_metric.kind, fid_note=self.fid_metric.note,
                             fid_samples=self.config.fid_samples)
        log.info("kimg %.1f: FID %.3f (%s; %d generated vs %d real images, %.1f s)", kimg, value,
                 self.fid_metric.note, self.config.fid_samples, self.fid_metric.real_count,
                 time.monotonic() - started)
        self.final_fid = value
        if self.best_fid is None or value < self.best_fid:
            self.best_fid = value
        return value

    def snapshot(self) -> None:
        kimg = self.trainer.cur_nimg // 1000
        self.save_fakes(f"fakes{kimg:06d}.png")
        self.evaluate_fid()
        info = {"kimg": self.trainer.cur_nimg / 1000, "step": self.trainer.step,
                "loss": self.config.loss, "k": self.config.k, "dataset": self.config.dataset}
        if self.final_fid is not None:
            info.update(fid=self.final_fid, fid_kind=self.fid_metric.kind,
                        fid_note=self.fid_metric.note)
        trainer = self.trainer
        self.last_snapshot = save_snapshot(self.run.dir / snapshot_name(kimg), G=trainer.G,
                                           D=trainer.D, G_ema=trainer.G_ema, spec=trainer.spec,
                                           info=info)
        self.save_checkpoint()
        log.info("Saved %s and %s.", self.last_snapshot.name, self.last_grid.name)

    def save_checkpoint(self) -> None:
        atomic.torch_save({"trainer": self.trainer.state_dict(), "tick": self.tick,
                           "tick_start_nimg": self.tick_start_nimg,
                           "initial_fid": self.initial_fid, "best_fid": self.best_fid,
                           "final_fid": self.final_fid},
                          self.run.checkpoint_dir / CHECKPOINT_NAME)

    def restore(self, checkpoint: dict) -> None:
        self.trainer.load_state_dict(checkpoint["trainer"])
        self.tick = int(checkpoint["tick"])
        self.tick_start_nimg = int(checkpoint["tick_start_nimg"])
        self.initial_fid = checkpoint.get("initial_fid")
        self.best_fid = checkpoint.get("best_fid")
        self.final_fid = checkpoint.get("final_fid")
        self.run.truncate_metrics(self.trainer.step)
        log.info("Resumed at step %d (%.1f kimg).", self.trainer.step,
                 self.trainer.cur_nimg / 1000)

    def update_status(self, total_steps: int) -> None:
        name = None
        if self.fid_metric is not None:
            name = "fid" if self.fid_metric.kind == "inception" else "fid (feature space)"
        self.run.update(step=self.trainer.step, total_steps=total_steps,
                        kimg=round(self.trainer.cur_nimg / 1000, 3), total_kimg=self.config.kimg,
                        tick=self.tick, best_metric=self.best_fid, best_metric_name=name)

    def end_tick(self, stats: TickStats, started: float, progress: KimgProgress) -> dict:
        trainer, config = self.trainer, self.config
        kimg = trainer.cur_nimg / 1000
        tick_kimg = (trainer.cur_nimg - self.tick_start_nimg) / 1000
        sec_per_kimg = (time.monotonic() - started) / max(tick_kimg, 1e-9)
        means = stats.means()
        self.tick += 1
        self.run.log_metrics(step=trainer.step, split="train", kimg=kimg, tick=self.tick,
                             augment_p=trainer.augment.probability, sec_per_kimg=sec_per_kimg,
                             **means)
        log.info("tick %d  kimg %.1f  g_loss %.4f  d_loss %.4f  r1 %s  real %.3f (sign %+.2f)  "
                 "fake %.3f (sign %+.2f)  augment p %.3f  %.1f s/kimg  ETA %s", self.tick, kimg,
                 means["g_loss"], means["d_loss"],
                 f"{means['r1']:.4f}" if "r1" in means else "-", means["real_score"],
                 means["real_sign"], means["fake_score"], means["fake_sign"],
                 trainer.augment.probability, sec_per_kimg,
                 format_seconds(progress.eta_seconds(kimg)))
        self.tick_start_nimg = trainer.cur_nimg
        return means


def _train(run: Run, config: GanConfig, data: GanData, device: torch.device,
           checkpoint: dict | None) -> GanResult:
    from rlo_core.gan.fid import build_fid_metric

    started = time.monotonic()
    session = _Session(run, config, data, device)
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
    with KimgProgress(config.kimg, trainer.cur_nimg / 1000, run.dir.name) as progress, \
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
