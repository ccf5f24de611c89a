"""Probabilistic losses: KL divergence, Poisson and the binary crossentropies."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F

from ._loss import _WrappedLoss
from ._utils import (
    EPSILON,
    TensorLike,
    _check_bool,
    _check_int_axis,
    _check_number,
    _mean,
    _pair,
)


def kl_divergence(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Sum of ``y_true * log(y_true / y_pred)``, both clipped to ``[eps, 1]``."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = torch.clamp(y_true, EPSILON, 1.0)
    y_pred = torch.clamp(y_pred, EPSILON, 1.0)
    return torch.sum(y_true * torch.log(y_true / y_pred), dim=-1)


def poisson(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``y_pred - y_true * log(y_pred + eps)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    return torch.mean(y_pred - y_true * torch.log(y_pred + EPSILON), dim=-1)


def _check_same_shape(target: torch.Tensor, output: torch.Tensor) -> None:
    if target.shape != output.shape:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape. "
            f"Received: target.shape={tuple(target.shape)}, "
            f"output.shape={tuple(output.shape)}"
        )


def _elementwise_bce(target: torch.Tensor, output: torch.Tensor, from_logits: bool) -> torch.Tensor:
    _check_same_shape(target, output)
    if from_logits:
        return F.binary_cross_entropy_with_logits(output, target, reduction="none")
    output = torch.clamp(output, EPSILON, 1.0 - EPSILON)
    return F.binary_cross_entropy(output, target, reduction="none")


def _smooth_binary(y_true: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return y_true


def _check_crossentropy_args(
    from_logits: Any, label_smoothing: Any, axis: Any
) -> Tuple[bool, int]:
    """Validates the arguments every crossentropy class takes."""
    from_logits = _check_bool("from_logits", from_logits)
    _check_number("label_smoothing", label_smoothing, 0.0, 1.0)
    return from_logits, _check_int_axis("axis", axis)


def binary_crossentropy(
    y_true: TensorLike,
    y_pred: TensorLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Binary crossentropy averaged over ``axis``.

    Probabilities are clipped to ``[eps, 1 - eps]``; with ``label_smoothing``
    the labels become ``y * (1 - ls) + 0.5 * ls``.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = _smooth_binary(y_true, label_smoothing)
    return _mean(_elementwise_bce(y_true, y_pred, from_logits), axis=axis)


def binary_focal_crossentropy(
    y_true: TensorLike,
    y_pred: TensorLike,
    apply_class_balancing: bool = False,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Binary crossentropy scaled by ``(1 - p_t) ** gamma`` (and by ``alpha`` /
    ``1 - alpha`` with ``apply_class_balancing``), averaged over ``axis``."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = _smooth_binary(y_true, label_smoothing)
    if from_logits:
        y_pred = torch.sigmoid(y_pred)
    bce = _elementwise_bce(y_true, y_pred, from_logits=False)
    p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
    focal_bce = torch.pow(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        weight = y_true * alpha + (1 - y_true) * (1 - alpha)
        focal_bce = weight * focal_bce
    return _mean(focal_bce, axis=axis)


class KLDivergence(_WrappedLoss):
    """Kullback-Leibler divergence ``sum(y_true * log(y_true / y_pred))``."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "kl_divergence",
        dtype: Any = None,
    ) -> None:
        super().__init__(kl_divergence, name=name, reduction=reduction, dtype=dtype)


class Poisson(_WrappedLoss):
    """Poisson loss ``mean(y_pred - y_true * log(y_pred))``."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "poisson",
        dtype: Any = None,
    ) -> None:
        super().__init__(poisson, name=name, reduction=reduction, dtype=dtype)


class BinaryCrossentropy(_WrappedLoss):
    """Binary crossentropy for 0/1 labels and probabilities (or logits with
    ``from_logits=True``), with optional ``label_smoothing``."""

    _config_keys = ("from_logits", "label_smoothing", "axis")

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "binary_crossentropy",
        dtype: Any = None,
    ) -> None:
        from_logits, axis = _check_crossentropy_args(from_logits, label_smoothing, axis)
        super().__init__(
            binary_crossentropy,
            name=name,
            reduction=reduction,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class BinaryFocalCrossentropy(_WrappedLoss):
    """Binary focal crossentropy (Lin et al., 2017) with focusing ``gamma`` and,
    with ``apply_class_balancing``, class weight ``alpha``."""

    _config_keys = (
        "from_logits",
        "label_smoothing",
        "axis",
        "apply_class_balancing",
        "alpha",
        "gamma",
    )

    def __init__(
        self,
        apply_class_balancing: bool = False,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "binary_focal_crossentropy",
        dtype: Any = None,
    ) -> None:
        apply_class_balancing = _check_bool("apply_class_balancing", apply_class_balancing)
        from_logits = _check_bool("from_logits", from_logits)
        _check_number("alpha", alpha, 0.0, 1.0)
        _check_number("gamma", gamma, low=0.0)
        _check_number("label_smoothing", label_smoothing, 0.0, 1.0)
        axis = _check_int_axis("axis", axis)
        super().__init__(
            binary_focal_crossentropy,
            name=name,
            reduction=reduction,
            dtype=dtype,
            apply_class_balancing=apply_class_balancing,
            alpha=alpha,
            gamma=gamma,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
