"""Networks by name: `create_net("vit", num_classes=10, image_size=32)`.

Importing this package registers every built-in net.
"""

from rlo_core.models import cait, mixer, resnet, swin, vgg, vit  # noqa: F401  (register the nets)
from rlo_core.models.registry import (
    NETS,
    NetOptions,
    NetSpec,
    check_net_input,
    count_net_parameters,
    count_parameters,
    create_net,
    list_nets,
    net_spec,
    preferred_image_size,
    register_net,
)

__all__ = ["NETS", "NetOptions", "NetSpec", "check_net_input", "count_net_parameters",
           "count_parameters", "create_net", "list_nets", "net_spec", "preferred_image_size",
           "register_net"]
