"""One registry of named network configurations over timm's model classes.

    >>> from rlo_core.models import create_net
    >>> net = create_net("res18", num_classes=10, image_size=32)

Names are case-insensitive, `-` and `_` are interchangeable, and the reference's aliases work
(`Swin`, `resnet18`, `vit-l`, ...).
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
    # None selects the net's own default (see each net's notes). The reference passes patch 4
    # and width 512 for its CIFAR nets.
    patch: Optional[int] = None  # ViT/CaiT/MLP-Mixer patch size, Swin window size, in pixels
    dim_head: Optional[int] = None  # transformer embedding width (the reference's --dimhead)
    pretrained: Optional[str] = None  # a local weights file or folder, for pretrained nets
    dropout: float = 0.1
    # False builds the architecture only, without reading pretrained weights (parameter counts).
    load_pretrained: bool = True


@dataclass(frozen=True)
class NetSpec:
    name: str
    builder: Callable[[NetOptions], nn.Module]
    family: str  # "resnet", "vgg", "convmixer", "transformer" or "mixer"
    default_image_size: int
    notes: str
    aliases: tuple[str, ...] = ()
    # Returns an error message when the image size / patch does not fit the net, else None.
    check: Optional[Callable[[NetOptions], Optional[str]]] = field(default=None, compare=False)
    # True when the net reads pretrained weights (`--pretrained`).
    accepts_pretrained: bool = False
    # True when a run should use `default_image_size` unless --image-size is given, because
    # the net's pretrained weights were trained at that size.
    fixed_image_size: bool = False

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
                 check: Optional[Callable[[NetOptions], Optional[str]]] = None,
                 accepts_pretrained: bool = False, fixed_image_size: bool = False):
    def decorate(builder: Callable[[NetOptions], nn.Module]):
        NETS[name] = NetSpec(name, builder, family, default_image_size, notes, aliases, check,
                             accepts_pretrained, fixed_image_size)
        # The display name may contain "-" (vit-l); lookups go through the normalized key.
        for alias in (name, *aliases):
            _ALIASES[_key(alias)] = name
        return builder

    return decorate


def net_spec(name: str) -> NetSpec:
    key = _ALIASES.get(_key(name))
    if key is not None:
        return NETS[key]
    valid = sorted({*NETS, *(alias for spec in NETS.values() for alias in spec.aliases)})
    close = difflib.get_close_matches(_key(name), sorted(_ALIASES), n=1)
    hint = f" Did you mean '{_ALIASES[close[0]]}'?" if close else ""
    raise ModelError(f"Unknown net '{name}'.{hint} Valid names: {', '.join(valid)}. "
                     "'rlo models' lists them with parameter counts.")


def check_net_input(name: str, options: NetOptions) -> None:
    """Raise a ConfigError before any data is loaded when the image size does not fit the net."""
    spec = net_spec(name)
    if options.pretrained and not spec.accepts_pretrained:
        takers = ", ".join(s.name for s in NETS.values() if s.accepts_pretrained)
        raise ConfigError(f"Net '{spec.name}' is trained from scratch and does not read "
                          f"--pretrained ({options.pretrained}). Drop --pretrained, or use a "
                          f"net that loads weights: {takers}.")
    for option in ("patch", "dim_head"):
        value = getattr(options, option)
        if value is not None and value <= 0:
            raise ConfigError(f"--{option.replace('_', '-')} must be a positive integer, "
                              f"got {value}.")
    if spec.check is not None:
        problem = spec.check(options)
        if problem:
            raise ConfigError(f"Net '{spec.name}' cannot take {options.image_size} px input: "
                              f"{problem}")


def create_net(name: str, num_classes: int, image_size: int, **kwargs) -> nn.Module:
    options = NetOptions(num_classes=num_classes, image_size=image_size, **kwargs)
    check_net_input(name, options)
    return net_spec(name).builder(options)


def preferred_image_size(name: str, requested: Optional[int], dataset_size: Optional[int]) -> int:
    """Return the input size for a run: --image-size when given, else the net's own size for
    nets pretrained at a fixed size (vit_timm: 384), else the data set's native size."""
    spec = net_spec(name)
    if requested:
        return requested
    if spec.fixed_image_size or not dataset_size:
        return spec.default_image_size
    return dataset_size


def list_nets() -> list[NetSpec]:
    return [NETS[name] for name in sorted(NETS)]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_net_parameters(name: str, num_classes: int, image_size: int, **kwargs) -> int:
    """Count the parameters of a net without allocating or loading its weights.

    The net is built on PyTorch's meta device, so even ViT-L takes no memory; the count equals
    `count_parameters(create_net(...))` for the same arguments.
    """
    import torch

    kwargs["load_pretrained"] = False
    with torch.device("meta"):
        model = create_net(name, num_classes, image_size, **kwargs)
    return count_parameters(model)
