"""Vision Transformers configured as in the reference, built from timm's VisionTransformer.

The reference's ViTs come from lucidrains' vit-pytorch: `--dimhead` sets the embedding width,
every attention head is 64 wide whatever the width, the qkv projection has no bias, and dropout
0.1 follows the embeddings, the attention output and the MLP.
"""

from __future__ import annotations

import functools
from typing import Optional

from torch import nn

from rlo_core.models.checks import patch_check, resolve_patch
from rlo_core.models.pretrained import build_pretrained_timm_vit, find_weights
from rlo_core.models.registry import NetOptions, register_net

HEAD_DIM = 64
TIMM_VIT_NAME = "vit_base_patch16_384"


@functools.cache
def reference_attention() -> type:
    """timm's Attention with 64-wide heads, so the head count need not divide the width."""
    from timm.layers import Attention

    class ReferenceAttention(Attention):
        def __init__(self, dim: int, **kwargs):
            kwargs["attn_head_dim"] = HEAD_DIM
            super().__init__(dim, **kwargs)

    return ReferenceAttention


def vision_transformer(options: NetOptions, *, depth: int, heads: int, mlp_dim: int,
                       default_width: int) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    width = options.dim_head or default_width
    # timm sizes the MLP as int(width * mlp_ratio); the extra half unit keeps a float rounding
    # error from producing mlp_dim - 1 hidden units.
    mlp_ratio = (mlp_dim + 0.5) / width
    return VisionTransformer(
        img_size=options.image_size, patch_size=resolve_patch(options),
        num_classes=options.num_classes, embed_dim=width, depth=depth, num_heads=heads,
        mlp_ratio=mlp_ratio, qkv_bias=False, attn_layer=reference_attention(),
        pos_drop_rate=options.dropout, proj_drop_rate=options.dropout)


@register_net("vit", family="transformer", check=patch_check,
              notes="reference ViT: depth 12, 16 heads, MLP 1024, width --dim-head (512)")
def vit(options: NetOptions) -> nn.Module:
    return vision_transformer(options, depth=12, heads=16, mlp_dim=1024, default_width=512)


@register_net("vit_small", family="transformer", check=patch_check,
              notes="depth 6, 8 heads, MLP 512, width --dim-head (512)")
def vit_small(options: NetOptions) -> nn.Module:
    return vision_transformer(options, depth=6, heads=8, mlp_dim=512, default_width=512)


@register_net("vit_tiny", family="transformer", check=patch_check,
              notes="depth 4, 6 heads, MLP 256, width --dim-head (512)")
def vit_tiny(options: NetOptions) -> nn.Module:
    return vision_transformer(options, depth=4, heads=6, mlp_dim=256, default_width=512)


@register_net("vit-l", family="transformer", aliases=("vit_large",), check=patch_check,
              notes="ViT-L sizes: depth 24, 16 heads, MLP 4096, width --dim-head (1024)")
def vit_large(options: NetOptions) -> nn.Module:
    return vision_transformer(options, depth=24, heads=16, mlp_dim=4096, default_width=1024)


@register_net("vit_base", family="transformer", aliases=("vit_b",), check=patch_check,
              notes="ViT-B sizes: depth 12, 12 heads, MLP 3072, width --dim-head (768)")
def vit_base(options: NetOptions) -> nn.Module:
    return vision_transformer(options, depth=12, heads=12, mlp_dim=3072, default_width=768)


def timm_vit_check(options: NetOptions) -> Optional[str]:
    if options.image_size % 16:
        return ("timm's vit_base_patch16_384 cuts images into 16 px patches. Use --image-size "
                "384 (its pretraining size) or another multiple of 16.")
    if options.load_pretrained:
        # Raises a ModelError naming the places searched, before any data is loaded.
        find_weights(TIMM_VIT_NAME, options.pretrained)
    return None


@register_net("vit_timm", family="transformer", default_image_size=384, check=timm_vit_check,
              accepts_pretrained=True, fixed_image_size=True,
              notes="timm vit_base_patch16_384, pretrained weights from --pretrained PATH or "
                    "the Hugging Face cache, new head; ignores --patch and --dim-head")
def vit_timm(options: NetOptions) -> nn.Module:
    return build_pretrained_timm_vit(TIMM_VIT_NAME, options)
