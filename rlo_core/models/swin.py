"""Swin Transformers from timm, with the reference's small-image downscaling.

For inputs of 64 px or less, the reference's Swin-T embeds 2x2 patches and downsamples by
(2, 2, 2, 1). A 32 px image then gives feature maps of 16, 8, 4 and 4 px, which 4 px windows
tile at every stage. Larger inputs use the standard layout: 4x4 patches and (4, 2, 2, 2), with 7 px
windows at 224 px. `--patch` sets the window size, as the reference's `--patch` does.
"""

from __future__ import annotations

from typing import Optional

from torch import nn

from rlo_core.models.checks import is_small_input
from rlo_core.models.registry import NetOptions, register_net


def stage_grids(options: NetOptions) -> tuple[int, list[int]]:
    """Return the patch size and the feature-map size of each of the four stages."""
    size = options.image_size
    if is_small_input(options):
        return 2, [size // 2, size // 4, size // 8, size // 8]
    return 4, [size // 4, size // 8, size // 16, size // 32]


def resolve_window(options: NetOptions) -> int:
    if options.patch is not None:
        return options.patch
    return 4 if is_small_input(options) else 7


def swin_check(options: NetOptions) -> Optional[str]:
    small = is_small_input(options)
    stride = 8 if small else 32
    if options.image_size % stride:
        where = "64 px or less" if small else "this size"
        return (f"Swin reduces its input {stride}-fold at {where}, so the size must be a "
                f"multiple of {stride}. Use --image-size 32 or 64 for small images, or 224.")
    window = resolve_window(options)
    _, grids = stage_grids(options)
    misfits = [grid for grid in grids if grid > window and grid % window]
    if misfits:
        fitting = [w for w in range(min(grids[-1], 12), 0, -1)
                   if all(grid <= w or grid % w == 0 for grid in grids)]
        return (f"the window size --patch {window} does not divide the stage feature maps "
                f"{grids} px. Use --patch {fitting[0]}, or an --image-size whose stage maps "
                f"are multiples of {window}.")
    return None


def keep_last_stage_resolution(model: nn.Module, grid: int, window: int) -> None:
    """Replace the last stage's 2x2 patch merging by a per-position projection (stride 1)."""
    stage = model.layers[-1]
    merge = stage.downsample
    in_dim, out_dim = merge.reduction.in_features // 4, merge.reduction.out_features
    stage.downsample = nn.Sequential(nn.LayerNorm(in_dim),
                                     nn.Linear(in_dim, out_dim, bias=False))
    stage.input_resolution = stage.output_resolution = (grid, grid)
    for block in stage.blocks:
        block.set_input_size(feat_size=(grid, grid), window_size=(window, window))
        # The resize interpolated a random table; start it from timm's initialization instead.
        block.attn.reset_parameters()


def swin(options: NetOptions, *, embed_dim: int, depths: tuple[int, ...],
         heads: tuple[int, ...]) -> nn.Module:
    from timm.models.swin_transformer import SwinTransformer

    patch, grids = stage_grids(options)
    window = resolve_window(options)
    model = SwinTransformer(img_size=options.image_size, patch_size=patch,
                            num_classes=options.num_classes, embed_dim=embed_dim, depths=depths,
                            num_heads=heads, window_size=window, drop_path_rate=0.0)
    if is_small_input(options):
        keep_last_stage_resolution(model, grids[-1], window)
    return model


@register_net("swin", family="transformer", aliases=("swin_t", "swin_tiny"), check=swin_check,
              notes="timm Swin-T (width 96, depths 2-2-6-2); at 64 px or less patch 2, "
                    "downscaling 2-2-2-1, window --patch (4)")
def swin_tiny(options: NetOptions) -> nn.Module:
    return swin(options, embed_dim=96, depths=(2, 2, 6, 2), heads=(3, 6, 12, 24))


@register_net("swin_base", family="transformer", aliases=("swin_b",), check=swin_check,
              notes="timm Swin-B (width 128, depths 2-2-18-2), same small-image layout as swin")
def swin_base(options: NetOptions) -> nn.Module:
    return swin(options, embed_dim=128, depths=(2, 2, 18, 2), heads=(4, 8, 16, 32))

