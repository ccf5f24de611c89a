"""Segmentation losses: Dice and Tversky."""

from __future__ import annotations

from typing import Any, Optional

import torch

from ._loss import _WrappedLoss
from ._utils import EPSILON, Axis, TensorLike, _check_axes, _check_number, _pair, _sum


def dice(y_true: TensorLike, y_pred: TensorLike, axis: Axis = None) -> torch.Tensor:
    """``1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + eps)``,
    summed over ``axis`` (all axes when ``None``)."""
    y_true, y_pred = _pair(y_true, y_pred)
    intersection = _sum(y_true * y_pred, axis=axis)
    score = (2.0 * intersection) / (_sum(y_true, axis=axis) + _sum(y_pred, axis=axis) + EPSILON)
    return 1 - score


def tversky(
    y_true: TensorLike,
    y_pred: TensorLike,
    alpha: float = 0.5,
    beta: float = 0.5,
    axis: Axis = None,
) -> torch.Tensor:
    """``1 - TP / (TP + alpha * FP + beta * FN + eps)`` with soft counts
    summed over ``axis`` (all axes when ``None``).

    Follows Keras: ``FP = sum((1 - y_pred) * y_true)`` and
    ``FN = sum(y_pred * (1 - y_true))``.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    intersection = _sum(y_true * y_pred, axis=axis)
    fp = _sum((1 - y_pred) * y_true, axis=axis)
    fn = _sum(y_pred * (1 - y_true), axis=axis)
    score = intersection / (intersection + fp * alpha + fn * beta + EPSILON)
    return 1 - score



class Dice(_WrappedLoss):
    """Dice loss ``1 - 2|A∩B| / (|A| + |B|)``, summed over ``axis`` (everything
    when ``None``, giving one scalar per batch)."""

    _config_keys = ("axis",)

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "dice",
        axis: Axis = None,
        dtype: Any = None,
    ) -> None:
        axis = _check_axes("axis", axis)
        super().__init__(dice, name=name, reduction=reduction, dtype=dtype, axis=axis)


class Tversky(_WrappedLoss):
    """Tversky loss, a Dice generalisation weighting false positives by
    ``alpha`` and false negatives by ``beta``."""

    _config_keys = ("alpha", "beta", "axis")

    def __init__(
        self,
        alpha: float = 0.5,
        beta: float = 0.5,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "tversky",
        axis: Axis = None,
        dtype: Any = None,
    ) -> None:
        _check_number("alpha", alpha)
        _check_number("beta", beta)
        axis = _check_axes("axis", axis)
        super().__init__(
            tversky,
            name=name,
            reduction=reduction,
            dtype=dtype,
            alpha=alpha,
            beta=beta,
            axis=axis,
        )
