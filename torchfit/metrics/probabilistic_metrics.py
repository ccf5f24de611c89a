"""Probabilistic metrics: crossentropies, KL divergence and Poisson.

The per-sample computations come from :mod:`torchfit.losses`.
"""

from __future__ import annotations

from typing import Any, Optional

from .. import losses as _losses
from .reduction_metrics import _FunctionMetric

__all__ = [
    "KLDivergence",
    "Poisson",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
]


class KLDivergence(_FunctionMetric):
    """Mean Kullback-Leibler divergence ``sum(y_true * log(y_true / y_pred))``."""

    def __init__(self, name: str = "kl_divergence", dtype: Any = None) -> None:
        super().__init__(fn=_losses.kl_divergence, name=name, dtype=dtype)


class Poisson(_FunctionMetric):
    """Mean Poisson deviance term ``y_pred - y_true * log(y_pred)``."""

    def __init__(self, name: str = "poisson", dtype: Any = None) -> None:
        super().__init__(fn=_losses.poisson, name=name, dtype=dtype)


class BinaryCrossentropy(_FunctionMetric):
    """Mean binary crossentropy between labels and probabilities (or logits)."""

    _config_keys = ("from_logits", "label_smoothing")

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


class CategoricalCrossentropy(_FunctionMetric):
    """Mean crossentropy between one-hot labels and class probabilities (or logits)."""

    _config_keys = ("from_logits", "label_smoothing", "axis")

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


class SparseCategoricalCrossentropy(_FunctionMetric):
    """Mean crossentropy between integer labels and class probabilities (or logits)."""

    sparse_labels = True

    _config_keys = ("from_logits", "ignore_class", "axis")

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
