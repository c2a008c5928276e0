"""Configuration of `rlo train` (image classification)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from rlo_core.errors import ConfigError


@dataclass
class TrainConfig:
    """Every option of an image-classification run; defaults follow the reference setup."""

    dataset: str = "cifar10"
    net: str = "vit"
    loss: str = "rlo"
    k: float = 3.0
    m: float = 3.0
    focal_alpha: float = 0.25
    focal_gamma: float = 3.0
    epochs: int = 200
    batch_size: int = 512
    lr: Optional[float] = None  # None: the net family's default (1e-3 ResNet/VGG, 1e-4 others)
    optimizer: Literal["adam", "sgd", "adamw"] = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    image_size: Optional[int] = None  # None: the data set's native size
    patch: Optional[int] = None  # None: the net's own (4 for the reference ViT)
    dim_head: Optional[int] = None  # None: the net's own (512 for the reference ViT)
    pretrained: Optional[str] = None
    aug: bool = True
    amp: bool = True
    sync_bn: bool = False
    grad_accum: int = 1
    seed: int = 0
    data_dir: str = "./data"
    download: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: Optional[int] = None  # None: chosen from the CPU count
    max_steps: Optional[int] = None
    log_every: int = 10
    name: Optional[str] = None
    runs_dir: Optional[str] = None
    tensorboard: bool = False

    def validate(self) -> None:
        for field_name in ("epochs", "batch_size", "grad_accum", "patch", "dim_head", "log_every"):
            value = getattr(self, field_name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{field_name.replace('_', '-')} must be a positive integer, "
                                  f"got {value}.")
        for field_name in ("k", "m"):
            value = getattr(self, field_name)
            if not value > 0:
                raise ConfigError(f"--{field_name} must be > 0, got {value}. The reference uses "
                                  "k=3, m=3 for image classification.")
        from rlo_core.losses import canonical_loss_name

        try:
            self.loss = canonical_loss_name(self.loss)
        except ValueError as error:
            raise ConfigError(f"{error} Pass one of them with --loss.") from error
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}.")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ConfigError(f"--max-steps must be a positive integer, got {self.max_steps}.")
        if self.image_size is not None and self.image_size <= 0:
            raise ConfigError(f"--image-size must be a positive integer, got {self.image_size}.")

    def default_name(self) -> str:
        loss = self.loss
        if loss in ("rlo", "root"):
            loss = f"rlo-k{self.k:g}-m{self.m:g}"
        elif loss == "rlo-convex":
            loss = f"rlo-convex-k{self.k:g}"
        return f"{self.dataset.split(':')[0]}-{self.net}-{loss}".lower()
