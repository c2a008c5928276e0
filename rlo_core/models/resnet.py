"""ResNets from timm, with a CIFAR stem (3x3 stride-1 convolution, no max-pool) for small inputs."""

from __future__ import annotations

from torch import nn

from rlo_core.models.checks import is_small_input
from rlo_core.models.registry import NetOptions, register_net


def resnet(options: NetOptions, model_name: str) -> nn.Module:
    import timm

    model = timm.create_model(model_name, pretrained=False, num_classes=options.num_classes)
    if is_small_input(options):
        # A 7x7 stride-2 stem and max-pool would shrink a 32 px image to 8 px before the
        # first block, so the CIFAR variant keeps full resolution there.
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def register_resnet(depth: int) -> None:
    name = f"res{depth}"

    def build(options: NetOptions) -> nn.Module:
        return resnet(options, f"resnet{depth}")

    build.__name__ = name
    register_net(name, family="resnet", aliases=(f"resnet{depth}",),
                 notes=f"timm ResNet-{depth}, CIFAR stem at 64 px or less")(build)


for resnet_depth in (18, 34, 50, 101):
    register_resnet(resnet_depth)
