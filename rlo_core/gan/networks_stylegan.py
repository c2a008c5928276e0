"""A small StyleGAN2-style generator and discriminator (Karras et al., "Analyzing and Improving
the Image Quality of StyleGAN", 2020), written from the paper.

Generator: a mapping network (z -> w, learning rate x0.01, running mean of w for truncation), a
learned 4x4 constant, and per resolution two modulated 3x3 convolutions with weight
demodulation, per-pixel noise inputs with learned strength, and a skip connection of RGB
outputs. Discriminator: residual blocks and a minibatch standard deviation layer before the
last convolution.

Simplifications against the paper, which make this the "lite" variant: bilinear resampling in
place of the [1, 3, 3, 1] FIR filters, one w for every layer (no style mixing regularization)
and no path length regularization.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlo_core.gan.layers import (
    EqualConv2d,
    EqualLinear,
    channels_at,
    downsample2x,
    leaky_relu,
    minibatch_stddev,
    pixel_norm,
    upsample2x,
)

NOISE_MODES = ("random", "const", "none")


class MappingNetwork(nn.Module):
    def __init__(self, *, z_dim: int, w_dim: int, num_layers: int, lr_multiplier: float = 0.01,
                 w_avg_beta: float = 0.995):
        super().__init__()
        features = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            EqualLinear(a, b, activation=True, lr_multiplier=lr_multiplier)
            for a, b in zip(features[:-1], features[1:]))
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: Tensor, truncation_psi: float = 1.0) -> Tensor:
        w = pixel_norm(z)
        for layer in self.layers:
            w = layer(w)
        if self.training:
            # Running mean of w, the center that truncation pulls samples toward.
            self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1.0:
            w = self.w_avg.to(w.dtype).lerp(w, truncation_psi)
        return w


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample by a style from w, then (optionally)
    demodulated so each output feature map has unit expected variance."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, w_dim: int,
                 demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = kernel_size // 2

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        batch, in_channels, _, _ = x.shape
        styles = self.affine(w)
        weight = self.weight.unsqueeze(0) * (self.weight_gain * styles[:, None, :, None, None])
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        if self.upsample:
            x = upsample2x(x)
        height, width = x.shape[2], x.shape[3]
        # One grouped convolution with a group per sample applies per-sample weights.
        out = F.conv2d(x.reshape(1, batch * in_channels, height, width),
                       weight.reshape(-1, in_channels, *weight.shape[3:]).to(x.dtype),
                       padding=self.padding, groups=batch)
        return out.reshape(batch, -1, height, width)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution, then a noise input, a bias and a leaky ReLU."""

    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int,
                 upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim=w_dim, upsample=upsample)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.resolution = resolution

    def forward(self, x: Tensor, w: Tensor, noise_mode: str,
                generator: torch.Generator | None) -> Tensor:
        x = self.conv(x, w)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution,
                                device=x.device, dtype=x.dtype, generator=generator)
            x = x + noise * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength
        return leaky_relu(x + self.bias.to(x.dtype).reshape(1, -1, 1, 1))


class ToRGB(nn.Module):
    def __init__(self, in_channels: int, img_channels: int, *, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, img_channels, 1, w_dim=w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        return self.conv(x, w) + self.bias.to(x.dtype).reshape(1, -1, 1, 1)


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, *, w_dim: int, resolution: int,
                 img_channels: int):
        super().__init__()
        self.is_first = resolution == 4
        if self.is_first:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim=w_dim,
                                        resolution=resolution, upsample=True)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim=w_dim, resolution=resolution)
        self.to_rgb = ToRGB(out_channels, img_channels, w_dim=w_dim)

    def forward(self, x: Tensor | None, image: Tensor | None, w: Tensor, noise_mode: str,
                generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        if self.is_first:
            x = self.const.unsqueeze(0).expand(w.shape[0], -1, -1, -1).to(w.dtype)
        else:
            x = self.conv0(x, w, noise_mode, generator)
        x = self.conv1(x, w, noise_mode, generator)
        rgb = self.to_rgb(x, w)
        image = rgb if image is None else upsample2x(image) + rgb
        return x, image


class StyleGAN2Generator(nn.Module):
    def __init__(self, *, z_dim: int, w_dim: int, resolution: int, img_channels: int,
                 channel_base: int, channel_max: int, mapping_layers: int):
        super().__init__()
        self.z_dim = z_dim
        self.resolution = resolution
        self.img_channels = img_channels
        self.mapping = MappingNetwork(z_dim=z_dim, w_dim=w_dim, num_layers=mapping_layers)
        self.blocks = nn.ModuleList()
        in_channels = 0
        for level in range(2, int(math.log2(resolution)) + 1):
            out_channels = channels_at(2 ** level, channel_base, channel_max)
            self.blocks.append(SynthesisBlock(in_channels, out_channels, w_dim=w_dim,
                                              resolution=2 ** level, img_channels=img_channels))
            in_channels = out_channels

    def forward(self, z: Tensor, *, truncation_psi: float = 1.0, noise_mode: str = "random",
                generator: torch.Generator | None = None) -> Tensor:
        """Map latents [N, z_dim] to images [N, C, R, R] in about [-1, 1].

        `noise_mode` is "random" (fresh noise, drawn from `generator` when given), "const"
        (the fixed noise buffers, for reproducible grids) or "none".
        """
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}.")
        w = self.mapping(z, truncation_psi)
        x = image = None
        for block in self.blocks:
            x, image = block(x, image, w, noise_mode, generator)
        return image


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convolutions and a 2x downsampling, added to a 1x1 residual path."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualConv2d(in_channels, out_channels, 3)
        self.skip = EqualConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        residual = self.skip(downsample2x(x))
        x = leaky_relu(self.conv0(x))
        x = leaky_relu(self.conv1(downsample2x(x)))
        return (residual + x) * math.sqrt(0.5)


class StyleGAN2Discriminator(nn.Module):
    def __init__(self, *, resolution: int, img_channels: int, channel_base: int,
                 channel_max: int, mbstd_group: int = 4):
        super().__init__()
        self.resolution = resolution
        self.mbstd_group = mbstd_group
        self.from_rgb = EqualConv2d(img_channels, channels_at(resolution, channel_base,
                                                              channel_max), 1)
        self.blocks = nn.ModuleList()
        for level in range(int(math.log2(resolution)), 2, -1):
            self.blocks.append(DiscriminatorBlock(
                channels_at(2 ** level, channel_base, channel_max),
                channels_at(2 ** (level - 1), channel_base, channel_max)))
        last = channels_at(4, channel_base, channel_max)
        self.conv = EqualConv2d(last + 1, last, 3)
        self.fc = EqualLinear(last * 16, last, activation=True)
        self.out = EqualLinear(last, 1)

    def forward(self, images: Tensor) -> Tensor:
        """Return one logit per image, shape [N]."""
        x = leaky_relu(self.from_rgb(images))
        for block in self.blocks:
            x = block(x)
        x = minibatch_stddev(x, self.mbstd_group)
        x = leaky_relu(self.conv(x))
        return self.out(self.fc(x.flatten(1))).squeeze(1)
