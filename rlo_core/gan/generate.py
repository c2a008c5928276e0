"""`rlo gan generate`: a grid of images from a network snapshot, one image per seed.

Seed s draws its latent z ~ N(0, I) from `torch.Generator().manual_seed(s)` on the CPU, so a
seed gives the same image on any device. Noise inputs use the snapshot's fixed noise buffers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from rlo_core.errors import ConfigError

log = logging.getLogger(__name__)

MAX_SEEDS = 10_000


@dataclass
class GenerateConfig:
    network: str
    seeds: str = "0-15"
    output: str = "grid.png"
    truncation: float = 1.0
    columns: Optional[int] = None
    device: str = "auto"


@dataclass
class GenerateResult:
    output: Path
    seeds: list[int] = field(default_factory=list)
    kimg: Optional[str] = None


def parse_seeds(text: str) -> list[int]:
    """Parse "0-15", "3", "1,4,7-9" into a list of non-negative integers."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part[1:]:
                first, last = (int(value) for value in part.split("-", 1))
                if last < first:
                    raise ValueError
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ConfigError(f"Invalid seed range '{part}' in --seeds '{text}'. Use numbers and "
                              "ranges such as 0-15 or 1,4,7-9.") from None
        if len(seeds) > MAX_SEEDS:
            raise ConfigError(f"--seeds '{text}' asks for more than {MAX_SEEDS} images in one "
                              "grid. Use a smaller range.")
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"--seeds '{text}' must list at least one seed, none negative, for "
                          "example 0-15.")
    return seeds


def generate_grid(config: GenerateConfig) -> GenerateResult:
    """Generate one image per seed with the snapshot's EMA generator and save them as a grid."""
    from rlo_core.gan.grids import save_grid
    from rlo_core.gan.pipeline import resolve_device
    from rlo_core.gan.snapshots import load_snapshot

    seeds = parse_seeds(config.seeds)
    if config.columns is not None and config.columns <= 0:
        raise ConfigError(f"--columns must be a positive integer, got {config.columns}.")
    device = resolve_device(config.device)
    snapshot = load_snapshot(Path(config.network), device)
    if config.truncation != 1.0 and snapshot.spec.arch != "stylegan2-lite":
        raise ConfigError(f"--truncation {config.truncation} needs a stylegan2-lite snapshot; "
                          f"{config.network} is {snapshot.spec.arch}, which has no mapping "
                          "network. Use --truncation 1.")
    G = snapshot.G_ema
    latents = torch.stack([torch.randn(G.z_dim, generator=torch.Generator().manual_seed(seed))
                           for seed in seeds])
    images = []
    with torch.no_grad():
        for chunk in latents.split(64):
            images.append(G(chunk.to(device), truncation_psi=config.truncation,
                            noise_mode="const").float().cpu())
    scale = max(1, 64 // snapshot.spec.resolution)
    output = save_grid(torch.cat(images), Path(config.output), config.columns, scale)
    log.info("Saved %d images (seeds %s) to %s.", len(seeds), config.seeds, output)
    return GenerateResult(output, seeds, snapshot.metadata.get("kimg"))
