"""Keras 3's stateful metrics on plain PyTorch.

Every metric is a :class:`Metric`: ``update_state(y_true, y_pred,
sample_weight=None)`` accumulates into a few state tensors, ``result()``
computes the value, ``reset_state()`` clears it. States follow the data's
device and ``variables``/``state_reduce_ops`` say how to all-reduce them.

:func:`get` turns a name, config dict, class, function or instance into a
``Metric`` instance, named as Keras's ``compile`` would log it.
"""

from __future__ import annotations

import difflib
import sys
import inspect
from typing import Any, Dict, Optional, Type

from .. import losses as _losses
from ..naming import object_name
from ._registry import register_functions
from .accuracy_metrics import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
    binary_accuracy,
    categorical_accuracy,
    sparse_categorical_accuracy,
    sparse_top_k_categorical_accuracy,
    top_k_categorical_accuracy,
)
from .base import Metric, to_snake_case
from .confusion_metrics import (
    AUC,
    FalseNegatives,
    FalsePositives,
    Precision,
    PrecisionAtRecall,
    Recall,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
    TrueNegatives,
    TruePositives,
)
from .correlation_metrics import (
    ConcordanceCorrelation,
    PearsonCorrelation,
    concordance_correlation,
    pearson_correlation,
)
from .f_score_metrics import F1Score, FBetaScore
from .hinge_metrics import CategoricalHinge, Hinge, SquaredHinge
from .iou_metrics import IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU
from .probabilistic_metrics import (
    BinaryCrossentropy,
    CategoricalCrossentropy,
    KLDivergence,
    Poisson,
    SparseCategoricalCrossentropy,
)
from .reduction_metrics import Mean, MeanMetricWrapper, Sum
from .regression_metrics import (
    CosineSimilarity,
    LogCoshError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    R2Score,
    RootMeanSquaredError,
)

# Per-sample functions Keras also exposes under ``keras.metrics``.
binary_crossentropy = _losses.binary_crossentropy
categorical_crossentropy = _losses.categorical_crossentropy
sparse_categorical_crossentropy = _losses.sparse_categorical_crossentropy
kl_divergence = _losses.kl_divergence
poisson = _losses.poisson
mean_squared_error = _losses.mean_squared_error
mean_absolute_error = _losses.mean_absolute_error
mean_absolute_percentage_error = _losses.mean_absolute_percentage_error
mean_squared_logarithmic_error = _losses.mean_squared_logarithmic_error
log_cosh = _losses.log_cosh
hinge = _losses.hinge
squared_hinge = _losses.squared_hinge
categorical_hinge = _losses.categorical_hinge

ALL_OBJECTS = (
    Metric,
    Mean,
    Sum,
    MeanMetricWrapper,
    MeanSquaredError,
    RootMeanSquaredError,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError,
    CosineSimilarity,
    LogCoshError,
    R2Score,
    AUC,
    FalseNegatives,
    FalsePositives,
    Precision,
    PrecisionAtRecall,
    Recall,
    RecallAtPrecision,
    SensitivityAtSpecificity,
    SpecificityAtSensitivity,
    TrueNegatives,
    TruePositives,
    Hinge,
    SquaredHinge,
    CategoricalHinge,
    KLDivergence,
    Poisson,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    F1Score,
    FBetaScore,
    IoU,
    BinaryIoU,
    MeanIoU,
    OneHotIoU,
    OneHotMeanIoU,
    PearsonCorrelation,
    ConcordanceCorrelation,
)

# The string identifiers Keras 3 accepts: class names, their snake_case, and
# a few abbreviations. ("accuracy"/"acc" and "crossentropy"/"ce" with their
# shape-dependent choice are resolved by compile, not here.)
ALL_OBJECTS_DICT: Dict[str, Type[Metric]] = {cls.__name__: cls for cls in ALL_OBJECTS}
ALL_OBJECTS_DICT.update({to_snake_case(cls.__name__): cls for cls in ALL_OBJECTS})
ALL_OBJECTS_DICT.update(
    {
        "bce": BinaryCrossentropy,
        "BCE": BinaryCrossentropy,
        "mse": MeanSquaredError,
        "MSE": MeanSquaredError,
        "mae": MeanAbsoluteError,
        "MAE": MeanAbsoluteError,
        "mape": MeanAbsolutePercentageError,
        "MAPE": MeanAbsolutePercentageError,
        "msle": MeanSquaredLogarithmicError,
        "MSLE": MeanSquaredLogarithmicError,
    }
)
# Abstract bases cannot be built from a bare name.
for _abstract in ("Metric", "metric", "MeanMetricWrapper", "mean_metric_wrapper"):
    ALL_OBJECTS_DICT.pop(_abstract, None)
