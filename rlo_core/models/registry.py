"""One registry of named network configurations over timm's model classes.

    >>> from rlo_core.models import create_net
    >>> net = create_net("res18", num_classes=10, image_size=32)

Names are case-insensitive and accept the reference's aliases (`Swin`, `resnet18`, ...).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Callable, Optional

from torch import nn

from rlo_core.errors import ConfigError, ModelError


@dataclass
class NetOptions:
    num_classes: int
    image_size: int
    patch: int = 4
    dim_head: int = 512
    pretrained: Optional[str] = None  # a local weights file or folder, for pretrained nets
    dropout: float = 0.1


@dataclass(frozen=True)
class NetSpec:
    name: str
    builder: Callable[[NetOptions], nn.Module]
    family: str  # "resnet", "vgg", "transformer" or "mixer"
    default_image_size: int
    notes: str
    aliases: tuple[str, ...] = ()
    # Returns an error message when the image size / patch does not fit the net, else None.
    check: Optional[Callable[[NetOptions], Optional[str]]] = field(default=None, compare=False)

    @property
    def default_lr(self) -> float:
        """The reference's suggestion: 1e-3 for convolutional nets, 1e-4 for transformers."""
        return 1e-3 if self.family in ("resnet", "vgg", "convmixer") else 1e-4


NETS: dict[str, NetSpec] = {}
_ALIASES: dict[str, str] = {}


def _key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def register_net(name: str, *, family: str, default_image_size: int = 32, notes: str = "",
                 aliases: tuple[str, ...] = (),
                 check: Optional[Callable[[NetOptions], Optional[str]]] = None):
    def decorate(builder: Callable[[NetOptions], nn.Module]):
        NETS[name] = NetSpec(name, builder, family, default_image_size, notes, aliases, check)
        for alias in aliases:
            _ALIASES[_key(alias)] = name
        return builder

    return decorate


def net_spec(name: str) -> NetSpec:
    key = _key(name)
    key = _ALIASES.get(key, key)
    if key in NETS:
        return NETS[key]
    valid = sorted([*NETS, *_ALIASES])
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ModelError(f"Unknown net '{name}'.{hint} Valid names: {', '.join(valid)}. "
                     "'rlo models' lists them with parameter counts.")


def check_net_input(name: str, options: NetOptions) -> None:
    """Raise a ConfigError before any data is loaded when the image size does not fit the net."""
    spec = net_spec(name)
    if spec.check is not None:
        problem = spec.check(options)
        if problem:
            raise ConfigError(f"Net '{spec.name}' cannot take {options.image_size} px input: "
                              f"{problem}")


def create_net(name: str, num_classes: int, image_size: int, **kwargs) -> nn.Module:
    options = NetOptions(num_classes=num_classes, image_size=image_size, **kwargs)
    check_net_input(name, options)
    return net_spec(name).builder(options)


def list_nets() -> list[NetSpec]:
    return [NETS[name] for name in sorted(NETS)]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
