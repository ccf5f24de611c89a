"""Argument checks shared by the public entry points.

Every message names the argument, what was expected and what was received, so
a bad call fails at the door, before the model or optimizer is touched.
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from typing import Any, Optional

import torch
from torch import nn

from . import tree


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


def check_x(x: Any, method: str) -> None:
    if x is None:
        raise ValueError(
            f"Argument `x` of `{method}()` must be input data (arrays, tensors, a "
            "DataLoader, a Dataset or a generator). Received: None."
        )


def check_loss_weights(loss_weights: Any) -> None:
    if loss_weights is None:
        return
    leaves = tree.flatten(loss_weights) if tree.is_nested(loss_weights) else [loss_weights]
    for leaf in leaves:
        if isinstance(leaf, bool) or not isinstance(leaf, (int, float)):
            raise TypeError(
                "Argument `loss_weights` must be a float, or a list/dict of floats "
                f"(one per output). Received an entry {leaf!r} of type {type(leaf).__name__}."
            )
        if not math.isfinite(leaf):
            raise ValueError(
                "Argument `loss_weights` must hold finite numbers (one per output). "
                f"Received an entry {leaf!r}."
            )


def check_optimizer_owns_parameters(model: nn.Module, optimizer: Any) -> None:
    """A ready optimizer must update at least one of the model's parameters: one
    built on another module's parameters would train nothing, silently."""
    groups = getattr(optimizer, "param_groups", None)
    held = [p for group in groups or [] if isinstance(group, dict) for p in group.get("params", [])]
    if not held:
        return
    owned = {id(p) for p in model.parameters()}
    if not any(id(p) in owned for p in held):
        raise ValueError(
            "Argument `optimizer` must update this model's parameters. Expected an optimizer "
            "built on `model.parameters()` (or a name/unbound torchfit optimizer, bound at "
            f"compile); received a {type(optimizer).__name__} whose {len(held)} parameter "
            "tensors all belong to another module."
        )


def check_identifiers(spec: Any, argument: str, getter: Any, aliases: tuple) -> None:
    """Resolve every string in ``spec`` now, so typos fail at compile time."""
    if spec is None:
        return
    leaves = tree.flatten(spec) if tree.is_nested(spec) else [spec]
    for leaf in leaves:
        if isinstance(leaf, str) and leaf.lower() not in aliases:
            try:
                getter(leaf)
            except ValueError as error:
                raise ValueError(f"Argument `{argument}`: {error}") from None
        elif leaf is not None and not isinstance(leaf, str) and not callable(leaf) and not isinstance(leaf, dict):
            raise TypeError(
                f"Argument `{argument}` must contain names, objects or functions. "
                f"Received an entry of type {type(leaf).__name__}."
            )


#: Messages of torch's dtype-mismatch failures (matmul, convolution, RNNs, norms).
_DTYPE_MISMATCH = re.compile(r"dtype|datatype|scalar type|type \(|not implemented for '(Long|Int|Short|Char|Byte|Bool)'")


def integer_input_error(error: BaseException, x: Any) -> Optional[TypeError]:
    """The error to raise instead of ``error`` when a step failed on a dtype
    mismatch and ``x`` holds integer or bool tensors: only floating-point inputs
    are cast to the model's dtype, so an integer ``x`` reaches a float layer as
    it is. ``None`` when that is not what happened."""
    if not isinstance(error, (RuntimeError, ValueError, NotImplementedError)):
        return None
    if str(error).startswith("Argument `") or not _DTYPE_MISMATCH.search(str(error)):
        return None  # torchfit's own messages already name their argument
    integer = [leaf.dtype for leaf in tree.flatten(x) if isinstance(leaf, torch.Tensor)
               and not leaf.is_floating_point() and not leaf.is_complex()]
    if not integer:
        return None
    return TypeError(
        f"Argument `x` holds integer/bool inputs ({', '.join(sorted(set(map(str, integer))))}) "
        "and the model failed on their dtype. torchfit casts only floating-point inputs to "
        "the model's dtype; integer and bool inputs are passed as they are (e.g. token ids "
        "for an embedding). Expected floating-point `x` for this model (e.g. "
        f"x.astype('float32')); received integers. The model raised: {error}"
    )
