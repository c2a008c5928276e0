"""Adaptive discriminator augmentation, a small subset of ADA (Karras et al., "Training
Generative Adversarial Networks with Limited Data", 2020).

Every image shown to the discriminator (real or fake) goes through the same random pipeline.
Each transform applies to each image with probability p. The transforms are a horizontal flip,
a rotation by a multiple of 90 degrees, an integer translation by up to 1/8 of the size with
reflection, then brightness, contrast and (for RGB) saturation changes.

With `adaptive=True`, p follows the overfitting heuristic r_t = E[sign(D(x))] over reals. Every
`interval` steps p moves up when r_t exceeds `target` and down otherwise, by an amount that
lets it go from 0 to 1 in `speed_kimg` thousand images.
ADA's general geometric transforms (arbitrary rotation, scaling, sub-pixel translation) are
left out, because their resampling would need a grid_sample with second derivatives for R1.

All transforms are differentiable in the images, so the generator trains through them, and
all randomness comes from the `generator` passed in, so a resumed run draws the same values.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

TRANSLATE_FRACTION = 0.125
BRIGHTNESS_STD = 0.2
CONTRAST_LOG2_STD = 0.5
SATURATION_LOG2_STD = 1.0


def _reflect(index: Tensor, size: int) -> Tensor:
    index = index.abs()
    return torch.where(index > size - 1, 2 * (size - 1) - index, index)


def _chance(p: float, batch: int, device, generator) -> Tensor:
    return torch.rand(batch, device=device, generator=generator) < p


def _log_normal(std_log2: float, batch: int, device, generator) -> Tensor:
    return torch.exp2(torch.randn(batch, device=device, generator=generator) * std_log2)


class AdaptiveAugment(nn.Module):
    def __init__(self, *, adaptive: bool = True, initial_p: float = 0.0, target: float = 0.6,
                 speed_kimg: float = 500.0, interval: int = 4):
        super().__init__()
        self.adaptive = adaptive
        self.target = target
        self.speed_kimg = speed_kimg
        self.interval = interval
        self.register_buffer("p", torch.tensor(float(initial_p), dtype=torch.float64))
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sign_count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))

    @property
    def probability(self) -> float:
        return float(self.p)

    def forward(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        p = self.probability
        if p <= 0.0:
            return images
        batch, channels, height, width = images.shape
        device = images.device
        x = images

        flip = _chance(p, batch, device, generator)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)

        if height == width:
            turns = torch.randint(0, 4, (batch,), device=device, generator=generator)
            turns = torch.where(_chance(p, batch, device, generator), turns, 0)
            rotated = torch.stack([torch.rot90(x, quarter, dims=(2, 3)) for quarter in range(4)])
            x = rotated[turns, torch.arange(batch, device=device)]

        translate = _chance(p, batch, device, generator)
        max_shift = max(1, int(round(TRANSLATE_FRACTION * min(height, width))))
        shift = torch.randint(-max_shift, max_shift + 1, (2, batch), device=device,
                              generator=generator) * translate
        rows = _reflect(torch.arange(height, device=device)[None] - shift[0, :, None], height)
        cols = _reflect(torch.arange(width, device=device)[None] - shift[1, :, None], width)
        x = x.gather(2, rows[:, None, :, None].expand(batch, channels, height, width))
        x = x.gather(3, cols[:, None, None, :].expand(batch, channels, height, width))

        brightness = torch.randn(batch, device=device, generator=generator) * BRIGHTNESS_STD
        brightness = brightness * _chance(p, batch, device, generator)
        x = x + brightness[:, None, None, None].to(x.dtype)

        contrast = _log_normal(CONTRAST_LOG2_STD, batch, device, generator)
        contrast = torch.where(_chance(p, batch, device, generator), contrast, 1.0)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * contrast[:, None, None, None].to(x.dtype) + mean

        if channels == 3:
            saturation = _log_normal(SATURATION_LOG2_STD, batch, device, generator)
            saturation = torch.where(_chance(p, batch, device, generator), saturation, 1.0)
            luma = x.mean(dim=1, keepdim=True)
            x = (x - luma) * saturation[:, None, None, None].to(x.dtype) + luma
        return x

    @torch.no_grad()
    def accumulate(self, real_logits: Tensor) -> None:
        """Add the signs of a batch of real logits to the overfitting statistic r_t."""
        if self.adaptive:
            self.sign_sum += real_logits.detach().float().sign().sum().double().cpu()
            self.sign_count += real_logits.numel()

    @torch.no_grad()
    def step(self) -> None:
        """Count a training step; every `interval` steps move p toward the target r_t."""
        if not self.adaptive:
            return
        self.steps += 1
        if int(self.steps) % self.interval or float(self.sign_count) == 0:
            return
        r_t = float(self.sign_sum / self.sign_count)
        adjustment = math.copysign(1.0, r_t - self.target) if r_t != self.target else 0.0
        delta = adjustment * float(self.sign_count) / (self.speed_kimg * 1000.0)
        self.p.copy_(torch.clamp(self.p + delta, 0.0, 1.0))
        self.sign_sum.zero_()
        self.sign_count.zero_()
