"""Regression losses: squared, absolute, percentage and logarithmic errors,
cosine similarity, Huber and log-cosh."""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F

from ._loss import _WrappedLoss
from ._utils import EPSILON, Axis, TensorLike, _aligned_pair, _check_axes, _check_number, _sum


def mean_squared_error(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``(y_true - y_pred) ** 2`` over the last axis."""
    y_true, y_pred = _aligned_pair(y_true, y_pred)
    return torch.mean(torch.square(y_true - y_pred), dim=-1)


def mean_absolute_error(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``|y_true - y_pred|`` over the last axis."""
    y_true, y_pred = _aligned_pair(y_true, y_pred)
    return torch.mean(torch.abs(y_true - y_pred), dim=-1)


def mean_absolute_percentage_error(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """``100 * mean(|y_true - y_pred| / max(|y_true|, eps))`` over the last axis."""
    y_true, y_pred = _aligned_pair(y_true, y_pred)
    diff = torch.abs((y_true - y_pred) / torch.clamp_min(torch.abs(y_true), EPSILON))
    return 100.0 * torch.mean(diff, dim=-1)


def mean_squared_logarithmic_error(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)) ** 2``."""
    y_true, y_pred = _aligned_pair(y_true, y_pred)
    first_log = torch.log(torch.clamp_min(y_pred, EPSILON) + 1.0)
    second_log = torch.log(torch.clamp_min(y_true, EPSILON) + 1.0)
    return torch.mean(torch.square(first_log - second_log), dim=-1)


def _l2_normalize(x: torch.Tensor, axis: Axis) -> torch.Tensor:
    if x.dim() == 0:
        x = x.unsqueeze(0)
    square_sum = _sum(torch.square(x), axis=axis, keepdim=True)
    if axis is None:
        square_sum = square_sum.reshape((1,) * x.dim())
    inv_norm = torch.clamp_max(torch.rsqrt(square_sum), 1.0 / EPSILON)
    return x * inv_norm


def cosine_similarity(y_true: TensorLike, y_pred: TensorLike, axis: Axis = -1) -> torch.Tensor:
    """Negative cosine similarity along ``axis`` (-1 = identical directions)."""
    y_true, y_pred = _aligned_pair(y_true, y_pred)
    y_pred = _l2_normalize(y_pred, axis)
    y_true = _l2_normalize(y_true, axis)
    return -_sum(y_true * y_pred, axis=axis)


def huber(y_true: TensorLike, y_pred: TensorLike, delta: float = 1.0) -> torch.Tensor:
    """Huber loss: quadratic for ``|error| <= delta``, linear beyond."""
    y_true, y_pred = _aligned_pair(y_true, y_pred)
    error = y_pred - y_true
    abs_error = torch.abs(error)
    quadratic = 0.5 * torch.square(error)
    if isinstance(delta, torch.Tensor):
        delta = delta.to(dtype=y_pred.dtype, device=y_pred.device)
        linear = delta * abs_error - 0.5 * torch.square(delta)
    else:  # Python number: no device tensor needed
        linear = delta * abs_error - 0.5 * delta * delta
    return torch.mean(torch.where(abs_error <= delta, quadratic, linear), dim=-1)


def log_cosh(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``log(cosh(y_pred - y_true))``, computed overflow-free."""
    y_true, y_pred = _aligned_pair(y_true, y_pred)
    x = y_pred - y_true
    return torch.mean(x + F.softplus(x * -2.0) - math.log(2.0), dim=-1)


class MeanSquaredError(_WrappedLoss):
    """Mean of squares of errors: ``mean((y_true - y_pred) ** 2)``."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "mean_squared_error",
        dtype: Any = None,
    ) -> None:
        super().__init__(mean_squared_error, name=name, reduction=reduction, dtype=dtype)


class MeanAbsoluteError(_WrappedLoss):
    """Mean of absolute errors: ``mean(|y_true - y_pred|)``."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "mean_absolute_error",
        dtype: Any = None,
    ) -> None:
        super().__init__(mean_absolute_error, name=name, reduction=reduction, dtype=dtype)


class MeanAbsolutePercentageError(_WrappedLoss):
    """``100 * mean(|(y_true - y_pred) / y_true|)`` (denominator clipped at eps)."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "mean_absolute_percentage_error",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            mean_absolute_percentage_error, name=name, reduction=reduction, dtype=dtype
        )


class MeanSquaredLogarithmicError(_WrappedLoss):
    """``mean((log(y_true + 1) - log(y_pred + 1)) ** 2)`` (inputs clipped at eps)."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "mean_squared_logarithmic_error",
        dtype: Any = None,
    ) -> None:
        super().__init__(
            mean_squared_logarithmic_error, name=name, reduction=reduction, dtype=dtype
        )


class CosineSimilarity(_WrappedLoss):
    """Negative cosine similarity along ``axis`` (in ``[-1, 1]``; -1 is best).

    ``axis`` is kept in the config (Keras drops it).
    """

    _config_keys = ("axis",)

    def __init__(
        self,
        axis: Axis = -1,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "cosine_similarity",
        dtype: Any = None,
    ) -> None:
        axis = _check_axes("axis", axis)
        super().__init__(
            cosine_similarity, name=name, reduction=reduction, dtype=dtype, axis=axis
        )


class Huber(_WrappedLoss):
    """Huber loss with threshold ``delta`` (kept in the config; Keras drops it)."""

    _config_keys = ("delta",)

    def __init__(
        self,
        delta: float = 1.0,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "huber_loss",
        dtype: Any = None,
    ) -> None:
        _check_number("delta", delta, low=0.0)
        super().__init__(huber, name=name, reduction=reduction, dtype=dtype, delta=delta)


class LogCosh(_WrappedLoss):
    """Mean of ``log(cosh(y_pred - y_true))``."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "log_cosh",
        dtype: Any = None,
    ) -> None:
        super().__init__(log_cosh, name=name, reduction=reduction, dtype=dtype)
