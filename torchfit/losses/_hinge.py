"""Hinge losses: hinge, squared hinge and categorical hinge."""

from __future__ import annotations

from typing import Any, Optional

import torch

from ._loss import _WrappedLoss
from ._utils import TensorLike, _pair


def _hinge_margins(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """``max(1 - y_true * y_pred, 0)``, with 0/1 labels mapped to -1/1."""
    y_true, y_pred = _pair(y_true, y_pred)
    # {0, 1} labels become {-1, 1}; any other labels are left as they are.
    # (Keras branches on the host; a `where` gives the same values without a
    # device sync.)
    is_binary = torch.all((y_true == 0) | (y_true == 1))
    y_true = torch.where(is_binary, 2.0 * y_true - 1.0, y_true)
    return torch.clamp_min(1.0 - y_true * y_pred, 0.0)


def hinge(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``max(1 - y_true * y_pred, 0)``; 0/1 labels are mapped to -1/1."""
    return torch.mean(_hinge_margins(y_true, y_pred), dim=-1)


def squared_hinge(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``max(1 - y_true * y_pred, 0) ** 2``; 0/1 labels -> -1/1."""
    return torch.mean(torch.square(_hinge_margins(y_true, y_pred)), dim=-1)


def categorical_hinge(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    pos = torch.sum(y_true * y_pred, dim=-1)
    neg = torch.amax((1.0 - y_true) * y_pred, dim=-1)
    return torch.clamp_min(neg - pos + 1.0, 0.0)


class Hinge(_WrappedLoss):
    """Hinge loss ``mean(max(1 - y_true * y_pred, 0))`` (0/1 labels -> -1/1)."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "hinge",
        dtype: Any = None,
    ) -> None:
        super().__init__(hinge, name=name, reduction=reduction, dtype=dtype)


class SquaredHinge(_WrappedLoss):
    """Squared hinge loss ``mean(max(1 - y_true * y_pred, 0) ** 2)``."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "squared_hinge",
        dtype: Any = None,
    ) -> None:
        super().__init__(squared_hinge, name=name, reduction=reduction, dtype=dtype)


class CategoricalHinge(_WrappedLoss):
    """Categorical hinge loss ``max(neg - pos + 1, 0)``."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "categorical_hinge",
        dtype: Any = None,
    ) -> None:
        super().__init__(categorical_hinge, name=name, reduction=reduction, dtype=dtype)
