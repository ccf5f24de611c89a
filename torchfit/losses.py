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
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
import re
import warnings
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

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

TensorLike = Any  # torch.Tensor, numpy array, Python number or nested list
Axis = Optional[Union[int, Sequence[int]]]

#: Fuzz factor used for clipping, as ``keras.backend.epsilon()``.
EPSILON = 1e-7

#: Accepted values of ``reduction``.
REDUCTIONS = (
    "sum_over_batch_size",
    "sum",
    "mean",
    "mean_with_sample_weight",
    "none",
    None,
)

_FLOAT_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}
# Keras dtype-policy names -> compute dtype.
_POLICY_DTYPES = {
    "mixed_float16": "float16",
    "mixed_bfloat16": "bfloat16",
    "half": "float16",
    "float": "float32",
    "double": "float64",
}
_TORCH_TO_NAME = {v: k for k, v in _FLOAT_DTYPES.items()}


# --------------------------------------------------------------------------
# Tensor helpers
# --------------------------------------------------------------------------


def _to_tensor(
    x: TensorLike,
    dtype: Optional[torch.dtype] = None,
    device: Optional[torch.device] = None,
) -> torch.Tensor:
    """Converts ``x`` to a tensor, casting/moving only when asked."""
    if isinstance(x, torch.Tensor):
        if (dtype is not None and x.dtype != dtype) or (
            device is not None and x.device != device
        ):
            x = x.to(device=device, dtype=dtype)
        return x
    if isinstance(x, (list, tuple)) and any(isinstance(e, torch.Tensor) for e in x):
        x = torch.stack([_to_tensor(e, dtype, device) for e in x])
        return x
    if isinstance(x, float) and dtype is None:
        dtype = torch.float32
    return torch.as_tensor(x, dtype=dtype, device=device)


def _pair(y_true: TensorLike, y_pred: TensorLike) -> Tuple[torch.Tensor, torch.Tensor]:
    """``y_pred`` as a tensor and ``y_true`` cast to its dtype and device."""
    y_pred = _to_tensor(y_pred)
    if not (y_pred.is_floating_point() or y_pred.is_complex()):
        y_pred = y_pred.to(torch.get_default_dtype())
    y_true = _to_tensor(y_true, dtype=y_pred.dtype, device=y_pred.device)
    return y_true, y_pred


def _sum(x: torch.Tensor, axis: Axis = None, keepdim: bool = False) -> torch.Tensor:
    if axis is None:
        return torch.sum(x)
    if isinstance(axis, (list, tuple)):
        axis = tuple(axis)
    return torch.sum(x, dim=axis, keepdim=keepdim)


def _mean(x: torch.Tensor, axis: Axis = -1) -> torch.Tensor:
    if axis is None:
        return torch.mean(x)
    if isinstance(axis, (list, tuple)):
        axis = tuple(axis)
    return torch.mean(x, dim=axis)


def _get_mask(x: Any) -> Optional[torch.Tensor]:
    return getattr(x, "_keras_mask", None) if isinstance(x, torch.Tensor) else None


def _set_mask(x: torch.Tensor, mask: Optional[torch.Tensor]) -> None:
    try:
        x._keras_mask = mask
    except AttributeError:  # pragma: no cover - exotic tensor subclasses
        pass


