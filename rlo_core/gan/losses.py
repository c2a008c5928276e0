"""GAN losses on discriminator logits: the rooted logistic form and the logistic (softplus) form.

With l(t) the per-sample loss of a margin t (label sign times logit):

- generator:      l(D(G(z)))                      (non-saturating, sign +1 on fakes)
- discriminator:  l(-D(G(z))) + l(D(x))           (sign -1 on fakes, +1 on reals)

`loss="rlo"` uses l_k(t) = k * (1 + exp(-t))^(1/k), computed as k * exp(softplus(-t) / k) by
`rlo_core.losses.binary_rooted_logistic`, which stays finite for any logit. `loss="ce"` uses
the logistic loss softplus(-t), the non-saturating loss of StyleGAN2-ADA. Both compute in
float32 whatever the logits' dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rlo_core.losses import binary_rooted_logistic

GAN_LOSSES = ("rlo", "ce")


def margin_loss(logits: Tensor, sign: float, *, loss: str, k: float = 2.0) -> Tensor:
    """Mean over the batch of l(sign * logits) for the chosen loss."""
    if loss == "rlo":
        return binary_rooted_logistic(logits, sign, k=k, reduction="mean")
    if loss == "ce":
        return F.softplus(-sign * logits.float()).mean()
    raise ValueError(f"Unknown GAN loss {loss!r}; expected one of {GAN_LOSSES}.")


def generator_loss(fake_logits: Tensor, *, loss: str, k: float = 2.0) -> Tensor:
    """Non-saturating generator loss l(D(G(z)))."""
    return margin_loss(fake_logits, 1.0, loss=loss, k=k)


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor, *, loss: str,
                       k: float = 2.0) -> Tensor:
    """Discriminator loss l(-D(G(z))) + l(D(x))."""
    return (margin_loss(fake_logits, -1.0, loss=loss, k=k)
            + margin_loss(real_logits, 1.0, loss=loss, k=k))


def r1_penalty(real_images: Tensor, real_logits: Tensor) -> Tensor:
    """Per-sample squared gradient norm ||d D(x) / d x||^2 on reals, shape [N] (Mescheder et
    al., 2018). `real_images` must require grad; the graph is kept so the penalty trains D."""
    (gradient,) = torch.autograd.grad(real_logits.float().sum(), real_images, create_graph=True)
    return gradient.float().square().sum(dim=(1, 2, 3))
