"""Input-size rules shared by the patch-based nets (ViT, CaiT, MLP-Mixer)."""

from __future__ import annotations

from typing import Optional

from rlo_core.models.registry import NetOptions

# Inputs of this size or less (CIFAR 32 px, Tiny-ImageNet 64 px) get the small-image variant of
# a net: a CIFAR stem for ResNets, patch 4 for ViTs, a stride-2 patch embedding for Swin.
SMALL_INPUT_MAX = 64


def is_small_input(options: NetOptions) -> bool:
    return options.image_size <= SMALL_INPUT_MAX


def resolve_patch(options: NetOptions) -> int:
    """Return --patch, or 4 px for small inputs and 16 px (the ViT-B/16 patch) for larger ones."""
    if options.patch is not None:
        return options.patch
    return 4 if is_small_input(options) else 16


def patch_check(options: NetOptions) -> Optional[str]:
    patch = resolve_patch(options)
    size = options.image_size
    if patch > size or size % patch:
        return (f"the patch size {patch} does not divide it. Use --patch with a divisor of "
                f"{size} (4 for 32 or 64 px, 16 for 224 or 384 px), or an --image-size that is "
                f"a multiple of {patch}.")
    return None


def width_heads_check(default_width: int, heads: int):
    """Check the patch size, and that the embedding width splits evenly into `heads` heads."""

    def check(options: NetOptions) -> Optional[str]:
        problem = patch_check(options)
        if problem:
            return problem
        width = options.dim_head or default_width
        if width % heads:
            return (f"the embedding width --dim-head {width} does not split into {heads} "
                    f"attention heads. Use a multiple of {heads}, such as {default_width}.")
        return None

    return check
