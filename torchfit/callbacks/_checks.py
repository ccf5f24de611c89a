"""Argument checks shared by the built-in callbacks.

Each message names the callback, the argument, what was expected and what was
received, so a misconfigured callback fails when it is created, not epochs later.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Optional

from ..saving.files import _check_path
from ..validation import _received, is_int


def number(owner: str, name: str, value: Any, *, minimum: Optional[float] = None,
           exclusive: bool = False, maximum: Optional[float] = None,
           max_exclusive: bool = False, allow_none: bool = False) -> Optional[float]:
    """A real number (not bool), optionally bounded; returned as float."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        expected = "a number" + (" or None" if allow_none else "")
        raise TypeError(f"{owner}: argument `{name}` must be {expected}. "
                        f"Received: {_received(value)}.")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{owner}: argument `{name}` must not be NaN. Received: {value}.")
    if minimum is not None and (value < minimum or (exclusive and value == minimum)):
        op = ">" if exclusive else ">="
        raise ValueError(f"{owner}: argument `{name}` must be {op} {minimum}. Received: {value}.")
    if maximum is not None and (value > maximum or (max_exclusive and value == maximum)):
        op = "<" if max_exclusive else "<="
        raise ValueError(f"{owner}: argument `{name}` must be {op} {maximum}. Received: {value}.")
    return value


def integer(owner: str, name: str, value: Any, minimum: int = 0) -> int:
    if not is_int(value):
        raise TypeError(f"{owner}: argument `{name}` must be an integer >= {minimum}. "
                        f"Received: {_received(value)}.")
    if value < minimum:
        raise ValueError(f"{owner}: argument `{name}` must be an integer >= {minimum}. "
                         f"Received: {value}.")
    return int(value)


def boolean(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: argument `{name}` must be True or False. "
                        f"Received: {_received(value)}.")
    return value


def choice(owner: str, name: str, value: Any, options: Iterable[Any]) -> Any:
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{owner}: argument `{name}` must be one of "
                         f"{', '.join(repr(o) for o in options)}. Received: {_received(value)}.")
    return value


def string(owner: str, name: str, value: Any, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{owner}: argument `{name}` must be a string. "
                        f"Received: {_received(value)}.")
    if not value and not allow_empty:
        raise ValueError(f"{owner}: argument `{name}` must be a non-empty string. Received: ''.")
    return value


def path(owner: str, name: str, value: Any) -> str:
    """A filesystem path given as ``str`` or ``os.PathLike``; returned as ``str``."""
    return _check_path(value, name, owner=owner)


def save_freq(owner: str, value: Any) -> Any:
    """``"epoch"`` or a positive number of batches."""
    if isinstance(value, str) and value == "epoch":
        return value
    if is_int(value):
        if value < 1:
            raise _bad_save_freq(owner, str(value))
        return int(value)
    raise _bad_save_freq(owner, _received(value))


def _bad_save_freq(owner: str, received: str) -> ValueError:
    # Keras's two wordings ("Unrecognized save_freq", "Invalid value") in one.
    return ValueError(f"{owner}: argument `save_freq`: Unrecognized save_freq (Invalid "
                      f'value): expected "epoch" or an integer >= 1 (a number of batches). '
                      f"Received: {received}.")


def function(owner: str, name: str, value: Any, allow_none: bool = True) -> Any:
    if value is None and allow_none:
        return None
    if not callable(value):
        expected = "a callable" + (" or None" if allow_none else "")
        raise TypeError(f"{owner}: argument `{name}` must be {expected}. "
                        f"Received: {_received(value)}.")
    return value


def as_float(value: Any) -> Any:
    """A log value as a Python float when it is a scalar (0-d tensors, NumPy
    scalars, 1-element arrays); anything else is returned unchanged."""
    if isinstance(value, float):
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Real):
        return float(value)
    numel = getattr(value, "numel", None)
    if callable(numel) and numel() == 1:
        return float(value.detach().cpu()) if hasattr(value, "detach") else float(value)
    size = getattr(value, "size", None)
    if isinstance(size, int) and size == 1:
        return float(value)
    return value
