"""Torch losses in ``compile(loss=...)``: the argument order rule and errors with context.

The rule, in one sentence: a torch loss module, a function from
``torch.nn.functional``, or any function whose first two parameters are named
``input, target`` is called in torch order ``fn(y_pred, y)``; every other
plain function keeps Keras order ``fn(y_true, y_pred)``. The same rule holds
for plain functions given as ``metrics``.

Torch losses that need more than ``(input, target)`` (``margin_ranking_loss``,
``triplet_margin_loss``, ``gaussian_nll_loss``, ``ctc_loss``...) cannot be a
``compile`` loss: they are refused at ``compile`` with the reason, instead of
failing on the first batch.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Any, Callable, Optional

import torch
from torch import nn

from . import tree
from .naming import to_snake_case

_TORCH_ORDER = ("input", "target")


def _positional_names(fn: Callable[..., Any]) -> Optional[list]:
    """Names of the positional parameters of ``fn`` (None: no signature)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    return [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def function_name(fn: Any) -> str:
    """``fn.__name__``, looking through ``functools.partial``."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    return getattr(target, "__name__", type(target).__name__)


def is_torch_order(fn: Any) -> bool:
    """Whether the plain function ``fn`` takes ``(input, target)``: it is a
    ``torch.nn.functional`` function or its first two parameters have those names."""
    if isinstance(fn, nn.Module) or not callable(fn):
        return False
    target = fn.func if isinstance(fn, functools.partial) else fn
    if getattr(target, "__module__", None) == "torch.nn.functional":
        return True
    names = _positional_names(fn)
    return names is not None and tuple(names[:2]) == _TORCH_ORDER


class KerasOrder:
    """A torch-order function ``fn(input, target)`` called Keras's way, as
    ``(y_true, y_pred)`` (for metric wrappers that pass Keras order); it keeps
    the function's name, so its log name is unchanged."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__name__ = function_name(fn)

    def __call__(self, y_true: Any, y_pred: Any, **kwargs: Any) -> Any:
        return self.fn(y_pred, y_true, **kwargs)


def required_tensors(fn: Callable[..., Any]) -> int:
    """Positional parameters of ``fn`` without a default (a loss needs exactly 2)."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 2
    return sum(1 for p in parameters
               if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)


def check_torch_losses(spec: Any, argument: str = "loss") -> None:
    """Refuse, at ``compile``, torch-order losses in ``spec`` that need more than
    ``(input, target)``."""
    leaves = tree.flatten(spec) if tree.is_nested(spec) else [spec]
    for leaf in leaves:
        if is_torch_order(leaf):
            _check_two_tensor_loss(leaf, argument)


def _check_two_tensor_loss(fn: Any, argument: str) -> None:
    count = required_tensors(fn)
    if count != 2:
        name = function_name(fn)
        raise ValueError(
            f"Argument `{argument}`: torch loss function {name} takes {count} required "
            "tensors, but a compiled loss receives two, the model output (input) and `y` "
            f"(target). Expected a function of (input, target); received {name}"
            f"{_signature_text(fn)}. Compute it in an overridden `compute_loss` instead."
        )


def _signature_text(fn: Any) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {tuple(value.shape)} and dtype {value.dtype}"
    return f"type {type(value).__name__}"


def _fix_hint(y_true: Any, y_pred: Any) -> str:
    """The usual fix for a torch loss that refused ``y`` against the output."""
    if not (isinstance(y_true, torch.Tensor) and isinstance(y_pred, torch.Tensor)):
        return "Pass `y` as a tensor or array."
    hints = []
    if y_true.shape != y_pred.shape:
        if y_true.numel() == y_pred.numel():
            hints.append(f"reshape `y` to the output's shape, e.g. y.reshape({tuple(y_pred.shape)}) "
                         "(or reshape the model's output)")
        elif y_true.ndim == y_pred.ndim - 1:
            hints.append("class indices need an int64 `y` of shape (N,) with a loss that takes "
                         "them (nn.CrossEntropyLoss/nn.NLLLoss); one-hot or probability targets "
                         "need `y` shaped like the output")
        else:
            hints.append("give `y` the shape the loss expects for this output")
    if y_pred.is_floating_point() and not y_true.is_floating_point():
        hints.append("losses comparing values (BCE, MSE...) need a floating `y`: cast it with "
                     "y.float() (class-index losses need int64 instead)")
    elif y_true.is_floating_point() and y_true.ndim == y_pred.ndim - 1:
        hints.append("class indices must be int64: cast `y` with y.long()")
    return ("Usual fix: " + "; ".join(hints) + ".") if hints else ""


def loss_error(name: str, error: Exception, y_true: Any, y_pred: Any) -> ValueError:
    """A ``ValueError`` naming ``y`` and the output, their shapes and dtypes, and the fix."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ValueError(
        f"The torch loss {name} failed on the model output ({_describe(y_pred)}) and "
        f"`y` ({_describe(y_true)}), called as {name}(output, y): {message} "
        f"{_fix_hint(y_true, y_pred)}".rstrip()
    )


