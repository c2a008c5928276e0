"""A DCGAN-style generator and discriminator (Radford et al., 2016) for the baseline arch.

The layout is DCGAN's: the latent goes through a fully connected layer to a 4x4 map, each
block doubles the resolution, and the discriminator halves it with strided 4x4 convolutions.
Two changes make it train with the reference optimizer (Adam, lr 0.0025, betas (0, 0.99)) and
an EMA copy of the generator. Its layers use an equalized learning rate. Pixel normalization
replaces batch normalization, so the generator's output never depends on the rest of its batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rlo_core.gan.layers import (
    EqualConv2d,
    EqualLinear,
    channels_at,
    leaky_relu,
    pixel_norm,
    upsample2x,
)


class DCGANGenerator(nn.Module):
    def __init__(self, *, z_dim: int, resolution: int, img_channels: int, channel_base: int,
                 channel_max: int):
        super().__init__()
        self.z_dim = z_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.start_channels = channels_at(4, channel_base, channel_max)
        self.fc = EqualLinear(z_dim, self.start_channels * 16, activation=True)
        self.conv4 = EqualConv2d(self.start_channels, self.start_channels, 3)
        self.blocks = nn.ModuleList()
        in_channels = self.start_channels
        for level in range(3, int(math.log2(resolution)) + 1):
            out_channels = channels_at(2 ** level, channel_base, channel_max)
            self.blocks.append(EqualConv2d(in_channels, out_channels, 3))
            in_channels = out_channels
        self.to_rgb = EqualConv2d(in_channels, img_channels, 1)

    def forward(self, z: Tensor, *, truncation_psi: float = 1.0, noise_mode: str = "random",
                generator: torch.Generator | None = None) -> Tensor:
        """Map latents [N, z_dim] to images [N, C, R, R] in about [-1, 1].

        `noise_mode` and `generator` exist for a common interface with the StyleGAN2-style
        generator. This network has no noise inputs, so it ignores them.
        """
        if truncation_psi != 1.0:
            raise ValueError("The dcgan generator has no mapping network, so it does not support "
                             f"truncation (got psi={truncation_psi}). Use psi=1.")
        x = self.fc(pixel_norm(z)).reshape(-1, self.start_channels, 4, 4)
        x = pixel_norm(leaky_relu(self.conv4(pixel_norm(x))))
        for conv in self.blocks:
            x = pixel_norm(leaky_relu(conv(upsample2x(x))))
        return self.to_rgb(x)


class DCGANDiscriminator(nn.Module):
    def __init__(self, *, resolution: int, img_channels: int, channel_base: int,
                 channel_max: int):
        super().__init__()
        self.resolution = resolution
        top_channels = channels_at(resolution, channel_base, channel_max)
        self.from_rgb = EqualConv2d(img_channels, top_channels, 1)
        self.blocks = nn.ModuleList()
        in_channels = top_channels
        for level in range(int(math.log2(resolution)), 2, -1):
            out_channels = channels_at(2 ** (level - 1), channel_base, channel_max)
            self.blocks.append(EqualConv2d(in_channels, out_channels, 4, stride=2, padding=1))
            in_channels = out_channels
        self.fc = EqualLinear(in_channels * 16, in_channels, activation=True)
        self.out = EqualLinear(in_channels, 1)

    def forward(self, images: Tensor) -> Tensor:
        """Return one logit per image, shape [N]."""
        x = leaky_relu(self.from_rgb(images))
        for conv in self.blocks:
            x = leaky_relu(conv(x))
        return self.out(self.fc(x.flatten(1))).squeeze(1)
