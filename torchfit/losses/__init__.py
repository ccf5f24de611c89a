"""Keras 3 losses on plain PyTorch.

Every loss here follows ``keras.losses`` (Keras 3.15): the same class and
function names, argument names and defaults, the same clipping constants
(``EPSILON = 1e-7``) and the same reduction and ``sample_weight`` rules, so a
model trained with ``torchfit`` sees the numbers Keras would produce.

Losses are plain Python objects working on ``torch.Tensor`` values (never
``torch.nn.Module``s, so they are never registered on a model), and their
computation never synchronises with the host (host inputs such as NumPy
arrays are of course copied to ``y_pred``'s device) -- except ``CTC`` on
CUDA, where :func:`torch.nn.functional.ctc_loss` copies the lengths to the
host.

* ``Loss`` -- base class: ``loss(y_true, y_pred, sample_weight=None)`` calls
  ``call(y_true, y_pred)`` (per-sample losses), weights them and reduces them.
* ``LossFunctionWrapper`` -- a ``Loss`` around ``fn(y_true, y_pred, **kwargs)``.
* Loss classes (``MeanSquaredError``, ``BinaryCrossentropy``, ...) and the
  matching functions (``mean_squared_error``, ``binary_crossentropy``, ...),
  which return per-sample losses, reduced over the last axis like Keras's.
* ``get``/``serialize``/``deserialize`` -- identifier and config helpers.

A Keras mask (a ``_keras_mask`` attribute on ``y_pred`` or on the losses that
``call`` returns, as set by ``sparse_categorical_crossentropy`` with
``ignore_class``) is honoured the way Keras honours it.

Deliberate differences from Keras (none changes a value Keras computes):

* ``hinge``/``squared_hinge`` pick the 0/1 -> -1/1 label mapping with
  ``torch.where`` instead of a host-side branch.
* A ``Loss`` with ``dtype="float64"`` returns float64 for the mean reductions
  (Keras's ``divide_no_nan`` downcasts those to float32).
* A scalar or ``(N, 1)`` sample weight combined with a mask broadcasts; Keras
  multiplies in place there and torch raises.
* ``categorical_generalized_cross_entropy`` accepts ``(batch, 1)`` labels
  (Keras would broadcast them against the batch axis).
* ``get_config`` also keeps ``Huber.delta``, ``CosineSimilarity.axis``,
  ``SparseCategoricalCrossentropy.axis`` and an explicit ``dtype``, which
  Keras drops; ``get`` also knows the Keras 2 names ``"logcosh"``,
  ``"huber_loss"`` and ``"kullback_leibler_divergence"``.

The implementation is split by kind of loss, as in Keras: ``_loss`` (the
base classes and reductions), ``_regression``, ``_probabilistic`` (KL,
Poisson, binary crossentropies), ``_categorical`` (one-hot, focal, sparse and
generalized crossentropies), ``_hinge``, ``_segmentation`` (Dice, Tversky),
``_ctc``, ``_circle``, and ``_registry`` (``get``/``serialize``/
``deserialize``); every public name is imported from here.
"""

from __future__ import annotations

# Modules and typing names that the single-module ``torchfit.losses`` exposed;
# kept so that the package's namespace is the module's.
import difflib  # noqa: F401
import inspect  # noqa: F401
import math  # noqa: F401
import numbers  # noqa: F401
import re  # noqa: F401
import warnings  # noqa: F401
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union  # noqa: F401

import torch  # noqa: F401
import torch.nn.functional as F  # noqa: F401

from . import _loss, _utils
from ._categorical import (
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalGeneralizedCrossEntropy,
    SparseCategoricalCrossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_generalized_cross_entropy,
    sparse_categorical_crossentropy,
)
from ._circle import Circle, circle
from ._ctc import CTC, ctc
from ._hinge import CategoricalHinge, Hinge, SquaredHinge, categorical_hinge, hinge, squared_hinge
from ._loss import (
    Loss,
    LossFunctionWrapper,
    _WrappedLoss,
    reduce_values,
    reduce_weighted_values,
    standardize_reduction,
)
from ._probabilistic import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    KLDivergence,
    Poisson,
    binary_crossentropy,
    binary_focal_crossentropy,
    kl_divergence,
    poisson,
)
from ._registry import _ALIASES, _ALL_OBJECTS, _CLASSES, _FUNCTIONS, deserialize, get, serialize
from ._regression import (
    CosineSimilarity,
    Huber,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    cosine_similarity,
    huber,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from ._segmentation import Dice, Tversky, dice, tversky
from ._utils import Axis, TensorLike, squeeze_or_expand_to_same_rank

__all__ = [
    "EPSILON",
    "REDUCTIONS",
    "Loss",
    "LossFunctionWrapper",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError",
    "CosineSimilarity",
    "Huber",
    "LogCosh",
    "Hinge",
    "SquaredHinge",
    "CategoricalHinge",
    "KLDivergence",
    "Poisson",
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "SparseCategoricalCrossentropy",
    "Dice",
    "Tversky",
    "CTC",
    "Circle",
    "CategoricalGeneralizedCrossEntropy",
    "mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error",
    "cosine_similarity",
    "huber",
    "log_cosh",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "kl_divergence",
    "poisson",
    "binary_crossentropy",
    "binary_focal_crossentropy",
    "categorical_crossentropy",
    "categorical_focal_crossentropy",
    "sparse_categorical_crossentropy",
    "dice",
    "tversky",
    "ctc",
    "circle",
    "categorical_generalized_cross_entropy",
    "squeeze_or_expand_to_same_rank",
    "reduce_values",
    "reduce_weighted_values",
    "get",
    "serialize",
    "deserialize",
]

#: Fuzz factor used for clipping, as ``keras.backend.epsilon()``.
EPSILON = _utils.EPSILON

#: Accepted values of ``reduction``.
REDUCTIONS = _loss.REDUCTIONS
