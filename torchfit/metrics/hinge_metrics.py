"""Hinge metrics (the per-sample computations come from :mod:`torchfit.losses`)."""

from __future__ import annotations

from typing import Any

from .. import losses as _losses
from .reduction_metrics import _FunctionMetric

__all__ = ["Hinge", "SquaredHinge", "CategoricalHinge"]


class Hinge(_FunctionMetric):
    """Mean of ``max(1 - y_true * y_pred, 0)`` (0/1 labels become -1/1)."""

    def __init__(self, name: str = "hinge", dtype: Any = None) -> None:
        super().__init__(fn=_losses.hinge, name=name, dtype=dtype)


class SquaredHinge(_FunctionMetric):
    """Mean of ``max(1 - y_true * y_pred, 0) ** 2`` (0/1 labels become -1/1)."""

    def __init__(self, name: str = "squared_hinge", dtype: Any = None) -> None:
        super().__init__(fn=_losses.squared_hinge, name=name, dtype=dtype)


class CategoricalHinge(_FunctionMetric):
    """Mean of ``max(max_neg - pos + 1, 0)`` over one-hot labels."""

    def __init__(self, name: str = "categorical_hinge", dtype: Any = None) -> None:
        super().__init__(fn=_losses.categorical_hinge, name=name, dtype=dtype)
