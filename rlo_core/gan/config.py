"""Configuration of `rlo gan`. Kept free of torch imports so the CLI can read its defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

from rlo_core.errors import ConfigError


@dataclass
class GanConfig:
    """Every option of a GAN run. Loss, optimizer and schedule defaults follow the reference
    StyleGAN2-ADA experiments (k=2, Adam lr 0.0025 with betas (0, 0.99), 500 kimg, a snapshot
    every 10 ticks); the data default is the offline digits set at 32 px."""

    dataset: str = "digits"
    loss: Literal["rlo", "ce"] = "rlo"
    k: float = 2.0
    kimg: float = 500.0
    tick: float = 4.0  # thousands of images per tick
    snap: int = 10  # ticks between snapshots, grids and FID
    batch: int = 32
    resolution: int = 32
    arch: Literal["dcgan", "stylegan2-lite"] = "dcgan"
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 2
    channel_base: int = 2048
    channel_max: int = 256
    lr: float = 0.0025
    r1_gamma: float = 10.0
    r1_interval: int = 16
    ema_kimg: float = 10.0
    ema_rampup: Optional[float] = 0.05
    augment: Literal["ada", "fixed", "none"] = "ada"
    augment_p: float = 0.0  # initial probability with "ada", the constant one with "fixed"
    ada_target: float = 0.6
    ada_kimg: float = 500.0
    mirror: bool = False
    max_images: Optional[int] = None
    fid_samples: int = 2000
    fid_inception: Optional[str] = None
    fid_classifier_steps: int = 200
    grid: int = 8  # the fakes grids show grid x grid images
    amp: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = 0
    seed: int = 0
    name: Optional[str] = None
    runs_dir: Optional[str] = None

    def validate(self) -> None:
        for field_name in ("snap", "batch", "z_dim", "w_dim", "mapping_layers", "channel_base",
                           "channel_max", "r1_interval", "grid", "fid_classifier_steps"):
            value = getattr(self, field_name)
            if value <= 0:
                raise ConfigError(f"--{field_name.replace('_', '-')} must be a positive integer, "
                                  f"got {value}.")

        for field_name in ("k", "kimg", "tick", "lr", "ema_kimg", "ada_kimg"):
            value = getattr(self, field_name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"--{field_name.replace('_', '-')} must be a number > 0, "
                                  f"got {value}.")

        if not (math.isfinite(self.r1_gamma) and self.r1_gamma >= 0):
            raise ConfigError(f"--r1-gamma must be >= 0 (0 turns R1 off), got {self.r1_gamma}.")
        if self.ema_rampup is not None and not self.ema_rampup > 0:
            raise ConfigError(f"--ema-rampup must be > 0, got {self.ema_rampup}. Leave it unset "
                              "(null in a profile) to turn the ramp-up off.")
        if not 0.0 <= self.augment_p <= 1.0:
            raise ConfigError(f"--augment-p must be between 0 and 1, got {self.augment_p}.")
        if not 0.0 < self.ada_target < 1.0:
            raise ConfigError(f"--ada-target must be between 0 and 1, got {self.ada_target}. "
                              "StyleGAN2-ADA uses 0.6.")
        if self.fid_samples < 0:
            raise ConfigError(f"--fid-samples must be >= 0 (0 turns FID off), got "
                              f"{self.fid_samples}.")
        if self.max_images is not None and self.max_images <= 0:
            raise ConfigError(f"--max-images must be a positive integer, got {self.max_images}.")
        if self.workers < 0:
            raise ConfigError(f"--workers must be >= 0, got {self.workers}.")

        resolution = self.resolution
        if resolution < 8 or resolution > 1024 or 2 ** round(math.log2(resolution)) != resolution:
            raise ConfigError(f"--resolution must be a power of two from 8 to 1024, got "
                              f"{resolution}. Images are resized to it, so pick the nearest "
                              "one (for example 32 or 64).")
        if self.dataset.split(":")[0].strip().lower() not in ("digits", "imagefolder"):
            raise ConfigError(f"Unknown GAN data set '{self.dataset}'. Use digits or "
                              "imagefolder:PATH.")

    def default_name(self) -> str:
        dataset = self.dataset.split(":", 1)
        label = dataset[0] if len(dataset) == 1 else dataset[1].rstrip("/").split("/")[-1]
        loss = f"rlo-k{self.k:g}" if self.loss == "rlo" else self.loss
        return f"{label}-{self.resolution}px-{self.arch}-{loss}".lower()
