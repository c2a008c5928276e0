"""`nn.Module` forms of the losses in `rlo_core.losses.functional`."""

from __future__ import annotations


from torch import Tensor, nn

from rlo_core.losses import functional as F


class _ClassificationLoss(nn.Module):
    def __init__(self, weight: Tensor | None = None, ignore_index: int = -100,
                 reduction: str = "mean"):
        super().__init__()
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}.")
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = reduction

    def _common(self) -> dict:
        return {"weight": self.weight, "ignore_index": self.ignore_index,
                "reduction": self.reduction}


class RLOLoss(_ClassificationLoss):
    """m * (1 - p_y^(1/k)); see `rlo_core.losses.functional.rlo_loss`."""

    def __init__(self, k: float = 3.0, m: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.k, self.m = F.check_positive("k", k), F.check_positive("m", m)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.rlo_loss(logits, target, k=self.k, m=self.m, **self._common())

    def extra_repr(self) -> str:
        return f"k={self.k}, m={self.m}"


class RLOConvexLoss(_ClassificationLoss):
    """k * (p_y^(-1/k) - 1); see `rlo_core.losses.functional.rlo_convex_loss`."""

    def __init__(self, k: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.k = F.check_positive("k", k)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.rlo_convex_loss(logits, target, k=self.k, **self._common())

    def extra_repr(self) -> str:
        return f"k={self.k}"


class FocalLoss(_ClassificationLoss):
    """alpha * (1 - p_y)^gamma * CE."""

    def __init__(self, alpha: float = 0.25, gamma: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha, self.gamma = F.check_positive("alpha", alpha), float(gamma)
        if self.gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma!r}.")

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.focal_loss(logits, target, alpha=self.alpha, gamma=self.gamma, **self._common())

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, gamma={self.gamma}"


class CrossEntropyLoss(_ClassificationLoss):
    """Cross-entropy, with the same constructor as the other losses here."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy_loss(logits, target, **self._common())


class BinaryRootedLogistic(nn.Module):
    """k * exp(softplus(-s*t)/k) for logits t and label signs s in {+1, -1}."""

    def __init__(self, k: float = 2.0, reduction: str = "mean"):
        super().__init__()
        self.k = F.check_positive("k", k)
        self.reduction = reduction

    def forward(self, logits: Tensor, sign: Tensor | float) -> Tensor:
        return F.binary_rooted_logistic(logits, sign, k=self.k, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"k={self.k}"