del _abstract


def _unknown(identifier: str) -> ValueError:
    close = difflib.get_close_matches(identifier, list(ALL_OBJECTS_DICT), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown metric identifier {identifier!r} in `metrics`.{hint} "
        f"Received: metrics={identifier!r}"
    )


def serialize(metric: Metric) -> Dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` for a metric instance."""
    if not isinstance(metric, Metric):
        raise TypeError(
            f"`serialize` expects a torchfit Metric. Received: {metric!r} "
            f"of type {type(metric).__name__}"
        )
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


def deserialize(config: Dict[str, Any], custom_objects: Optional[Dict[str, Any]] = None) -> Metric:
    """Inverse of :func:`serialize` (``custom_objects`` maps extra class names)."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            "A metric config must be a dict with a 'class_name' key. "
            f"Received: metrics={config!r}"
        )
    class_name = config["class_name"]
    registry: Dict[str, Any] = {c.__name__: c for c in ALL_OBJECTS}
    registry.update(custom_objects or {})
    cls = registry.get(class_name) if isinstance(class_name, str) else None
    if cls is None:
        raise _unknown(str(class_name))
    inner = dict(config.get("config") or {})
    if "fn" in inner and inspect.isclass(cls) and issubclass(cls, MeanMetricWrapper):
        return cls.from_config(inner, custom_objects)  # its `fn` goes through the same gate
    return cls.from_config(inner)


def get(identifier: Any) -> Optional[Metric]:
    """Resolve a metric identifier into a :class:`Metric` instance.

    * a string: a Keras metric name (``"mse"``, ``"mean_squared_error"``,
      ``"MeanSquaredError"``, ``"auc"``, ...) -> a new instance named with
      that very string, as Keras's ``compile`` logs it;
    * a ``{"class_name", "config"}`` dict -> :func:`deserialize`;
    * a :class:`Metric` instance -> itself; a ``Metric`` subclass -> an
      instance with default arguments;
    * any other callable ``fn(y_true, y_pred)`` -> ``MeanMetricWrapper(fn)``
      named like Keras names it (``name`` attribute, else the snake_case
      ``__name__``);
    * ``None`` -> ``None`` (as ``keras.metrics.get``).

    Unknown names raise ``ValueError``; other types raise ``TypeError``.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        cls = ALL_OBJECTS_DICT.get(identifier)
        if cls is None:
            raise _unknown(identifier)
        metric = cls()
        metric.name = identifier
        return metric
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if inspect.isclass(identifier) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier) and not inspect.isclass(identifier):
        return MeanMetricWrapper(identifier, name=object_name(identifier))
    raise TypeError(
        "Could not interpret metric identifier: expected a metric name, a "
        "Metric instance or class, a config dict or a function "
        f"fn(y_true, y_pred). Received: metrics={identifier!r} of type "
        f"{type(identifier).__name__}"
    )


__all__ = [
    "Metric",
    "Mean",
    "Sum",
    "MeanMetricWrapper",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "RootMeanSquaredError",
    "CosineSimilarity",
    "LogCoshError",
    "R2Score",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "KLDivergence",
    "Poisson",
    "TruePositives",
    "FalsePositives",
    "TrueNegatives",
    "FalseNegatives",
    "Precision",
    "Recall",
    "PrecisionAtRecall",
    "RecallAtPrecision",
    "SensitivityAtSpecificity",
    "SpecificityAtSensitivity",
    "AUC",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "kl_divergence",
    "poisson",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "log_cosh",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "F1Score",
    "FBetaScore",
    "IoU",
    "BinaryIoU",
    "MeanIoU",
    "OneHotIoU",
    "OneHotMeanIoU",
    "PearsonCorrelation",
    "ConcordanceCorrelation",
    "pearson_correlation",
    "concordance_correlation",
    "get",
    "serialize",
    "deserialize",
    "ALL_OBJECTS",
    "ALL_OBJECTS_DICT",
]

# The functions MeanMetricWrapper configs may name: the metric's first, then the loss's.
register_functions(sys.modules[__name__], _losses)
