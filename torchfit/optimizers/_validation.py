"""Argument checks of the optimizers, and the scalar conversions they share.

The validators (``check_number``, ``unit_interval()``, ``non_negative``...)
are what subclasses list in ``Optimizer._checks``; the ``check_*`` functions
below them validate the arguments every optimizer takes.
"""

import collections
import math
import numbers
import warnings
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import naming
from ..validation import argument_error, named_value

_NAME_COUNTS = collections.defaultdict(int)

#: ``validator(owner, name, value) -> value``, as listed in ``Optimizer._checks``.
Validator = Callable[[str, str, Any], Any]


def _auto_name(class_name: str) -> str:
    """Return a unique default name such as ``"adam"``, ``"adam_1"``..."""
    return naming.auto_name(class_name, _NAME_COUNTS)


# --------------------------------------------------------------------------
# Validators (used by the subclasses' ``_checks``).
# --------------------------------------------------------------------------


def _describe_range(
    low: Optional[float], high: Optional[float], low_open: bool, high_open: bool
) -> str:
    if low is not None and high is not None:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        return f"a float in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"a float {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"a float {'<' if high_open else '<='} {high:g}"
    return "a finite float"


class _Expected:
    """What :func:`check_number` expects, formatted only for an error message
    (it runs on every step for values torch schedulers may write)."""

    __slots__ = ("low", "high", "low_open", "high_open", "allow_none")

    def __init__(self, low: Optional[float], high: Optional[float], low_open: bool,
                 high_open: bool, allow_none: bool) -> None:
        self.low, self.high = low, high
        self.low_open, self.high_open, self.allow_none = low_open, high_open, allow_none

    def __str__(self) -> str:
        text = _describe_range(self.low, self.high, self.low_open, self.high_open)
        return text + " or None" if self.allow_none else text



def check_number(
    owner: str,
    name: str,
    value: Any,
    *,
    low: Optional[float] = None,
    high: Optional[float] = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> Optional[float]:
    """Validate a real-valued argument and return it as a Python float.

    Raises ``TypeError`` when ``value`` is not a real number (booleans and
    strings are refused) and ``ValueError`` when it is not finite or falls
    outside the given range. Both messages name the argument, say what was
    expected and show the value received.
    """
    if value is None and allow_none:
        return None
    expected = _Expected(low, high, low_open, high_open, allow_none)  # formatted on error
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        if not value.dtype.is_complex:
            value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise argument_error(TypeError, name, str(expected), named_value(name, value), owner=owner)
    number = float(value)
    bad = not math.isfinite(number)
    if low is not None:
        bad = bad or (number <= low if low_open else number < low)
    if high is not None:
        bad = bad or (number >= high if high_open else number > high)
    if bad:
        raise argument_error(ValueError, name, str(expected), named_value(name, value, False),
                             owner=owner)
    return number


def check_bool(owner: str, name: str, value: Any) -> bool:
    """Validate a boolean flag (``True``/``False``) and return it."""
    if isinstance(value, bool):
        return value
    if type(value).__name__ == "bool_":  # numpy.bool_
        return bool(value)
    raise argument_error(TypeError, name, "a bool (True or False)", named_value(name, value),
                         owner=owner)


def unit_interval(low_open: bool = False, high_open: bool = True) -> Validator:
    """Validator factory for coefficients such as betas, rho and momentum."""

    def check(owner: str, name: str, value: Any) -> float:
        return check_number(
            owner,
            name,
            value,
            low=0.0,
            high=1.0,
            low_open=low_open,
            high_open=high_open,
        )

    return check


def keras_worded(check: Callable[[str, str, Any], Any], message: str) -> Callable[[str, str, Any], Any]:
    """A validator running ``check`` that words its ``ValueError`` as Keras.

    ``message`` is Keras's text for the refused value, formatted with
    ``name`` and ``value``; code written against Keras matches on it.
    ``TypeError``s keep ``check``'s own message.
    """

    def checked(owner: str, name: str, value: Any) -> Any:
        try:
            return check(owner, name, value)
        except ValueError:
            raise ValueError(message.format(name=name, value=value)) from None

    return checked


def non_negative(owner: str, name: str, value: Any) -> float:
    return check_number(owner, name, value, low=0.0)


def positive(owner: str, name: str, value: Any) -> float:
    return check_number(owner, name, value, low=0.0, low_open=True)


def any_float(owner: str, name: str, value: Any) -> float:
    return check_number(owner, name, value)


def boolean(owner: str, name: str, value: Any) -> bool:
    return check_bool(owner, name, value)


#: Validators of the moment coefficients of the Adam family (Adam, Adamax,
#: Nadam, Lamb).
ADAM_CHECKS = {
    "beta_1": unit_interval(),
    "beta_2": unit_interval(),
    "epsilon": non_negative,
}

# Arguments ``Optimizer.__init__`` takes besides a rule's hyper-parameters.
_COMMON_ARGUMENTS = (
    "learning_rate",
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
    "name",
)


# --------------------------------------------------------------------------
# Checks of the arguments every optimizer takes.
# --------------------------------------------------------------------------


def _check_learning_rate(owner: str, value: Any) -> Tuple[Optional[float], Any]:
    """Return ``(float_or_None, schedule_or_None)`` for a learning rate."""
    if callable(value) and not isinstance(value, torch.Tensor):
        return None, value
    try:
        return (
            check_number(owner, "learning_rate", value, low=0.0),
            None,
        )
    except TypeError:
        raise argument_error(
            TypeError, "learning_rate", "a float >= 0 or a callable schedule "
            "`lr(iterations) -> float`", named_value("learning_rate", value), owner=owner) from None


def pop_keras_only_arguments(hyper: Dict[str, Any]) -> Dict[str, Any]:
    """``hyper`` without Keras 2's ``decay`` (ignored with a warning, as Keras 3)."""
    hyper = dict(hyper)
    if hyper.pop("decay", None) is not None:
        warnings.warn(
            "Argument `decay` is no longer supported and will be ignored.",
            stacklevel=4,
        )
    return hyper


def check_common_arguments(
    owner: str,
    use_ema: Any,
    ema_momentum: Any,
    ema_overwrite_frequency: Any,
    loss_scale_factor: Any,
    gradient_accumulation_steps: Any,
) -> Tuple[bool, float, Optional[int], Optional[float], Optional[int]]:
    """Validate Keras's EMA / loss-scale / accumulation arguments."""
    use_ema = check_bool(owner, "use_ema", use_ema)
    ema_momentum = check_number(owner, "ema_momentum", ema_momentum, low=0.0, high=1.0)
    ints = {}
    for key, value, low in (
        ("ema_overwrite_frequency", ema_overwrite_frequency, 1),
        ("gradient_accumulation_steps", gradient_accumulation_steps, 2),
    ):
        if value is None:
            ints[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise argument_error(TypeError, key, f"an int >= {low} or None",
                                 named_value(key, value), owner=owner)
        if value < low:
            raise argument_error(ValueError, key, f"an int >= {low} or None",
                                 named_value(key, value, False), owner=owner)
        ints[key] = int(value)
    loss_scale_factor = check_number(
        owner,
        "loss_scale_factor",
        loss_scale_factor,
        low=0.0,
        low_open=True,
        allow_none=True,
    )
    return (
        use_ema,
        ema_momentum,
        ints["ema_overwrite_frequency"],
        loss_scale_factor,
        ints["gradient_accumulation_steps"],
    )


def check_hyperparameter_names(
    owner: str, hyperparameters: Optional[Sequence[str]], hyper: Dict[str, Any]
) -> None:
    """Raise ``ValueError`` (as Keras) for keywords that are not among ``hyperparameters``
    (``None`` accepts any)."""
    if hyperparameters is None:
        return
    unknown = sorted(set(hyper) - set(hyperparameters))
    if unknown:
        valid = sorted(set(hyperparameters) | set(_COMMON_ARGUMENTS))
        received = {key: hyper[key] for key in unknown}
        raise ValueError(
            f"{owner}: Argument(s) not recognized: {received} (unexpected keyword "
            f"argument(s)); expected some of {valid}."
        )


def check_clipping(
    owner: str, clipnorm: Any, clipvalue: Any, global_clipnorm: Any
) -> Dict[str, Optional[float]]:
    """Return ``{"clipnorm": ..., "clipvalue": ..., "global_clipnorm": ...}``
    (floats > 0 or ``None``, at most one of them set)."""
    clip = {}
    for key, value in (
        ("clipnorm", clipnorm),
        ("clipvalue", clipvalue),
        ("global_clipnorm", global_clipnorm),
    ):
        clip[key] = check_number(
            owner, key, value, low=0.0, low_open=True, allow_none=True
        )
    if sum(value is not None for value in clip.values()) > 1:
        raise ValueError(
            f"{owner}: Only one of `clipnorm`, `clipvalue` and "
            "`global_clipnorm` can be set; received "
            f"clipnorm={clipnorm!r}, clipvalue={clipvalue!r}, "
            f"global_clipnorm={global_clipnorm!r}."
        )
    return clip


def check_name(owner: str, name: Any) -> str:
    """Return ``name``, or a unique default (``"adam"``, ``"adam_1"``...) for ``None``."""
    if name is None:
        return _auto_name(owner)
    if not isinstance(name, str):
        raise argument_error(TypeError, "name", "a str or None", named_value("name", name),
                             owner=owner)
    return name


# --------------------------------------------------------------------------
# Scalars
# --------------------------------------------------------------------------


def _to_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().reshape(()).item())
    return float(value)


def _cast_scalar(value: float, dtype: Optional[torch.dtype]) -> float:
    """Round a Python float to ``dtype`` (as Keras casts hyper-parameters)."""
    if dtype is None or dtype == torch.float64:
        return float(value)
    if dtype == torch.float32:  # the common case, without building a tensor each step
        return float(np.float32(value))
    return float(torch.tensor(value, dtype=dtype).item())
