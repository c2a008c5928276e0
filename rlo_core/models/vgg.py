"""VGG-19 with batch norm from timm, with the small-image classifier of the reference."""

from __future__ import annotations

from typing import Optional

from torch import nn

from rlo_core.models.checks import is_small_input
from rlo_core.models.registry import NetOptions, register_net

# Five 2x2 max-pools halve the input five times.
MIN_IMAGE_SIZE = 32


def vgg_check(options: NetOptions) -> Optional[str]:
    if options.image_size < MIN_IMAGE_SIZE:
        return (f"VGG-19 halves its input five times and needs at least {MIN_IMAGE_SIZE} px. "
                f"Use --image-size {MIN_IMAGE_SIZE} or more.")
    return None


@register_net("vgg", family="vgg", aliases=("vgg19", "vgg19_bn"), check=vgg_check,
              notes="timm VGG-19 with batch norm; at 64 px or less a 512-to-classes "
                    "linear head replaces the 4096-wide 7x7 one")
def vgg(options: NetOptions) -> nn.Module:
    import timm
    from timm.layers import ClassifierHead

    model = timm.create_model("vgg19_bn", pretrained=False, num_classes=options.num_classes)
    if is_small_input(options):
        # At 32 px the features are 1x1 (2x2 at 64 px). The reference's CIFAR VGG pools them
        # and applies one linear layer instead of timm's ImageNet-sized 7x7 convolution MLP.
        model.pre_logits = nn.Identity()
        model.head = ClassifierHead(model.num_features, options.num_classes, pool_type="avg")
        model.head_hidden_size = model.num_features
    return model
