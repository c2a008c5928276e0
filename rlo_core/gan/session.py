"""One training session of a GAN run: the trainer plus the outputs it writes (grids, FID
records, network snapshots and the resume checkpoint)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from rlo_core import atomic
from rlo_core.gan.config import GanConfig
from rlo_core.gan.data import GanData, batch_indices, to_float
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


def network_spec(config: GanConfig, data: GanData) -> NetworkSpec:
    return NetworkSpec(arch=config.arch, resolution=config.resolution,
                       img_channels=data.img_channels, z_dim=config.z_dim, w_dim=config.w_dim,
                       channel_base=config.channel_base, channel_max=config.channel_max,
                       mapping_layers=config.mapping_layers)


class TrainingSession:
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
