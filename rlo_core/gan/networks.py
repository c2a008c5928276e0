"""Build a generator and discriminator pair from a `NetworkSpec` (stored in every snapshot)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from torch import nn

ARCHS = ("dcgan", "stylegan2-lite")


@dataclass(frozen=True)
class NetworkSpec:
    """Everything needed to rebuild the networks of a run (saved as snapshot metadata)."""

    arch: str
    resolution: int
    img_channels: int
    z_dim: int
    w_dim: int
    channel_base: int
    channel_max: int
    mapping_layers: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetworkSpec":
        return cls(arch=str(data["arch"]), **{key: int(data[key]) for key in (
            "resolution", "img_channels", "z_dim", "w_dim", "channel_base", "channel_max",
            "mapping_layers")})


def check_resolution(resolution: int) -> None:
    if resolution < 8 or resolution > 1024 or 2 ** int(math.log2(resolution)) != resolution:
        raise ValueError(f"resolution must be a power of two from 8 to 1024, got {resolution}.")


def build_generator(spec: NetworkSpec) -> nn.Module:
    check_resolution(spec.resolution)
    if spec.arch == "dcgan":
        from rlo_core.gan.networks_dcgan import DCGANGenerator

        return DCGANGenerator(z_dim=spec.z_dim, resolution=spec.resolution,
                              img_channels=spec.img_channels, channel_base=spec.channel_base,
                              channel_max=spec.channel_max)
    if spec.arch == "stylegan2-lite":
        from rlo_core.gan.networks_stylegan import StyleGAN2Generator

        return StyleGAN2Generator(z_dim=spec.z_dim, w_dim=spec.w_dim, resolution=spec.resolution,
                                  img_channels=spec.img_channels, channel_base=spec.channel_base,
                                  channel_max=spec.channel_max, mapping_layers=spec.mapping_layers)
    raise ValueError(f"Unknown GAN architecture {spec.arch!r}; expected one of {ARCHS}.")


def build_discriminator(spec: NetworkSpec) -> nn.Module:
    check_resolution(spec.resolution)
    if spec.arch == "dcgan":
        from rlo_core.gan.networks_dcgan import DCGANDiscriminator

        return DCGANDiscriminator(resolution=spec.resolution, img_channels=spec.img_channels,
                                  channel_base=spec.channel_base, channel_max=spec.channel_max)
    if spec.arch == "stylegan2-lite":
        from rlo_core.gan.networks_stylegan import StyleGAN2Discriminator

        return StyleGAN2Discriminator(resolution=spec.resolution, img_channels=spec.img_channels,
                                      channel_base=spec.channel_base,
                                      channel_max=spec.channel_max)
    raise ValueError(f"Unknown GAN architecture {spec.arch!r}; expected one of {ARCHS}.")
