"""Categorical losses: categorical, focal, sparse and generalized crossentropies."""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F

from ._loss import _WrappedLoss
from ._probabilistic import _check_crossentropy_args, _check_same_shape
from ._utils import (
    EPSILON,
    TensorLike,
    _check_bool,
    _check_int_axis,
    _check_number,
    _pair,
    _set_mask,
    _to_float_tensor,
    _to_tensor,
)


def _categorical_inputs(
    loss_name: str, y_true: TensorLike, y_pred: TensorLike, label_smoothing: float, axis: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """The checks, warning and label smoothing both one-hot crossentropies start with."""
    if isinstance(axis, bool):
        raise ValueError(
            f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}"
        )
    y_true, y_pred = _pair(y_true, y_pred)
    if y_pred.dim() > 0 and y_pred.shape[-1] == 1:
        warnings.warn(
            f"In loss {loss_name}, expected y_pred.shape to be "
            "(batch_size, num_classes) with num_classes > 1. Received: "
            f"y_pred.shape={tuple(y_pred.shape)}. Consider using "
            "'binary_crossentropy' if you only have 2 classes.",
            SyntaxWarning,
            stacklevel=3,
        )
    if label_smoothing:
        num_classes = y_true.shape[-1]
        y_true = y_true * (1.0 - label_smoothing) + (label_smoothing / num_classes)
    return y_true, y_pred


