"""CaiT (class-attention image transformers) from timm, sized as in the reference.

timm's CaiT splits the embedding width evenly among the heads, so the width must be a
multiple of the head count (the reference's lucidrains CaiT used 64-wide heads at any width).
"""

from __future__ import annotations

from torch import nn

from rlo_core.models.checks import resolve_patch, width_heads_check
from rlo_core.models.registry import NetOptions, register_net


def cait(options: NetOptions, *, heads: int, mlp_dim: int, default_width: int) -> nn.Module:
    from timm.models.cait import Cait

    width = options.dim_head or default_width
    # The extra half unit keeps timm's int(width * ratio) from rounding mlp_dim down.
    mlp_ratio = (mlp_dim + 0.5) / width
    return Cait(img_size=options.image_size, patch_size=resolve_patch(options),
                num_classes=options.num_classes, embed_dim=width, depth=6, num_heads=heads,
                mlp_ratio=mlp_ratio, qkv_bias=False, pos_drop_rate=options.dropout,
                proj_drop_rate=options.dropout, drop_path_rate=0.05, depth_token_only=2,
                mlp_ratio_token_only=mlp_ratio)


@register_net("cait", family="transformer", check=width_heads_check(512, 8),
              notes="timm Cait: 6 self-attention + 2 class-attention layers, 8 heads, MLP 512, "
                    "width --dim-head (512)")
def cait_default(options: NetOptions) -> nn.Module:
    return cait(options, heads=8, mlp_dim=512, default_width=512)


@register_net("cait_small", family="transformer", check=width_heads_check(384, 6),
              notes="timm Cait: 6 + 2 layers, 6 heads, MLP 256, width --dim-head (384, a "
                    "multiple of 6)")
def cait_small(options: NetOptions) -> nn.Module:
    return cait(options, heads=6, mlp_dim=256, default_width=384)
