"""Losses built by name through one registry.

    >>> from rlo_core.losses import build_loss
    >>> criterion = build_loss("rlo", k=3, m=3)

Names: `rlo` (alias `root`), `rlo-convex`, `ce` (alias `cross-entropy`), `focal`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from torch import nn

from rlo_core.losses.functional import (
    binary_rooted_logistic,
    cross_entropy_loss,
    focal_loss,
    rlo_convex_loss,
    rlo_loss,
)
from rlo_core.losses.modules import (
    BinaryRootedLogistic,
    CrossEntropyLoss,
    FocalLoss,
    RLOConvexLoss,
    RLOLoss,
)


@dataclass(frozen=True)
class LossSpec:
    name: str
    module: type[nn.Module]
    params: tuple[str, ...]  # hyper-parameters the loss takes from a config (k, m, alpha, gamma)
    description: str


LOSSES: dict[str, LossSpec] = {
    "rlo": LossSpec("rlo", RLOLoss, ("k", "m"), "m * (1 - p_y^(1/k)), the rooted logistic objective"),
    "rlo-convex": LossSpec("rlo-convex", RLOConvexLoss, ("k",), "k * (p_y^(-1/k) - 1), convex"),
    "ce": LossSpec("ce", CrossEntropyLoss, (), "cross-entropy"),
    "focal": LossSpec("focal", FocalLoss, ("alpha", "gamma"), "alpha * (1 - p_y)^gamma * CE"),
}
ALIASES = {"root": "rlo", "rlo_convex": "rlo-convex", "cross-entropy": "ce",
           "cross_entropy": "ce", "crossentropy": "ce"}


def canonical_loss_name(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in LOSSES:
        raise ValueError(unknown_name_message("loss", name, [*LOSSES, *ALIASES]))
    return key


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build a loss module by name. Hyper-parameters the loss does not take are ignored,
    so one config (k, m, alpha, gamma) can build any loss."""
    spec = LOSSES[canonical_loss_name(name)]
    common = {key: kwargs[key] for key in ("weight", "ignore_index", "reduction") if key in kwargs}
    params = {key: kwargs[key] for key in spec.params if kwargs.get(key) is not None}
    return spec.module(**params, **common)


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name.lower(), valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return f"Unknown {kind} '{name}'.{hint} Valid names: {', '.join(sorted(valid))}."


__all__ = [
    "ALIASES", "LOSSES", "BinaryRootedLogistic", "CrossEntropyLoss", "FocalLoss", "LossSpec",
    "RLOConvexLoss", "RLOLoss", "binary_rooted_logistic", "build_loss", "canonical_loss_name",
    "cross_entropy_loss", "focal_loss", "rlo_convex_loss", "rlo_loss", "unknown_name_message",
]