class TorchLossAdapter:
    """Calls a torch loss module or torch-order function as ``loss(y_pred, y_true)``.

    Without sample weights the loss runs as configured (its own reduction).
    With sample weights, ``reduction="none"`` gives per-element losses,
    averaged to one value per sample, then weighted and averaged over the batch
    as Keras's ``sum_over_batch_size`` does. A shape or dtype error from torch
    becomes a ``ValueError`` with context (torch's error is its cause).
    """

    def __init__(self, loss: Any) -> None:
        self.module = loss
        self.is_module = isinstance(loss, nn.Module)
        self.display = type(loss).__name__ if self.is_module else function_name(loss)
        self.name = to_snake_case(type(loss).__name__) if self.is_module else function_name(loss)
        self._unreduced: Optional[Callable[..., torch.Tensor]] = None

    def _unreduced_loss(self) -> Callable[..., torch.Tensor]:
        if self._unreduced is None:
            if self.is_module:
                module = copy.copy(self.module)
                module.reduction = "none"
                self._unreduced = module
            else:
                self._unreduced = self._unreduced_function()
        return self._unreduced

    def _unreduced_function(self) -> Callable[..., torch.Tensor]:
        try:
            takes_reduction = "reduction" in inspect.signature(self.module).parameters
        except (TypeError, ValueError):
            takes_reduction = False
        if not takes_reduction:
            raise ValueError(
                f"Argument `sample_weight` needs per-sample losses, but the loss "
                f"{self.display} has no `reduction` parameter. Expected a loss function "
                "taking reduction='none'; received one without it."
            )
        return functools.partial(self.module, reduction="none")

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> torch.Tensor:
        loss = self.module if sample_weight is None else self._unreduced_loss()
        try:
            values = loss(y_pred, y_true)
        except (RuntimeError, ValueError, IndexError, TypeError) as error:
            raise loss_error(self.display, error, y_true, y_pred) from error
        if sample_weight is None:
            return values
        return _weighted_mean(values, sample_weight, self.display)


def _weighted_mean(values: torch.Tensor, sample_weight: torch.Tensor, display: str) -> torch.Tensor:
    """Keras's ``sum_over_batch_size`` of per-element losses weighted per sample."""
    weight = sample_weight.to(values.dtype)
    while weight.ndim > values.ndim and weight.shape[-1] == 1:
        weight = weight.squeeze(-1)  # (N, 1) weights: one per sample, never an outer product
    while weight.ndim < values.ndim:
        weight = weight.unsqueeze(-1)
    if weight.ndim != values.ndim or any(w not in (1, v) for w, v in zip(weight.shape, values.shape)):
        raise ValueError(
            f"Argument `sample_weight` does not fit the losses of {display}: "
            f"expected shape ({values.shape[0] if values.ndim else 1},) or "
            f"{tuple(values.shape)}; received shape {tuple(sample_weight.shape)}."
        )
    return (values * weight).sum() / values.numel()
