"""Layers with an equalized learning rate, shared by both GAN architectures.

Weights are stored as N(0, 1) / lr_multiplier and scaled at run time by
lr_multiplier / sqrt(fan_in) (Karras et al., "Progressive Growing of GANs", 2018). Adam then
moves every layer at the same relative speed, which is what makes the reference learning rate
of 0.0025 with betas (0, 0.99) usable for both the DCGAN-style and the StyleGAN2-style networks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)  # keeps the activation variance after a leaky ReLU


def leaky_relu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


class EqualLinear(nn.Module):
    """Fully connected layer with an equalized learning rate."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 bias_init: float = 0.0, lr_multiplier: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.bias_gain if self.bias is not None else None
        x = F.linear(x, self.weight * self.weight_gain, bias)
        return leaky_relu(x) if self.activation else x


class EqualConv2d(nn.Module):
    """2-D convolution with an equalized learning rate."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 stride: int = 1, padding: int | None = None, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.stride = stride
        self.padding = kernel_size // 2 if padding is None else padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, self.bias, stride=self.stride,
                        padding=self.padding)


def pixel_norm(x: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Scale each feature vector along `dim` to unit root mean square."""
    return x * torch.rsqrt(x.square().mean(dim=dim, keepdim=True) + eps)


def upsample2x(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def downsample2x(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, 2)


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
    """Feature maps of the block working at `resolution` pixels: channel_base / resolution,
    capped at channel_max and at least 1."""
    return max(1, min(channel_max, channel_base // resolution))


def minibatch_stddev(x: Tensor, group_size: int = 4) -> Tensor:
    """Append one feature map with the mean standard deviation of each feature across a group
    of samples (Karras et al., 2018), so the discriminator can see a lack of variety."""
    batch, channels, height, width = x.shape
    group = min(group_size, batch)
    while batch % group:
        group -= 1
    y = x.reshape(group, batch // group, channels, height, width).float()
    y = (y - y.mean(dim=0)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=(1, 2, 3))  # one value per group
    y = y.to(x.dtype).reshape(1, -1, 1, 1, 1).expand(group, -1, 1, height, width)
    return torch.cat([x, y.reshape(batch, 1, height, width)], dim=1)