def categorical_crossentropy(
    y_true: TensorLike,
    y_pred: TensorLike,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Categorical crossentropy over the class ``axis`` (one-hot ``y_true``).

    Probabilities are renormalised to sum to 1 along ``axis`` and clipped to
    ``[eps, 1 - eps]``; logits go through ``log_softmax``.
    """
    y_true, y_pred = _categorical_inputs(
        "categorical_crossentropy", y_true, y_pred, label_smoothing, axis
    )
    _check_same_shape(y_true, y_pred)
    if y_true.dim() < 1:
        raise ValueError(
            "Arguments `target` and `output` must be at least rank 1. "
            f"Received: target.shape={tuple(y_true.shape)}, "
            f"output.shape={tuple(y_pred.shape)}"
        )
    if from_logits:
        log_prob = F.log_softmax(y_pred, dim=axis)
    else:
        output = y_pred / torch.sum(y_pred, dim=axis, keepdim=True)
        log_prob = torch.log(torch.clamp(output, EPSILON, 1.0 - EPSILON))
    return -torch.sum(y_true * log_prob, dim=axis)


def categorical_focal_crossentropy(
    y_true: TensorLike,
    y_pred: TensorLike,
    alpha: float = 0.25,
    gamma: float = 2.0,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> torch.Tensor:
    """Categorical crossentropy with each class term scaled by
    ``alpha * (1 - p) ** gamma``, summed over ``axis``."""
    y_true, y_pred = _categorical_inputs(
        "categorical_focal_crossentropy", y_true, y_pred, label_smoothing, axis
    )
    if from_logits:
        y_pred = torch.softmax(y_pred, dim=axis)
    output = y_pred / torch.sum(y_pred, dim=axis, keepdim=True)
    output = torch.clamp(output, EPSILON, 1.0 - EPSILON)
    cce = -y_true * torch.log(output)
    if not isinstance(alpha, numbers.Real):  # per-class weights
        alpha = _to_tensor(alpha, dtype=output.dtype, device=output.device)
    focal_cce = torch.pow(1.0 - output, gamma) * alpha * cce
    return torch.sum(focal_cce, dim=axis)


def sparse_categorical_crossentropy(
    y_true: TensorLike,
    y_pred: TensorLike,
    from_logits: bool = False,
    ignore_class: Optional[int] = None,
    axis: int = -1,
) -> torch.Tensor:
    """Crossentropy between integer labels ``y_true`` and class scores.

    ``y_true`` may carry a trailing size-1 axis. Entries equal to
    ``ignore_class`` get a loss of 0 and are masked out of the reduction (the
    result carries a ``_keras_mask``).
    """
    y_pred = _to_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(torch.get_default_dtype())
    y_true = _to_tensor(y_true, device=y_pred.device)
    if y_true.dim() == y_pred.dim() and y_true.shape[axis] == 1:
        y_true = y_true.squeeze(axis)
    if y_pred.dim() < 1:
        raise ValueError(
            "Argument `output` must be at least rank 1. "
            f"Received: output.shape={tuple(y_pred.shape)}"
        )
    class_axis = axis % y_pred.dim()
    res_shape = tuple(d for i, d in enumerate(y_pred.shape) if i != class_axis)
    valid_mask = None
    if ignore_class is not None:
        valid_mask = y_true != ignore_class
        y_true = torch.where(valid_mask, y_true, torch.zeros_like(y_true))
        y_pred = torch.where(valid_mask.unsqueeze(axis), y_pred, torch.zeros_like(y_pred))
    target = y_true.to(torch.long)
    if tuple(target.shape) != res_shape:
        raise ValueError(
            "Arguments `target` and `output` must have the same shape up until "
            f"the last dimension: target.shape={tuple(target.shape)}, "
            f"output.shape={tuple(y_pred.shape)}"
        )
    output = y_pred
    if output.dim() == 1:
        output, target = output.unsqueeze(0), target.unsqueeze(0)
    elif class_axis != 1:
        output = output.movedim(class_axis, 1)
    if from_logits:
        res = F.cross_entropy(output, target, reduction="none")
    else:
        output = output / torch.sum(output, dim=1, keepdim=True)
        log_prob = torch.log(torch.clamp(output, EPSILON, 1.0 - EPSILON))
        res = F.nll_loss(log_prob, target, reduction="none")
    if y_pred.dim() == 1:
        res = res.squeeze(0)
    if valid_mask is not None:
        valid_mask = valid_mask.reshape(res_shape)
        res = torch.where(valid_mask, res, torch.zeros_like(res))
        _set_mask(res, valid_mask)
    return res


def categorical_generalized_cross_entropy(
    y_true: TensorLike, y_pred: TensorLike, q: float
) -> torch.Tensor:
    """Generalized cross entropy (Zhang & Sabuncu 2018): ``(1 - p**q) / q``.

    ``y_true`` holds integer class ids, ``y_pred`` class probabilities and
    ``p`` is the probability of the true class (0 for an id outside the
    classes). ``q`` in (0, 1) moves from cross entropy (q -> 0) to MAE (q = 1).
    """
    y_pred = _to_float_tensor(y_pred)
    labels = _to_tensor(y_true, device=y_pred.device)
    if labels.dim() == y_pred.dim() and labels.dim() > 1 and labels.shape[-1] == 1 and y_pred.shape[-1] != 1:
        labels = labels.squeeze(-1)
    classes = torch.arange(y_pred.shape[-1], device=y_pred.device)
    one_hot = (labels.to(torch.long).unsqueeze(-1) == classes).to(y_pred.dtype)
    p = torch.sum(y_pred * one_hot, dim=-1)
    return (1 - torch.pow(p, q)) / q


class CategoricalCrossentropy(_WrappedLoss):
    """Crossentropy between one-hot labels and class probabilities (or logits
    with ``from_logits=True``), with optional ``label_smoothing``."""

    _config_keys = ("from_logits", "label_smoothing", "axis")

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "categorical_crossentropy",
        dtype: Any = None,
    ) -> None:
        from_logits, axis = _check_crossentropy_args(from_logits, label_smoothing, axis)
        super().__init__(
            categorical_crossentropy,
            name=name,
            reduction=reduction,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class CategoricalFocalCrossentropy(_WrappedLoss):
    """Categorical focal crossentropy with weight ``alpha`` (a scalar or one
    weight per class) and focusing parameter ``gamma``."""

    _config_keys = ("from_logits", "label_smoothing", "axis", "alpha", "gamma")

    def __init__(
        self,
        alpha: float = 0.25,
        gamma: float = 2.0,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        axis: int = -1,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "categorical_focal_crossentropy",
        dtype: Any = None,
    ) -> None:
        from_logits = _check_bool("from_logits", from_logits)
        if isinstance(alpha, (list, tuple)):
            for a in alpha:
                _check_number("alpha", a)
        else:
            _check_number("alpha", alpha)
        _check_number("gamma", gamma, low=0.0)
        _check_number("label_smoothing", label_smoothing, 0.0, 1.0)
        axis = _check_int_axis("axis", axis)
        super().__init__(
            categorical_focal_crossentropy,
            name=name,
            reduction=reduction,
            dtype=dtype,
            alpha=alpha,
            gamma=gamma,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )


class SparseCategoricalCrossentropy(_WrappedLoss):
    """Crossentropy between integer labels and class probabilities (or logits
    with ``from_logits=True``); labels equal to ``ignore_class`` are masked.

    ``axis`` is kept in the config (Keras drops it).
    """

    _config_keys = ("from_logits", "ignore_class", "axis")

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: Optional[int] = None,
        reduction: Optional[str] = "sum_over_batch_size",
        axis: int = -1,
        name: Optional[str] = "sparse_categorical_crossentropy",
        dtype: Any = None,
    ) -> None:
        from_logits = _check_bool("from_logits", from_logits)
        if ignore_class is not None and (
            isinstance(ignore_class, bool) or not isinstance(ignore_class, numbers.Integral)
        ):
            raise TypeError(
                "Invalid type for argument `ignore_class`. Expected an int or "
                f"None. Received: ignore_class={ignore_class!r} of type "
                f"{type(ignore_class).__name__}"
            )
        axis = _check_int_axis("axis", axis)
        super().__init__(
            sparse_categorical_crossentropy,
            name=name,
            reduction=reduction,
            dtype=dtype,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )


class CategoricalGeneralizedCrossEntropy(_WrappedLoss):
    """Generalized cross entropy for noisy labels (see
    :func:`categorical_generalized_cross_entropy`).

    Args:
        q (float): in (0, 1), default 0.5.
        reduction, name, dtype: see :class:`Loss`.
    """

    _config_keys = ("q",)

    def __init__(
        self,
        q: float = 0.5,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "categorical_generalized_cross_entropy",
        dtype: Any = None,
    ) -> None:
        _check_number("q", q, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
        super().__init__(
            categorical_generalized_cross_entropy,
            name=name,
            reduction=reduction,
            dtype=dtype,
            q=q,
        )
