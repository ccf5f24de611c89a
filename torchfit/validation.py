"""The argument checks of every public entry point, in one vocabulary.

Every message names the argument, what was expected and what was received
(:func:`argument_error`), so a bad call fails at the door, before the model or
optimizer is touched. The argument is named ``Argument `x``` for a method's,
``Owner: argument `x``` for an object's (``owner=``: a callback's) and
``Argument `x` of `f()``` for a helper function's (``function=``). Checks that
need a component's knowledge stay beside it (``optimizers/_validation.py``,
``losses/_utils.py``) and build their messages here.
"""

from __future__ import annotations

import math
import numbers
import os
import re
import warnings
from typing import Any, Iterable, Optional, Sequence

import torch
from torch import nn

from . import tree

_LIST_LIMIT = 10  # names shown before "... and N more"


# ---------------------------------------------------------------------- messages
def _received(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} (type {type(value).__name__})"


def _subject(name: str, owner: Optional[str] = None, function: Optional[str] = None) -> str:
    """How a message names the argument (see the module docstring)."""
    if owner:
        return f"{owner}: argument `{name}`"
    if function:
        return f"Argument `{name}` of `{function}()`"
    return f"Argument `{name}`"


def argument_error(error: type, name: str, expected: str, received: str, *,
                   owner: Optional[str] = None, function: Optional[str] = None) -> Exception:
    """``error("<argument> must be <expected>. Received: <received>.")``."""
    return error(f"{_subject(name, owner, function)} must be {expected}. Received: {received}.")


def named_value(name: str, value: Any, show_type: bool = True) -> str:
    """``name=value!r of type T``: the received part of a message that shows the
    keyword the value came in."""
    return f"{name}={value!r}" + (f" of type {type(value).__name__}" if show_type else "")


def keras_argument_error(error: type, name: str, expected: str, value: Any,
                         show_type: bool = True) -> Exception:
    """Keras's wording, for the loss catalog whose messages match Keras's:
    ``Invalid type (or value) for argument `x`. Expected ... Received: x=...``."""
    kind = "type" if error is TypeError else "value"
    return error(f"Invalid {kind} for argument `{name}`. Expected {expected}. "
                 f"Received: {named_value(name, value, show_type)}")


def is_config(value: Any) -> bool:
    """A Keras-layout config dict: ``{"class_name": ..., "config": {...}}``."""
    return isinstance(value, dict) and "class_name" in value


def short_list(keys: Sequence[Any]) -> str:
    """``['a', 'b', ... and N more]``: names for a message, at most ten shown."""
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:_LIST_LIMIT])
    if len(keys) > _LIST_LIMIT:
        shown += f", ... and {len(keys) - _LIST_LIMIT} more"
    return f"[{shown}]"


# ------------------------------------------------------------------ plain values
def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(value: Any, name: str, minimum: int = 1, allow_none: bool = False, *,
              owner: Optional[str] = None, function: Optional[str] = None) -> Optional[int]:
    """An integer ``>= minimum`` (or ``None`` when allowed)."""
    if value is None and allow_none:
        return None
    expected = f"an integer >= {minimum}" + (" or None" if allow_none else "")
    if not is_int(value):
        raise argument_error(TypeError, name, expected, _received(value), owner=owner,
                             function=function)
    if value < minimum:
        raise argument_error(ValueError, name, expected, str(value), owner=owner,
                             function=function)
    return int(value)


def check_bool(value: Any, name: str, *, owner: Optional[str] = None) -> bool:
    if not isinstance(value, bool):
        raise argument_error(TypeError, name, "True or False", _received(value), owner=owner)
    return value


