"""ResNets from timm, with a CIFAR stem (3x3 stride-1 convolution, no max-pool) for small inputs."""

from __future__ import annotations

from torch import nn

from rlo_core.models.registry import NetOptions, register_net

CIFAR_STEM_MAX_SIZE = 64


def resnet(options: NetOptions, model_name: str) -> nn.Module:
    import timm

    model = timm.create_model(model_name, pretrained=False, num_classes=options.num_classes)
    if options.image_size <= CIFAR_STEM_MAX_SIZE:
        # A 7x7 stride-2 stem and max-pool would shrink a 32 px image to 8 px before the
        # first block; the CIFAR variant keeps full resolution there.
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


@register_net("res18", family="resnet", aliases=("resnet18",),
              notes="ResNet-18, CIFAR stem at 64 px or less")
def res18(options: NetOptions) -> nn.Module:
    return resnet(options, "resnet18")
