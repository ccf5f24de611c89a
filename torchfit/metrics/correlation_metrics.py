"""Correlation metrics: Pearson's and Lin's concordance correlation.

Both are per-sample functions (the correlation along ``axis``, the feature
axis by default) averaged over samples by :class:`MeanMetricWrapper`, as in
Keras; they are not the correlation of the whole dataset.
"""

from __future__ import annotations

import numbers
from typing import Any, Dict

import torch

from .base import EPSILON, dtype_name, squeeze_or_expand_to_same_rank, to_tensor
from .reduction_metrics import MeanMetricWrapper

__all__ = [
    "pearson_correlation",
    "concordance_correlation",
    "PearsonCorrelation",
    "ConcordanceCorrelation",
]


def _prepare(y_true: Any, y_pred: Any):
    y_pred = to_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(torch.float32)
    y_true = to_tensor(y_true, dtype=y_pred.dtype, device=y_pred.device)
    return squeeze_or_expand_to_same_rank(y_true, y_pred)


def pearson_correlation(y_true: Any, y_pred: Any, axis: int = -1) -> torch.Tensor:
    """Pearson's correlation of ``y_true`` and ``y_pred`` along ``axis``."""
    y_true, y_pred = _prepare(y_true, y_pred)
    true_centered = y_true - y_true.mean(dim=axis, keepdim=True)
    pred_centered = y_pred - y_pred.mean(dim=axis, keepdim=True)
    true_centered = true_centered / torch.std(true_centered, dim=axis, keepdim=True, correction=0)
    pred_centered = pred_centered / torch.std(pred_centered, dim=axis, keepdim=True, correction=0)
    return torch.mean(true_centered * pred_centered, dim=axis)


def concordance_correlation(y_true: Any, y_pred: Any, axis: int = -1) -> torch.Tensor:
    """Lin's concordance correlation coefficient along ``axis``.

    Keras 3 computes the covariance term as
    ``mean((y_true - mean(y_pred)) * (y_pred - mean(y_pred)))``; this
    function gives the same numbers.
    """
    y_true, y_pred = _prepare(y_true, y_pred)
    true_mean = y_true.mean(dim=axis, keepdim=True)
    pred_mean = y_pred.mean(dim=axis, keepdim=True)
    true_var = torch.var(y_true - true_mean, dim=axis, keepdim=True, correction=0)
    pred_var = torch.var(y_pred - pred_mean, dim=axis, keepdim=True, correction=0)
    covariance = (y_true - pred_mean) * (y_pred - pred_mean)
    norm = true_var + pred_var + torch.square(true_mean - pred_mean)
    return torch.mean(2 * covariance / (norm + EPSILON), dim=axis)


class _CorrelationMetric(MeanMetricWrapper):
    _fn_default = None

    def __init__(self, name: str, dtype: Any, axis: int) -> None:
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(
                f"{type(self).__name__}: argument `axis` must be an int; received "
                f"axis={axis!r} of type {type(axis).__name__}."
            )
        super().__init__(fn=type(self)._fn_default, name=name, dtype=dtype, axis=int(axis))
        self.axis = int(axis)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": dtype_name(self.torch_dtype), "axis": self.axis}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "_CorrelationMetric":
        return cls(**config)


class PearsonCorrelation(_CorrelationMetric):
    """Mean over samples of Pearson's correlation along ``axis``.

    Args:
        name (str): default ``"pearson_correlation"``.
        dtype: default float32.
        axis (int): the axis the correlation is computed along. Default -1.
    """

    _fn_default = staticmethod(pearson_correlation)

    def __init__(self, name: str = "pearson_correlation", dtype: Any = None, axis: int = -1) -> None:
        super().__init__(name=name, dtype=dtype, axis=axis)


class ConcordanceCorrelation(_CorrelationMetric):
    """Mean over samples of the concordance correlation along ``axis``.

    Args:
        name (str): default ``"concordance_correlation"``.
        dtype: default float32.
        axis (int): default -1.
    """

    _fn_default = staticmethod(concordance_correlation)

    def __init__(
        self, name: str = "concordance_correlation", dtype: Any = None, axis: int = -1
    ) -> None:
        super().__init__(name=name, dtype=dtype, axis=axis)
