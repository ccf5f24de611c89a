"""Tensor helpers and argument checks shared by the loss modules.

``squeeze_or_expand_to_same_rank`` is also the one copy ``torchfit.metrics``
uses.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence, Tuple, Union

import torch

from ..validation import keras_argument_error

TensorLike = Any  # torch.Tensor, numpy array, Python number or nested list
Axis = Optional[Union[int, Sequence[int]]]

# Fuzz factor used for clipping, as ``keras.backend.epsilon()`` (documented
# where ``torchfit.losses`` exports it).
EPSILON = 1e-7

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


def _aligned_pair(y_true: TensorLike, y_pred: TensorLike) -> Tuple[torch.Tensor, torch.Tensor]:
    """``_pair``, then ranks aligned with ``squeeze_or_expand_to_same_rank``."""
    y_true, y_pred = _pair(y_true, y_pred)
    return squeeze_or_expand_to_same_rank(y_true, y_pred)


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


def _to_float_tensor(y_pred: TensorLike) -> torch.Tensor:
    """``y_pred`` as a tensor, float32 unless it is floating already."""
    y_pred = _to_tensor(y_pred)
    if not y_pred.is_floating_point():
        y_pred = y_pred.to(torch.float32)
    return y_pred


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
    # Unlike ``torchfit.metrics.base.divide_no_nan`` (fewer kernels, no
    # gradients), the division runs on a safe denominator so that no NaN
    # reaches the gradient where ``den == 0``.
    zero = den == 0
    safe = torch.where(zero, torch.ones_like(den), den)
    return torch.where(zero, torch.zeros_like(num), num / safe)


# --------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------


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
        raise keras_argument_error(
            TypeError, "dtype", "None, a string, a floating torch.dtype or a dtype policy", dtype)
    raise keras_argument_error(
        ValueError, "dtype", f"None or one of {sorted(_FLOAT_DTYPES) + sorted(_POLICY_DTYPES)} "
        "(or a floating torch.dtype)", dtype, show_type=False)


def _check_name(name: Any) -> None:
    if name is not None and not isinstance(name, str):
        raise keras_argument_error(TypeError, "name", "a string or None", name)


def _check_bool(arg: str, value: Any) -> bool:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise keras_argument_error(TypeError, arg, "a bool", value)


def _check_number(
    arg: str,
    value: Any,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> Any:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise keras_argument_error(TypeError, arg, "a real number", value)
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
        raise keras_argument_error(ValueError, arg, f"a number in {interval}", value,
                                   show_type=False)
    return value


def _check_int_axis(arg: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise keras_argument_error(ValueError, arg, "an int", value)
    return int(value)


def _check_axes(arg: str, value: Any) -> Axis:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(_check_int_axis(arg, v) for v in value)
    try:
        return _check_int_axis(arg, value)
    except ValueError:
        raise keras_argument_error(ValueError, arg, "None, an int or a list/tuple of ints", value,
                                   show_type=False) from None


