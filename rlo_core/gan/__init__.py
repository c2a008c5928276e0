"""GAN training with the rooted logistic loss (`rlo gan`).

`run_gan(GanConfig(...))` in `rlo_core.gan.pipeline` trains; `generate_grid` in
`rlo_core.gan.generate` samples a snapshot. This package module imports no torch, so the CLI
can read `GanConfig` defaults cheaply.
"""

from rlo_core.gan.config import GanConfig

__all__ = ["GanConfig"]
