"""MLP-Mixer and ConvMixer from timm, sized as in the reference."""

from __future__ import annotations

from torch import nn

from rlo_core.models.checks import is_small_input, patch_check, resolve_patch
from rlo_core.models.registry import NetOptions, register_net


@register_net("mlpmixer", family="mixer", aliases=("mlp_mixer", "mixer"), check=patch_check,
              notes="timm MlpMixer: 6 blocks, width --dim-head (512), token/channel MLP "
                    "ratios 0.5/4")
def mlpmixer(options: NetOptions) -> nn.Module:
    from timm.models.mlp_mixer import MlpMixer

    return MlpMixer(img_size=options.image_size, patch_size=resolve_patch(options),
                    num_classes=options.num_classes, embed_dim=options.dim_head or 512,
                    num_blocks=6, mlp_ratio=(0.5, 4.0))


@register_net("convmixer", family="convmixer", aliases=("conv_mixer",),
              notes="timm ConvMixer-256/16, kernel 8; patch 1 at 64 px or less, else 7")
def convmixer(options: NetOptions) -> nn.Module:
    from timm.models.convmixer import ConvMixer

    # The reference's CIFAR setting (patch 1) keeps every pixel. At ImageNet sizes that would
    # cost 49 times the compute of timm's patch 7, so larger inputs use 7.
    patch = 1 if is_small_input(options) else 7
    return ConvMixer(dim=256, depth=16, kernel_size=8, patch_size=patch,
                     num_classes=options.num_classes)
