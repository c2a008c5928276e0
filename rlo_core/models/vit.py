"""Vision Transformers configured as in the reference, built from timm's VisionTransformer."""

from __future__ import annotations

from typing import Optional

from rlo_core.models.registry import NetOptions, register_net


def patch_check(options: NetOptions) -> Optional[str]:
    if options.image_size % options.patch:
        return (f"the patch size {options.patch} does not divide it. Use --patch with a "
                f"divisor of {options.image_size}, or an --image-size that is a multiple of "
                f"{options.patch}.")
    return None


def heads_check(heads: int):
    def check(options: NetOptions) -> Optional[str]:
        problem = patch_check(options)
        if problem:
            return problem
        if options.dim_head % heads:
            return (f"the embedding width --dim-head {options.dim_head} is not divisible by the "
                    f"{heads} attention heads. Use a multiple of {heads}, such as 512.")
        return None

    return check


def vision_transformer(options: NetOptions, *, depth: int, heads: int, mlp_dim: int):
    from timm.models.vision_transformer import VisionTransformer

    # The reference's `--dimhead` is the embedding width; the MLP width is given absolutely.
    return VisionTransformer(
        img_size=options.image_size, patch_size=options.patch, num_classes=options.num_classes,
        embed_dim=options.dim_head, depth=depth, num_heads=heads,
        mlp_ratio=mlp_dim / options.dim_head, drop_rate=options.dropout,
        pos_drop_rate=options.dropout, proj_drop_rate=options.dropout)


@register_net("vit", family="transformer", check=heads_check(16),
              notes="reference ViT: depth 12, heads 16, MLP 1024, width --dim-head")
def vit(options: NetOptions):
    return vision_transformer(options, depth=12, heads=16, mlp_dim=1024)
