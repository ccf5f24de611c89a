"""Argument checks shared by the public entry points.

Every message names the argument, what was expected and what was received, so
a bad call fails at the door, before the model or optimizer is touched.
"""

from __future__ import annotations

import numbers
from typing import Any, Optional


def _received(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} (type {type(value).__name__})"


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(value: Any, name: str, minimum: int = 1, allow_none: bool = False) -> Optional[int]:
    """An integer ``>= minimum`` (or ``None`` when allowed)."""
    if value is None and allow_none:
        return None
    if not is_int(value):
        expected = f"an integer >= {minimum}" + (" or None" if allow_none else "")
        raise TypeError(f"Argument `{name}` must be {expected}. Received: {_received(value)}.")
    if value < minimum:
        raise ValueError(f"Argument `{name}` must be an integer >= {minimum}. Received: {value}.")
    return int(value)


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"Argument `{name}` must be True or False. Received: {_received(value)}.")
    return value


def check_verbose(value: Any) -> int:
    """``"auto"``, 0, 1 or 2 → 0, 1 or 2 (``"auto"`` means 1)."""
    if value == "auto" and isinstance(value, str):
        return 1
    if is_int(value) and value in (0, 1, 2):
        return int(value)
    raise ValueError(f'Argument `verbose` must be "auto", 0, 1 or 2. Received: {_received(value)}.')


def check_validation_split(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"Argument `validation_split` must be a float in [0, 1). Received: {_received(value)}."
        )
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"Argument `validation_split` must be in [0, 1). Received: {value}.")
    return float(value)


def check_validation_freq(value: Any) -> Any:
    if is_int(value) and value >= 1:
        return int(value)
    if isinstance(value, (list, tuple)) and all(is_int(v) and v >= 1 for v in value):
        return list(value)
    raise ValueError(
        "Argument `validation_freq` must be an integer >= 1 or a list of epoch "
        f"numbers (1-based). Received: {_received(value)}."
    )


def check_shuffle(value: Any) -> Any:
    if isinstance(value, bool) or value == "batch":
        return value
    raise TypeError(f'Argument `shuffle` must be True, False or "batch". Received: {_received(value)}.')


def check_no_kwargs(method: str, kwargs: dict) -> None:
    if kwargs:
        raise TypeError(
            f"`{method}()` got unexpected keyword arguments {sorted(kwargs)}. "
            "Expected only the arguments of the Keras API."
        )


def check_finite_batch(batch: Any, policy: str, step: int) -> None:
    """``model.input_nan_policy`` on one ``(x, y, sample_weight)`` batch: a
    ``ValueError`` (``"raise"``) or a ``UserWarning`` (``"warn"``) naming the
    part holding NaN/inf. Only floating-point tensors are looked at."""
    import warnings

    import torch

    from . import tree

    for name, part in zip(("x", "y", "sample_weight"), batch):
        bad = 0
        total = 0
        for leaf in tree.flatten(part):
            if isinstance(leaf, torch.Tensor) and (leaf.is_floating_point() or leaf.is_complex()):
                bad += int((~torch.isfinite(leaf)).sum())
                total += leaf.numel()
        if bad:
            message = (
                f"Argument `{name}` holds non-finite values (NaN or inf) in batch {step}: "
                f"{bad} of {total} values. Expected finite inputs "
                f"(model.input_nan_policy={policy!r}; set it to None to skip this check)."
            )
            if policy == "raise":
                raise ValueError(message + " No weights were changed by this batch.")
            warnings.warn(message, UserWarning, stacklevel=2)
