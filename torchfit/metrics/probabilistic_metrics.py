"""Probabilistic metrics: crossentropies, KL divergence and Poisson.

The per-sample computations come from :mod:`torchfit.losses`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .. import losses as _losses
from .base import dtype_name
from .reduction_metrics import MeanMetricWrapper

__all__ = [
    "KLDivergence",
    "Poisson",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
]


class KLDivergence(MeanMetricWrapper):
    """Mean Kullback-Leibler divergence ``sum(y_true * log(y_true / y_pred))``."""

    def __init__(self, name: str = "kl_divergence", dtype: Any = None) -> None:
        super().__init__(fn=_losses.kl_divergence, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": dtype_name(self.dtype)}


class Poisson(MeanMetricWrapper):
    """Mean Poisson deviance term ``y_pred - y_true * log(y_pred)``."""

    def __init__(self, name: str = "poisson", dtype: Any = None) -> None:
        super().__init__(fn=_losses.poisson, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": dtype_name(self.dtype)}


class BinaryCrossentropy(MeanMetricWrapper):
    """Mean binary crossentropy between labels and probabilities (or logits)."""

    def __init__(
        self,
        name: str = "binary_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0,
    ) -> None:
        super().__init__(
            fn=_losses.binary_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing

    def get_config(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "dtype": dtype_name(self.dtype),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


class CategoricalCrossentropy(MeanMetricWrapper):
    """Mean crossentropy between one-hot labels and class probabilities (or logits)."""

    def __init__(
        self,
        name: str = "categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        label_smoothing: float = 0,
        axis: int = -1,
    ) -> None:
        super().__init__(
            fn=_losses.categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def get_config(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "dtype": dtype_name(self.dtype),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "axis": self.axis,
        }


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """Mean crossentropy between integer labels and class probabilities (or logits)."""

    def __init__(
        self,
        name: str = "sparse_categorical_crossentropy",
        dtype: Any = None,
        from_logits: bool = False,
        ignore_class: Optional[int] = None,
        axis: int = -1,
    ) -> None:
        super().__init__(
            fn=_losses.sparse_categorical_crossentropy,
            name=name,
            dtype=dtype,
            from_logits=from_logits,
            ignore_class=ignore_class,
            axis=axis,
        )
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis

    def get_config(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "dtype": dtype_name(self.dtype),
            "from_logits": self.from_logits,
            "ignore_class": self.ignore_class,
            "axis": self.axis,
        }