def squeeze_or_expand_to_same_rank(
    x1: torch.Tensor, x2: torch.Tensor, expand_rank_1: bool = True
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Aligns ranks that differ by exactly one, as Keras does.

    When one tensor has one more dimension than the other and that trailing
    dimension has size 1, it is squeezed away -- except that a rank-1 partner
    is expanded instead (when ``expand_rank_1``). Other cases are unchanged.
    """
    r1, r2 = x1.dim(), x2.dim()
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2.unsqueeze(-1)
        else:
            x1 = x1.squeeze(-1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1.unsqueeze(-1)
        else:
            x2 = x2.squeeze(-1)
    return x1, x2


def _divide_no_nan(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    zero = den == 0
    safe = torch.where(zero, torch.ones_like(den), den)
    return torch.where(zero, torch.zeros_like(num), num / safe)


# --------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------


def standardize_reduction(reduction: Optional[str]) -> Optional[str]:
    """Returns ``reduction`` if it is allowed, else raises ``ValueError``."""
    if not (reduction is None or isinstance(reduction, str)) or reduction not in REDUCTIONS:
        raise ValueError(
            "Invalid value for argument `reduction`. Expected one of "
            f"{list(REDUCTIONS)}. Received: reduction={reduction!r}"
        )
    return reduction


def _standardize_dtype(dtype: Any) -> str:
    """Compute-dtype name for a Loss ``dtype`` argument (``None`` -> float32)."""
    if dtype is None:
        return "float32"
    if isinstance(dtype, torch.dtype):
        if dtype in _TORCH_TO_NAME:
            return _TORCH_TO_NAME[dtype]
    elif isinstance(dtype, str):
        name = _POLICY_DTYPES.get(dtype, dtype)
        if name in _FLOAT_DTYPES:
            return name
    elif isinstance(getattr(dtype, "compute_dtype", None), str):  # keras policy
        return _standardize_dtype(dtype.compute_dtype)
    else:
        raise TypeError(
            "Invalid type for argument `dtype`. Expected None, a string, a "
            "floating torch.dtype or a dtype policy. Received: "
            f"dtype={dtype!r} of type {type(dtype).__name__}"
        )
    raise ValueError(
        "Invalid value for argument `dtype`. Expected None or one of "
        f"{sorted(_FLOAT_DTYPES) + sorted(_POLICY_DTYPES)} (or a floating "
        f"torch.dtype). Received: dtype={dtype!r}"
    )


def _check_name(name: Any) -> None:
    if name is not None and not isinstance(name, str):
        raise TypeError(
            "Invalid type for argument `name`. Expected a string or None. "
            f"Received: name={name!r} of type {type(name).__name__}"
        )


def _check_bool(arg: str, value: Any) -> bool:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise TypeError(
        f"Invalid type for argument `{arg}`. Expected a bool. "
        f"Received: {arg}={value!r} of type {type(value).__name__}"
    )


def _check_number(
    arg: str,
    value: Any,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> Any:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Invalid type for argument `{arg}`. Expected a real number. "
            f"Received: {arg}={value!r} of type {type(value).__name__}"
        )
    bad = math.isnan(value)
    if low is not None:
        bad = bad or (value < low if low_inclusive else value <= low)
    if high is not None:
        bad = bad or (value > high if high_inclusive else value >= high)
    if bad:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'[' if low_inclusive and low is not None else '('}{lo}, {hi}"
        interval += "]" if high_inclusive and high is not None else ")"
        raise ValueError(
            f"Invalid value for argument `{arg}`. Expected a number in "
            f"{interval}. Received: {arg}={value!r}"
        )
    return value


def _check_int_axis(arg: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"Invalid value for argument `{arg}`. Expected an int. "
            f"Received: {arg}={value!r} of type {type(value).__name__}"
        )
    return int(value)


def _check_axes(arg: str, value: Any) -> Axis:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(_check_int_axis(arg, v) for v in value)
    try:
        return _check_int_axis(arg, value)
    except ValueError:
        raise ValueError(
            f"Invalid value for argument `{arg}`. Expected None, an int or a "
            f"list/tuple of ints. Received: {arg}={value!r}"
        ) from None


def _to_snake_case(name: str) -> str:
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


# --------------------------------------------------------------------------
# Reduction
# --------------------------------------------------------------------------


def reduce_values(
    values: torch.Tensor,
    sample_weight: Optional[torch.Tensor] = None,
    reduction: Optional[str] = "sum_over_batch_size",
) -> torch.Tensor:
    """Reduces already-weighted ``values`` (``sample_weight`` only serves
    ``"mean_with_sample_weight"`` as the divisor)."""
    if reduction is None or reduction == "none" or values.dim() == 0:
        return values
    if tuple(values.shape) == (0,):
        return values
    loss = torch.sum(values)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return _divide_no_nan(loss, torch.sum(sample_weight).to(loss.dtype))
    count = values.numel()
    if count == 0:
        return torch.zeros_like(loss)
    return loss / count


def _apply_mask(
    sample_weight: Optional[torch.Tensor],
    mask: Optional[torch.Tensor],
    dtype: torch.dtype,
    reduction: Optional[str],
) -> Optional[torch.Tensor]:
    """Folds a boolean mask into ``sample_weight`` like Keras."""
    if mask is None:
        return sample_weight
    if reduction in ("mean", "sum_over_batch_size"):
        # Valid entries weigh total/valid so that the mean runs over them only.
        # (The total is a Python number: building a device tensor from it
        # would cost a host-to-device copy.)
        mask_bool = mask.to(torch.bool)
        valid = torch.sum(mask_bool.to(dtype))  # may be 0
        none_valid = valid == 0
        weight = float(mask.numel()) / torch.where(none_valid, torch.ones_like(valid), valid)
        weight = torch.where(none_valid, torch.zeros_like(weight), weight)
        float_mask = torch.where(mask_bool, weight, torch.zeros_like(weight))
    else:
        float_mask = mask.to(dtype)
    if sample_weight is None:
        return float_mask
    sample_weight = sample_weight.to(dtype)
    float_mask, sample_weight = squeeze_or_expand_to_same_rank(float_mask, sample_weight)
    return sample_weight * float_mask


def reduce_weighted_values(
    values: TensorLike,
    sample_weight: Optional[TensorLike] = None,
    mask: Optional[TensorLike] = None,
    reduction: Optional[str] = "sum_over_batch_size",
    dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Applies ``mask`` and ``sample_weight`` to ``values`` and reduces them."""
    reduction = standardize_reduction(reduction)
    values = _to_tensor(values, dtype=dtype)
    device = values.device
    if sample_weight is not None:
        sample_weight = _to_tensor(sample_weight, dtype=values.dtype, device=device)
    if mask is not None:
        mask = _to_tensor(mask, device=device)
    sample_weight = _apply_mask(sample_weight, mask, values.dtype, reduction)
    if sample_weight is not None:
        sample_weight = sample_weight.to(values.dtype)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        values = values * sample_weight
    return reduce_values(values, sample_weight, reduction)


# --------------------------------------------------------------------------
# Base classes
# --------------------------------------------------------------------------


class Loss:
    """Base class of all losses; subclasses implement ``call``.

    Args:
        name: Name of the loss (defaults to the snake_case class name).
        reduction: ``"sum_over_batch_size"`` (default; sum divided by the number
            of loss values), ``"sum"``, ``"mean"`` (same as the default),
            ``"mean_with_sample_weight"`` (sum divided by the sum of the sample
            weights) or ``None``/``"none"`` (no reduction).
        dtype: Compute dtype; ``y_true``, ``y_pred`` and the losses are cast to
            it. Defaults to ``"float32"``.
    """

    def __init__(
        self,
        name: Optional[str] = None,
        reduction: Optional[str] = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        _check_name(name)
        self.name = name or _to_snake_case(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self._dtype_arg = dtype
        self._dtype = _standardize_dtype(dtype)
        self._torch_dtype = _FLOAT_DTYPES[self._dtype]

    @property
    def dtype(self) -> str:
        """Compute dtype name, e.g. ``"float32"``."""
        return self._dtype

    def __call__(
        self,
        y_true: TensorLike,
        y_pred: TensorLike,
        sample_weight: Optional[TensorLike] = None,
    ) -> torch.Tensor:
        """Returns the weighted, reduced loss of a batch."""
        in_mask = _get_mask(y_pred)
        y_pred = _to_tensor(y_pred, dtype=self._torch_dtype)
        y_true = _to_tensor(y_true, dtype=self._torch_dtype, device=y_pred.device)
        losses = self.call(y_true, y_pred)
        out_mask = _get_mask(losses)
        if in_mask is not None and out_mask is not None:
            mask = in_mask.to(torch.bool) & out_mask.to(torch.bool)
        else:
            mask = in_mask if in_mask is not None else out_mask
        return reduce_weighted_values(
            losses,
            sample_weight=sample_weight,
            mask=mask,
            reduction=self.reduction,
            dtype=self._torch_dtype,
        )

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        """Per-sample (unreduced) losses; to be implemented by subclasses."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `call(y_true, y_pred)`."
        )

    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments (as Keras: ``name`` and ``reduction``, plus
        ``dtype`` when one was given)."""
        config: Dict[str, Any] = {"name": self.name, "reduction": self.reduction}
        if self._dtype_arg is not None:
            config["dtype"] = self._dtype
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Loss":
        """Rebuilds a loss from ``get_config()``'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} reduction={self.reduction!r}>"


class LossFunctionWrapper(Loss):
    """A ``Loss`` computing ``fn(y_true, y_pred, **kwargs)``.

    Before ``fn`` runs, ``y_true`` and ``y_pred`` are brought to the same rank
    with ``squeeze_or_expand_to_same_rank`` (as Keras does).

    Args:
        fn: Loss function ``fn(y_true, y_pred, **kwargs)`` returning per-sample
            losses.
        reduction, name, dtype: See ``Loss``.
        **kwargs: Extra keyword arguments passed to ``fn``.
    """

    def __init__(
        self,
        fn: Callable[..., torch.Tensor],
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = None,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if not callable(fn):
            raise TypeError(
                "Invalid type for argument `fn`. Expected a callable "
                f"fn(y_true, y_pred, **kwargs). Received: fn={fn!r} of type "
                f"{type(fn).__name__}"
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> Dict[str, Any]:
        """Adds ``fn`` (its registered name, or the callable itself when it is
        not a torchfit loss function) and the ``fn`` keyword arguments."""
        config = super().get_config()
        name = getattr(self.fn, "__name__", None)
        config["fn"] = name if _FUNCTIONS.get(name) is self.fn else self.fn
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(
        cls, config: Dict[str, Any], custom_objects: Optional[Dict[str, Any]] = None
    ) -> "LossFunctionWrapper":
        config = dict(config)
        if "fn" in config:
            fn = config["fn"]
            if isinstance(fn, dict) and fn.get("class_name") == "function":
                fn = fn.get("config")
            if isinstance(fn, str):
                custom = custom_objects or {}
                if fn in custom:
                    fn = custom[fn]
                elif fn in _FUNCTIONS:
                    fn = _FUNCTIONS[fn]
                else:
                    raise ValueError(
                        "Unknown loss function for argument `fn`. Expected one "
                        f"of {sorted(_FUNCTIONS)} or a name in custom_objects. "
                        f"Received: fn={fn!r}"
                    )
            config["fn"] = fn
        return cls(**config)

    def __repr__(self) -> str:
        return f"<LossFunctionWrapper({self.fn}, kwargs={self._fn_kwargs})>"


class _WrappedLoss(LossFunctionWrapper):
    """Base of the concrete loss classes: their config holds the
    constructor's own arguments, not ``fn``."""

    _config_keys: Tuple[str, ...] = ()

    def get_config(self) -> Dict[str, Any]:
        config = Loss.get_config(self)
        for key in self._config_keys:
            config[key] = getattr(self, key)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> "Loss":
        return cls(**config)

    def __repr__(self) -> str:
        return Loss.__repr__(self)


# --------------------------------------------------------------------------
# Loss functions
# --------------------------------------------------------------------------


def mean_squared_error(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``(y_true - y_pred) ** 2`` over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return torch.mean(torch.square(y_true - y_pred), dim=-1)


def mean_absolute_error(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``|y_true - y_pred|`` over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return torch.mean(torch.abs(y_true - y_pred), dim=-1)


def mean_absolute_percentage_error(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """``100 * mean(|y_true - y_pred| / max(|y_true|, eps))`` over the last axis."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    diff = torch.abs((y_true - y_pred) / torch.clamp_min(torch.abs(y_true), EPSILON))
    return 100.0 * torch.mean(diff, dim=-1)


def mean_squared_logarithmic_error(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)) ** 2``."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
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
    y_true, y_pred = _pair(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    y_pred = _l2_normalize(y_pred, axis)
    y_true = _l2_normalize(y_true, axis)
    return -_sum(y_true * y_pred, axis=axis)


def huber(y_true: TensorLike, y_pred: TensorLike, delta: float = 1.0) -> torch.Tensor:
    """Huber loss: quadratic for ``|error| <= delta``, linear beyond."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
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
    y_true, y_pred = _pair(y_true, y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    x = y_pred - y_true
    return torch.mean(x + F.softplus(x * -2.0) - math.log(2.0), dim=-1)


def _binary_labels_to_hinge(y_true: torch.Tensor) -> torch.Tensor:
    # {0, 1} labels become {-1, 1}; any other labels are left as they are.
    # (Keras branches on the host; a `where` gives the same values without a
    # device sync.)
    is_binary = torch.all((y_true == 0) | (y_true == 1))
    return torch.where(is_binary, 2.0 * y_true - 1.0, y_true)


def hinge(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``max(1 - y_true * y_pred, 0)``; 0/1 labels are mapped to -1/1."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = _binary_labels_to_hinge(y_true)
    return torch.mean(torch.clamp_min(1.0 - y_true * y_pred, 0.0), dim=-1)


def squared_hinge(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Mean of ``max(1 - y_true * y_pred, 0) ** 2``; 0/1 labels -> -1/1."""
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = _binary_labels_to_hinge(y_true)
    return torch.mean(torch.square(torch.clamp_min(1.0 - y_true * y_pred, 0.0)), dim=-1)


def categorical_hinge(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """``max(max((1 - y_true) * y_pred) - sum(y_true * y_pred) + 1, 0)``."""
    y_true, y_pred = _pair(y_true, y_pred)
    pos = torch.sum(y_true * y_pred, dim=-1)
    neg = torch.amax((1.0 - y_true) * y_pred, dim=-1)
    return torch.clamp_min(neg - pos + 1.0, 0.0)


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
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
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
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = torch.sigmoid(y_pred)
    bce = _elementwise_bce(y_true, y_pred, from_logits=False)
    p_t = y_true * y_pred + (1 - y_true) * (1 - y_pred)
    focal_bce = torch.pow(1.0 - p_t, gamma) * bce
    if apply_class_balancing:
        weight = y_true * alpha + (1 - y_true) * (1 - alpha)
        focal_bce = weight * focal_bce
    return _mean(focal_bce, axis=axis)


def _warn_single_class(loss_name: str, y_pred: torch.Tensor) -> None:
    if y_pred.dim() > 0 and y_pred.shape[-1] == 1:
        warnings.warn(
            f"In loss {loss_name}, expected y_pred.shape to be "
            "(batch_size, num_classes) with num_classes > 1. Received: "
            f"y_pred.shape={tuple(y_pred.shape)}. Consider using "
            "'binary_crossentropy' if you only have 2 classes.",
            SyntaxWarning,
            stacklevel=3,
        )


def _smooth_categorical(y_true: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    num_classes = y_true.shape[-1]
    return y_true * (1.0 - label_smoothing) + (label_smoothing / num_classes)


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
    if isinstance(axis, bool):
        raise ValueError(
            f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}"
        )
    y_true, y_pred = _pair(y_true, y_pred)
    _warn_single_class("categorical_crossentropy", y_pred)
    if label_smoothing:
        y_true = _smooth_categorical(y_true, label_smoothing)
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
    if isinstance(axis, bool):
        raise ValueError(
            f"`axis` must be of type `int`. Received: axis={axis} of type {type(axis)}"
        )
    y_true, y_pred = _pair(y_true, y_pred)
    _warn_single_class("categorical_focal_crossentropy", y_pred)
    if label_smoothing:
        y_true = _smooth_categorical(y_true, label_smoothing)
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


def dice(y_true: TensorLike, y_pred: TensorLike, axis: Axis = None) -> torch.Tensor:
    """``1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + eps)``,
    summed over ``axis`` (all axes when ``None``)."""
    y_true, y_pred = _pair(y_true, y_pred)
    intersection = _sum(y_true * y_pred, axis=axis)
    score = (2.0 * intersection) / (_sum(y_true, axis=axis) + _sum(y_pred, axis=axis) + EPSILON)
    return 1 - score


def tversky(
    y_true: TensorLike,
    y_pred: TensorLike,
    alpha: float = 0.5,
    beta: float = 0.5,
    axis: Axis = None,
) -> torch.Tensor:
    """``1 - TP / (TP + alpha * FP + beta * FN + eps)`` with soft counts
    summed over ``axis`` (all axes when ``None``).

    Follows Keras: ``FP = sum((1 - y_pred) * y_true)`` and
    ``FN = sum(y_pred * (1 - y_true))``.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    intersection = _sum(y_true * y_pred, axis=axis)
    fp = _sum((1 - y_pred) * y_true, axis=axis)
    fn = _sum(y_pred * (1 - y_true), axis=axis)
    score = intersection / (intersection + fp * alpha + fn * beta + EPSILON)
    return 1 - score


def ctc(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Connectionist temporal classification loss, one value per sample.

    ``y_true`` is ``(batch, max_label_length)``: integer labels padded with
    0, which is also the blank class; a sample's label length is its number
    of non-zero entries. ``y_pred`` is ``(batch, time, num_classes)``
    *logits* (a log-softmax is applied here), every sample using all
    ``time`` steps. Computed with :func:`torch.nn.functional.ctc_loss`, as
    Keras's torch backend does. (On CUDA, torch copies the lengths to the
    host, so this loss is the one that synchronises.)
    """
    y_pred = _to_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(torch.float32)
    y_true = _to_tensor(y_true, device=y_pred.device)
    if y_true.dim() != 2:
        raise ValueError(
            "Argument `y_true` of the CTC loss must be a 2-D tensor of shape "
            "(batch_size, max_label_length) holding integer labels; received "
            f"y_true.shape={tuple(y_true.shape)}."
        )
    if y_pred.dim() != 3:
        raise ValueError(
            "Argument `y_pred` of the CTC loss must be a 3-D tensor of logits "
            "of shape (batch_size, max_time, num_classes); received "
            f"y_pred.shape={tuple(y_pred.shape)}."
        )
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            "Arguments `y_true` and `y_pred` of the CTC loss must have the same "
            f"batch size; received y_true.shape={tuple(y_true.shape)} and "
            f"y_pred.shape={tuple(y_pred.shape)}."
        )
    if y_pred.dtype in (torch.float16, torch.bfloat16):
        y_pred = y_pred.to(torch.float32)
    batch, time = y_pred.shape[0], y_pred.shape[1]
    targets = y_true.to(torch.long)
    target_lengths = torch.sum(targets != 0, dim=-1)
    input_lengths = torch.full((batch,), time, dtype=torch.long, device=y_pred.device)
    log_probs = F.log_softmax(y_pred.transpose(0, 1), dim=-1)
    return F.ctc_loss(
        log_probs, targets, input_lengths, target_lengths, blank=0, reduction="none"
    )


def circle(
    y_true: TensorLike,
    y_pred: TensorLike,
    ref_labels: Optional[TensorLike] = None,
    ref_embeddings: Optional[TensorLike] = None,
    remove_diagonal: bool = True,
    gamma: float = 80,
    margin: float = 0.4,
) -> torch.Tensor:
    """Circle loss (Sun et al. 2020) for metric learning, one value per sample.

    ``y_true`` holds integer labels ``(batch,)`` and ``y_pred`` L2-normalised
    embeddings ``(batch, dim)``; each sample is compared with
    ``ref_embeddings``/``ref_labels`` (default: the batch itself, without
    the sample's pair with itself when ``remove_diagonal``). Samples whose
    loss is 0 are masked out of the mean, as in Keras.
    """
    y_pred = _to_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(torch.float32)
    labels = _to_tensor(y_true, device=y_pred.device).to(torch.int32)
    refs = y_pred if ref_embeddings is None else _to_tensor(
        ref_embeddings, dtype=y_pred.dtype, device=y_pred.device
    )
    ref_labels_t = labels if ref_labels is None else _to_tensor(
        ref_labels, device=y_pred.device
    ).to(torch.int32)
    if y_pred.dim() != 2 or refs.dim() != 2:
        raise ValueError(
            "Argument `y_pred` of the Circle loss must be a 2-D tensor of "
            "embeddings (batch_size, dim); received "
            f"y_pred.shape={tuple(y_pred.shape)}"
            + ("" if ref_embeddings is None else f", ref_embeddings.shape={tuple(refs.shape)}")
            + "."
        )
    distances = torch.clamp_min(1 - y_pred @ refs.transpose(0, 1), 0.0)
    query = labels.reshape(-1, 1) if labels.dim() == 1 else labels
    keys = ref_labels_t.reshape(-1, 1) if ref_labels_t.dim() == 1 else ref_labels_t
    positive = query == keys.transpose(0, 1)
    negative = ~positive
    if remove_diagonal:
        eye = torch.eye(query.numel(), keys.numel(), dtype=torch.bool, device=y_pred.device)
        positive = positive & ~eye
    pos_mask = positive.to(distances.dtype)
    neg_mask = negative.to(distances.dtype)
    pos_weights = torch.clamp_min((margin + distances) * pos_mask, 0.0)
    neg_weights = torch.clamp_min((1 + margin - distances) * neg_mask, 0.0)
    pos_terms = -1 * gamma * pos_weights * (margin - distances)
    neg_terms = gamma * neg_weights * ((1 - margin) - distances)
    neg_inf = torch.tensor(float("-inf"), dtype=distances.dtype, device=distances.device)
    p_loss = torch.logsumexp(torch.where(positive, pos_terms, neg_inf), dim=1)
    n_loss = torch.logsumexp(torch.where(negative, neg_terms, neg_inf), dim=1)
    loss = F.softplus(p_loss + n_loss)
    _set_mask(loss, loss > 0)
    return loss


def categorical_generalized_cross_entropy(
    y_true: TensorLike, y_pred: TensorLike, q: float
) -> torch.Tensor:
    """Generalized cross entropy (Zhang & Sabuncu 2018): ``(1 - p**q) / q``.

    ``y_true`` holds integer class ids, ``y_pred`` class probabilities and
    ``p`` is the probability of the true class (0 for an id outside the
    classes). ``q`` in (0, 1) moves from cross entropy (q -> 0) to MAE (q = 1).
    """
    y_pred = _to_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(torch.float32)
    labels = _to_tensor(y_true, device=y_pred.device)
    if labels.dim() == y_pred.dim() and labels.dim() > 1 and labels.shape[-1] == 1 and y_pred.shape[-1] != 1:
        labels = labels.squeeze(-1)
    classes = torch.arange(y_pred.shape[-1], device=y_pred.device)
    one_hot = (labels.to(torch.long).unsqueeze(-1) == classes).to(y_pred.dtype)
    p = torch.sum(y_pred * one_hot, dim=-1)
    return (1 - torch.pow(p, q)) / q


# --------------------------------------------------------------------------
# Loss classes
# --------------------------------------------------------------------------


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
        self.axis = axis


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
        self.delta = delta


class LogCosh(_WrappedLoss):
    """Mean of ``log(cosh(y_pred - y_true))``."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "log_cosh",
        dtype: Any = None,
    ) -> None:
        super().__init__(log_cosh, name=name, reduction=reduction, dtype=dtype)


class Hinge(_WrappedLoss):
    """Hinge loss ``mean(max(1 - y_true * y_pred, 0))`` (0/1 labels -> -1/1)."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "hinge",
        dtype: Any = None,
    ) -> None:
        super().__init__(hinge, name=name, reduction=reduction, dtype=dtype)


class SquaredHinge(_WrappedLoss):
    """Squared hinge loss ``mean(max(1 - y_true * y_pred, 0) ** 2)``."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "squared_hinge",
        dtype: Any = None,
    ) -> None:
        super().__init__(squared_hinge, name=name, reduction=reduction, dtype=dtype)


class CategoricalHinge(_WrappedLoss):
    """Categorical hinge loss ``max(neg - pos + 1, 0)``."""

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "categorical_hinge",
        dtype: Any = None,
    ) -> None:
        super().__init__(categorical_hinge, name=name, reduction=reduction, dtype=dtype)


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
        from_logits = _check_bool("from_logits", from_logits)
        _check_number("label_smoothing", label_smoothing, 0.0, 1.0)
        axis = _check_int_axis("axis", axis)
        super().__init__(
            binary_crossentropy,
            name=name,
            reduction=reduction,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


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
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis
        self.apply_class_balancing = apply_class_balancing
        self.alpha = alpha
        self.gamma = gamma


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
        from_logits = _check_bool("from_logits", from_logits)
        _check_number("label_smoothing", label_smoothing, 0.0, 1.0)
        axis = _check_int_axis("axis", axis)
        super().__init__(
            categorical_crossentropy,
            name=name,
            reduction=reduction,
            dtype=dtype,
            from_logits=from_logits,
            label_smoothing=label_smoothing,
            axis=axis,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis


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
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis
        self.alpha = alpha
        self.gamma = gamma


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
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis


class Dice(_WrappedLoss):
    """Dice loss ``1 - 2|A∩B| / (|A| + |B|)``, summed over ``axis`` (everything
    when ``None``, giving one scalar per batch)."""

    _config_keys = ("axis",)

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "dice",
        axis: Axis = None,
        dtype: Any = None,
    ) -> None:
        axis = _check_axes("axis", axis)
        super().__init__(dice, name=name, reduction=reduction, dtype=dtype, axis=axis)
        self.axis = axis


class Tversky(_WrappedLoss):
    """Tversky loss, a Dice generalisation weighting false positives by
    ``alpha`` and false negatives by ``beta``."""

    _config_keys = ("alpha", "beta", "axis")

    def __init__(
        self,
        alpha: float = 0.5,
        beta: float = 0.5,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "tversky",
        axis: Axis = None,
        dtype: Any = None,
    ) -> None:
        _check_number("alpha", alpha)
        _check_number("beta", beta)
        axis = _check_axes("axis", axis)
        super().__init__(
            tversky,
            name=name,
            reduction=reduction,
            dtype=dtype,
            alpha=alpha,
            beta=beta,
            axis=axis,
        )
        self.alpha = alpha
        self.beta = beta
        self.axis = axis


class CTC(_WrappedLoss):
    """Connectionist temporal classification loss (see :func:`ctc`).

    ``y_true``: ``(batch, max_label_length)`` labels padded with the blank
    class 0; ``y_pred``: ``(batch, time, num_classes)`` logits.
    """

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "ctc",
        dtype: Any = None,
    ) -> None:
        super().__init__(ctc, name=name, reduction=reduction, dtype=dtype)


class Circle(_WrappedLoss):
    """Circle loss for metric learning (see :func:`circle`).

    Args:
        gamma (float): scale of the similarities, default 80.0.
        margin (float): relaxation margin, default 0.4.
        remove_diagonal (bool): ignore each sample's pair with itself.
        reduction, name, dtype: see :class:`Loss`.
    """

    _config_keys = ("gamma", "margin", "remove_diagonal")

    def __init__(
        self,
        gamma: float = 80.0,
        margin: float = 0.4,
        remove_diagonal: bool = True,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "circle",
        dtype: Any = None,
    ) -> None:
        _check_number("gamma", gamma)
        _check_number("margin", margin)
        remove_diagonal = _check_bool("remove_diagonal", remove_diagonal)
        super().__init__(
            circle,
            name=name,
            reduction=reduction,
            dtype=dtype,
            gamma=gamma,
            margin=margin,
            remove_diagonal=remove_diagonal,
        )
        self.gamma = gamma
        self.margin = margin
        self.remove_diagonal = remove_diagonal


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
        self.q = q


# --------------------------------------------------------------------------
# Identifiers and configs
# --------------------------------------------------------------------------

_CLASSES: Dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Loss,
        LossFunctionWrapper,
        MeanSquaredError,
        MeanAbsoluteError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        CosineSimilarity,
        Huber,
        LogCosh,
        Hinge,
        SquaredHinge,
        CategoricalHinge,
        KLDivergence,
        Poisson,
        BinaryCrossentropy,
        BinaryFocalCrossentropy,
        CategoricalCrossentropy,
        CategoricalFocalCrossentropy,
        SparseCategoricalCrossentropy,
        Dice,
        Tversky,
        CTC,
        Circle,
        CategoricalGeneralizedCrossEntropy,
    )
}

_FUNCTIONS: Dict[str, Callable[..., torch.Tensor]] = {
    fn.__name__: fn
    for fn in (
        mean_squared_error,
        mean_absolute_error,
        mean_absolute_percentage_error,
        mean_squared_logarithmic_error,
        cosine_similarity,
        huber,
        log_cosh,
        hinge,
        squared_hinge,
        categorical_hinge,
        kl_divergence,
        poisson,
        binary_crossentropy,
        binary_focal_crossentropy,
        categorical_crossentropy,
        categorical_focal_crossentropy,
        sparse_categorical_crossentropy,
        dice,
        tversky,
        ctc,
        circle,
        categorical_generalized_cross_entropy,
    )
}

# Keras 3's short names plus the Keras 2 legacy aliases.
_ALIASES: Dict[str, Callable[..., torch.Tensor]] = {
    "bce": binary_crossentropy,
    "BCE": binary_crossentropy,
    "kld": kl_divergence,
    "KLD": kl_divergence,
    "kullback_leibler_divergence": kl_divergence,
    "mae": mean_absolute_error,
    "MAE": mean_absolute_error,
    "mse": mean_squared_error,
    "MSE": mean_squared_error,
    "mape": mean_absolute_percentage_error,
    "MAPE": mean_absolute_percentage_error,
    "msle": mean_squared_logarithmic_error,
    "MSLE": mean_squared_logarithmic_error,
    "logcosh": log_cosh,
    "huber_loss": huber,
}

_ALL_OBJECTS: Dict[str, Any] = {**_CLASSES, **_FUNCTIONS, **_ALIASES}


def _unknown_name_error(value: str) -> ValueError:
    close = difflib.get_close_matches(value, list(_ALL_OBJECTS), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown value for argument `loss`: could not interpret loss identifier "
        f"{value!r}.{hint} Expected a loss class or function name such as "
        f"'mse', 'mean_squared_error' or 'MeanSquaredError' (one of "
        f"{sorted(_ALL_OBJECTS)}). Received: loss={value!r}"
    )


def serialize(loss: Union[Loss, Callable[..., torch.Tensor]]) -> Dict[str, Any]:
    """Config dict for a ``Loss`` instance or a torchfit loss function.

    Uses Keras's layout: ``{"module", "class_name", "config",
    "registered_name"}``; functions are ``class_name="function"`` with their
    name as ``config``.
    """
    if isinstance(loss, Loss):
        return {
            "module": "torchfit.losses",
            "class_name": type(loss).__name__,
            "config": loss.get_config(),
            "registered_name": None,
        }
    name = getattr(loss, "__name__", None)
    if callable(loss) and name is not None and _FUNCTIONS.get(name) is loss:
        return {
            "module": "torchfit.losses",
            "class_name": "function",
            "config": name,
            "registered_name": "function",
        }
    raise TypeError(
        "Invalid value for argument `loss`: expected a torchfit `Loss` instance "
        f"or a torchfit loss function. Received: loss={loss!r}"
    )


def deserialize(
    config: Union[str, Dict[str, Any]], custom_objects: Optional[Dict[str, Any]] = None
) -> Union[Loss, Callable[..., torch.Tensor]]:
    """Inverse of ``serialize``; also accepts a plain name (see ``get``).

    ``custom_objects`` maps extra class/function names to objects.
    """
    custom = dict(custom_objects or {})
    if isinstance(config, str):
        if config in custom:
            obj = custom[config]
            return obj() if inspect.isclass(obj) and issubclass(obj, Loss) else obj
        return get(config)
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(
            "Invalid value for argument `config`: expected a loss name or a "
            "dict with keys 'class_name' and 'config'. Received: "
            f"config={config!r}"
        )
    class_name = config["class_name"]
    inner = config.get("config", {})
    if class_name == "function":
        if not isinstance(inner, str):
            raise ValueError(
                "Invalid function config: 'config' must be the function name. "
                f"Received: config={config!r}"
            )
        fn = custom.get(inner) or _FUNCTIONS.get(inner) or _ALIASES.get(inner)
        if fn is None:
            raise _unknown_name_error(inner)
        return fn
    cls = custom.get(class_name) or _CLASSES.get(class_name)
    if cls is None:
        raise _unknown_name_error(class_name)
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise ValueError(
            "Invalid loss config: 'config' must be a dict of constructor "
            f"arguments. Received: config={config!r}"
        )
    if not inspect.isclass(cls):
        return cls
    if issubclass(cls, LossFunctionWrapper) and "fn" in inner:
        return cls.from_config(inner, custom_objects=custom)
    return cls.from_config(inner)


def get(identifier: Any) -> Optional[Union[Loss, Callable[..., torch.Tensor]]]:
    """Resolves a loss identifier, like ``keras.losses.get``.

    * ``None`` -> ``None``;
    * a name: a function name or alias (``"mse"``, ``"MSE"``,
      ``"mean_squared_error"``, ``"kld"``, ``"logcosh"``, ``"huber_loss"``, ...)
      gives the function; a class name (``"MeanSquaredError"``) an instance;
    * a config dict (see ``serialize``) -> the deserialised loss;
    * a ``Loss`` subclass -> an instance; any other callable as is.

    Raises ``ValueError`` for unknown names (with suggestions) and
    ``TypeError`` for other kinds of values.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        obj = _ALL_OBJECTS.get(identifier)
        if obj is None:
            raise _unknown_name_error(identifier)
    elif isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif callable(identifier):
        obj = identifier
    else:
        raise TypeError(
            "Invalid type for argument `loss`: could not interpret loss "
            "identifier. Expected None, a string, a config dict or a callable. "
            f"Received: loss={identifier!r} of type {type(identifier).__name__}"
        )
    if inspect.isclass(obj):
        if issubclass(obj, Loss) and obj not in (Loss, LossFunctionWrapper):
            return obj()
        if obj in (Loss, LossFunctionWrapper):
            raise ValueError(
                "Invalid value for argument `loss`: the abstract class "
                f"{obj.__name__!r} cannot be used as a loss. Received: "
                f"loss={identifier!r}"
            )
    return obj