def check_number(value: Any, name: str, *, minimum: Optional[float] = None,
                 exclusive: bool = False, maximum: Optional[float] = None,
                 max_exclusive: bool = False, allow_none: bool = False,
                 owner: Optional[str] = None) -> Optional[float]:
    """A real number (not bool, not NaN), optionally bounded; returned as float."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        expected = "a number" + (" or None" if allow_none else "")
        raise argument_error(TypeError, name, expected, _received(value), owner=owner)
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{_subject(name, owner)} must not be NaN. Received: {value}.")
    if minimum is not None and (value < minimum or (exclusive and value == minimum)):
        raise argument_error(ValueError, name, f"{'>' if exclusive else '>='} {minimum}",
                             str(value), owner=owner)
    if maximum is not None and (value > maximum or (max_exclusive and value == maximum)):
        raise argument_error(ValueError, name, f"{'<' if max_exclusive else '<='} {maximum}",
                             str(value), owner=owner)
    return value


def check_fraction(value: Any, name: str, *, function: Optional[str] = None) -> float:
    """A float in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise argument_error(TypeError, name, "a float in [0, 1)", _received(value),
                             function=function)
    if not 0.0 <= float(value) < 1.0:
        raise argument_error(ValueError, name, "a float in [0, 1)", str(value), function=function)
    return float(value)


def check_choice(value: Any, name: str, options: Iterable[Any], *,
                 owner: Optional[str] = None) -> Any:
    """One of the strings ``options``."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise argument_error(ValueError, name, f"one of {', '.join(repr(o) for o in options)}",
                             _received(value), owner=owner)
    return value


def check_string(value: Any, name: str, allow_empty: bool = False, *,
                 owner: Optional[str] = None) -> str:
    if not isinstance(value, str):
        raise argument_error(TypeError, name, "a string", _received(value), owner=owner)
    if not value and not allow_empty:
        raise argument_error(ValueError, name, "a non-empty string", "''", owner=owner)
    return value


def check_callable(value: Any, name: str, allow_none: bool = True, *,
                   owner: Optional[str] = None) -> Any:
    if value is None and allow_none:
        return None
    if not callable(value):
        expected = "a callable" + (" or None" if allow_none else "")
        raise argument_error(TypeError, name, expected, _received(value), owner=owner)
    return value


def check_path(filepath: Any, name: str = "filepath", *, owner: Optional[str] = None) -> str:
    """A path given as ``str`` or ``os.PathLike``, returned as ``str``."""
    if isinstance(filepath, os.PathLike):
        filepath = os.fspath(filepath)
    if not isinstance(filepath, str):
        raise argument_error(TypeError, name, "a path (str or os.PathLike)", _received(filepath),
                             owner=owner)
    if not filepath:
        raise argument_error(ValueError, name, "a non-empty path", "''", owner=owner)
    return filepath


def check_save_freq(value: Any, *, owner: Optional[str] = None) -> Any:
    """``"epoch"`` or a positive number of batches (a checkpointing callback's)."""
    if isinstance(value, str) and value == "epoch":
        return value
    if is_int(value) and value >= 1:
        return int(value)
    received = str(value) if is_int(value) else _received(value)
    # Keras's two wordings ("Unrecognized save_freq", "Invalid value") in one.
    raise ValueError(f"{_subject('save_freq', owner)}: Unrecognized save_freq (Invalid "
                     f'value): expected "epoch" or an integer >= 1 (a number of batches). '
                     f"Received: {received}.")


def check_model(model: Any, name: str = "model", *, function: Optional[str] = None) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise argument_error(TypeError, name, "a torch.nn.Module", _received(model),
                             function=function)
    return model


def check_verbose(value: Any) -> int:
    """``"auto"``, 0, 1 or 2 → 0, 1 or 2 (``"auto"`` means 1)."""
    if value == "auto" and isinstance(value, str):
        return 1
    if is_int(value) and value in (0, 1, 2):
        return int(value)
    raise ValueError(f'Argument `verbose` must be "auto", 0, 1 or 2. Received: {_received(value)}.')


def check_validation_split(value: Any) -> float:
    return check_fraction(value, "validation_split")


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
