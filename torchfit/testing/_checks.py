"""Argument checks of the testing helpers: each message names the helper, the
argument, what was expected and what was received."""

from __future__ import annotations

import numbers
from typing import Any, Optional

from torch import nn

from ..module import KerasStyleModule
from ..validation import _received
from ..validation import is_int as _is_int


def _check_int(value: Any, name: str, function: str, minimum: int, allow_none: bool = False) -> Optional[int]:
    if value is None and allow_none:
        return None
    expected = f"an integer >= {minimum}" + (" or None" if allow_none else "")
    if not _is_int(value):
        raise TypeError(f"Argument `{name}` of `{function}()` must be {expected}. Received: {_received(value)}.")
    if value < minimum:
        raise ValueError(f"Argument `{name}` of `{function}()` must be {expected}. Received: {value}.")
    return int(value)


def _check_fraction(value: Any, name: str, function: str) -> float:
    expected = "a float in [0, 1)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Argument `{name}` of `{function}()` must be {expected}. Received: {_received(value)}.")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"Argument `{name}` of `{function}()` must be {expected}. Received: {value}.")
    return float(value)


def _check_compiled_model(model: Any, function: str) -> None:
    if not isinstance(model, KerasStyleModule) or not isinstance(model, nn.Module):
        raise TypeError(
            f"Argument `model` of `{function}()` must be a keras-style torch module "
            "(a torchfit.KerasStyleModule subclass, or a module passed through "
            f"torchfit.keras_style()). Received: {_received(model)}."
        )
    if not model.compiled:
        raise ValueError(
            f"Argument `model` of `{function}()` must be compiled. Expected a model on "
            "which compile(optimizer=..., loss=...) was called; received one that was "
            "never compiled."
        )


def _check_module(model: Any, function: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"Argument `model` of `{function}()` must be a torch.nn.Module. "
            f"Received: {_received(model)}."
        )


def _loss_of(logs: Any) -> float:
    return float(logs["loss"]) if isinstance(logs, dict) else float(logs)
