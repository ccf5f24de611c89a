"""Regression metrics (errors, cosine similarity, R^2)."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch

from .. import losses as _losses
from .base import (
    EPSILON,
    Metric,
    dtype_name,
    squeeze_or_expand_to_same_rank,
    to_tensor,
)
from .reduction_metrics import Mean, _FunctionMetric

__all__ = [
    "cosine_similarity",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "RootMeanSquaredError",
    "CosineSimilarity",
    "LogCoshError",
    "R2Score",
]


def _l2_normalize(x: torch.Tensor, axis: Any) -> torch.Tensor:
    if x.dim() == 0:
        x = x.unsqueeze(0)
    dims = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    square_sum = torch.sum(torch.square(x), dim=dims, keepdim=True)
    return x * torch.clamp_max(torch.rsqrt(square_sum), 1.0 / EPSILON)


def cosine_similarity(y_true: Any, y_pred: Any, axis: Any = -1) -> torch.Tensor:
    """Cosine of the angle between ``y_true`` and ``y_pred`` along ``axis``.

    Unlike the loss of the same name, this is the similarity itself (1 for
    identical directions), as Keras's metric function is.
    """
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, dtype=y_pred.dtype, device=y_pred.device)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    y_pred = _l2_normalize(y_pred, axis)
    y_true = _l2_normalize(y_true, axis)
    dims = tuple(axis) if isinstance(axis, (list, tuple)) else axis
    return torch.sum(y_true * y_pred, dim=dims)


class MeanSquaredError(_FunctionMetric):
    """Mean of ``(y_true - y_pred) ** 2``."""

    def __init__(self, name: str = "mean_squared_error", dtype: Any = None) -> None:
        super().__init__(fn=_losses.mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(_FunctionMetric):
    """Mean of ``|y_true - y_pred|``."""

    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None) -> None:
        super().__init__(fn=_losses.mean_absolute_error, name=name, dtype=dtype)


class MeanAbsolutePercentageError(_FunctionMetric):
    """Mean of ``100 * |y_true - y_pred| / |y_true|``."""

    def __init__(
        self, name: str = "mean_absolute_percentage_error", dtype: Any = None
    ) -> None:
        super().__init__(
            fn=_losses.mean_absolute_percentage_error, name=name, dtype=dtype
        )


class MeanSquaredLogarithmicError(_FunctionMetric):
    """Mean of ``(log(1 + y_pred) - log(1 + y_true)) ** 2``."""

    def __init__(
        self, name: str = "mean_squared_logarithmic_error", dtype: Any = None
    ) -> None:
        super().__init__(
            fn=_losses.mean_squared_logarithmic_error, name=name, dtype=dtype
        )


class RootMeanSquaredError(Mean):
    """Square root of the (weighted) mean of ``(y_pred - y_true) ** 2``."""

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = to_tensor(y_pred)
        device = self._follow(y_pred)
        y_pred = y_pred.to(self.torch_dtype)
        y_true = to_tensor(y_true, dtype=self.torch_dtype, device=device)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        super().update_state(torch.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self) -> torch.Tensor:
        return torch.sqrt(super().result())


class CosineSimilarity(_FunctionMetric):
    """Mean cosine similarity between labels and predictions along ``axis``."""

    _config_keys = ("axis",)

    def __init__(
        self, name: str = "cosine_similarity", dtype: Any = None, axis: Any = -1
    ) -> None:
        super().__init__(fn=cosine_similarity, name=name, dtype=dtype, axis=axis)


class LogCoshError(_FunctionMetric):
    """Mean of ``log(cosh(y_pred - y_true))``."""

    def __init__(self, name: str = "logcosh", dtype: Any = None) -> None:
        super().__init__(fn=_losses.log_cosh, name=name, dtype=dtype)


class R2Score(Metric):
    """Coefficient of determination, per output column then aggregated.

    Inputs must be 2-D ``(batch, outputs)``. ``class_aggregation`` is
    ``"uniform_average"`` (default), ``"variance_weighted_average"`` or
    ``None`` (one score per output). With ``num_regressors > 0`` the adjusted
    R^2 is returned, falling back to the plain score when there are too few
    samples (Keras also warns then; here that would need a host sync, so the
    fallback is silent).
    """

    _AGGREGATIONS = (None, "uniform_average", "variance_weighted_average")

    def __init__(
        self,
        class_aggregation: Optional[str] = "uniform_average",
        num_regressors: int = 0,
        name: str = "r2_score",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, dtype=dtype)
        if class_aggregation not in self._AGGREGATIONS:
            raise ValueError(
                "Invalid value for argument `class_aggregation`. Expected one of "
                f"{self._AGGREGATIONS}. Received: class_aggregation={class_aggregation}"
            )
        if num_regressors < 0:
            raise ValueError(
                "Invalid value for argument `num_regressors`. Expected a value >= 0. "
                f"Received: num_regressors={num_regressors}"
            )
        self.class_aggregation = class_aggregation
        self.num_regressors = num_regressors
        self.add_state("num_samples", (), 0.0)
        self._built = False

    def _build(self, true_shape: torch.Size, pred_shape: torch.Size) -> None:
        if len(pred_shape) != 2 or len(true_shape) != 2:
            raise ValueError(
                "R2Score expects 2D inputs with shape (batch_size, output_dim). "
                f"Received input shapes: y_pred.shape={tuple(pred_shape)} and "
                f"y_true.shape={tuple(true_shape)}."
            )
        num_outputs = pred_shape[-1]
        for state in ("squared_sum", "sum", "residual", "count"):
            self.add_state(state, (num_outputs,), 0.0)
        self._built = True

    def _build_like(self, state: Sequence[Any]) -> None:
        outputs = to_tensor(state[-1]).shape[-1]  # the per-output states come last
        self._build((1, outputs), (1, outputs))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = to_tensor(y_pred)
        device = self._follow(y_pred)
        y_pred = y_pred.to(self.torch_dtype)
        y_true = to_tensor(y_true, dtype=self.torch_dtype, device=device)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        if sample_weight is None:
            sample_weight = 1.0
        sample_weight = to_tensor(sample_weight, dtype=self.torch_dtype, device=device)
        if sample_weight.dim() == 1:
            sample_weight = sample_weight.unsqueeze(1)
        sample_weight = torch.broadcast_to(sample_weight, y_true.shape)
        weighted_y_true = y_true * sample_weight
        self.sum.add_(torch.sum(weighted_y_true, dim=0))
        self.squared_sum.add_(torch.sum(y_true * weighted_y_true, dim=0))
        self.residual.add_(torch.sum((y_true - y_pred) ** 2 * sample_weight, dim=0))
        self.count.add_(torch.sum(sample_weight, dim=0))
        self.num_samples.add_(y_true.numel())

    def result(self) -> torch.Tensor:
        mean = self.sum / self.count
        total = self.squared_sum - self.sum * mean
        raw_scores = 1 - (self.residual / total)
        raw_scores = torch.where(torch.isinf(raw_scores), 0.0, raw_scores)
        if self.class_aggregation == "uniform_average":
            score = torch.mean(raw_scores)
        elif self.class_aggregation == "variance_weighted_average":
            score = torch.sum(total * raw_scores) / torch.sum(total)
        else:
            score = raw_scores
        if self.num_regressors != 0:
            n = self.num_samples.to(torch.float32)
            p = float(self.num_regressors)
            adjusted = 1.0 - (1.0 - score) * (n - 1.0) / (n - p - 1.0)
            score = torch.where(p < n - 1.0, adjusted.to(score.dtype), score)
        return score

    def reset_state(self) -> None:
        for value in self.variables:
            value.zero_()

    def get_config(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "dtype": dtype_name(self.torch_dtype),
            "class_aggregation": self.class_aggregation,
            "num_regressors": self.num_regressors,
        }
