"""Dynamic loss scaling around an optimizer, on ``torch.amp.GradScaler``.

Keras's ``LossScaleOptimizer`` on torch: it wraps any optimizer — a bound
``torch.optim.Optimizer`` or a torchfit optimizer that is not bound yet (the
usual ``LossScaleOptimizer(Adam())`` passed to ``compile``) — and speaks both
vocabularies: Keras's ``build``/``apply``/``apply_gradients``/
``scale_loss``/``get_config``/``from_config`` and torch's ``step``/
``zero_grad``/``state_dict``.
"""

from __future__ import annotations

import numbers
from typing import Any, Dict, Iterable, List, Optional

import torch

from ._registry import deserialize, serialize
from .base import named_entries

__all__ = ["LossScaleOptimizer"]

# Keras's base-optimizer arguments: set them on the inner optimizer instead.
_INNER_ONLY_ARGUMENTS = (
    "weight_decay",
    "clipnorm",
    "global_clipnorm",
    "clipvalue",
    "use_ema",
    "ema_momentum",
    "ema_overwrite_frequency",
    "loss_scale_factor",
    "gradient_accumulation_steps",
)


def _check_extra_arguments(kwargs: Dict[str, Any]) -> None:
    """Keras's ``ValueError``s for keyword arguments the wrapper does not take."""
    inner_only = [key for key in kwargs if key in _INNER_ONLY_ARGUMENTS]
    if inner_only:
        raise ValueError(
            f"LossScaleOptimizer does not take {inner_only}: set them on the "
            f"`inner_optimizer`. Received: {kwargs!r}."
        )
    if kwargs:
        names = ", ".join(f"`{key}`" for key in kwargs)
        raise ValueError(
            f"LossScaleOptimizer: Unrecognized keyword arguments: {names}; "
            "expected `inner_optimizer`, `initial_scale`, `dynamic_growth_steps`, "
            f"`name`, `dynamic`. Received: {kwargs!r}."
        )


def _check_arguments(inner_optimizer: Any, initial_scale: Any, dynamic_growth_steps: Any,
                     dynamic: Any) -> None:
    if not isinstance(inner_optimizer, torch.optim.Optimizer):
        raise TypeError(
            "Argument `inner_optimizer` must be a torch.optim.Optimizer (a torchfit "
            f"optimizer may still be unbound). Received: {type(inner_optimizer).__name__}."
        )
    if dynamic is not True:
        raise ValueError(
            "Argument `dynamic` must be True (as in Keras 3); for a fixed scale set "
            f"`loss_scale_factor` on the inner optimizer. Received: {dynamic!r}."
        )
    if (isinstance(initial_scale, bool) or not isinstance(initial_scale, numbers.Real)
            or not initial_scale > 0):
        raise ValueError(
            f"Argument `initial_scale` must be a positive number. Received: {initial_scale!r}."
        )
    if (isinstance(dynamic_growth_steps, bool) or not isinstance(dynamic_growth_steps, int)
            or dynamic_growth_steps < 1):
        raise ValueError(
            "Argument `dynamic_growth_steps` must be an integer >= 1. "
            f"Received: {dynamic_growth_steps!r}."
        )


def _bound_params(optimizer: torch.optim.Optimizer) -> List[torch.Tensor]:
    if "param_groups" not in optimizer.__dict__:  # an unbound torchfit optimizer
        return []
    return [p for group in optimizer.param_groups for p in group["params"]]


class LossScaleOptimizer:
    """Dynamic loss scaling around ``inner_optimizer``, as Keras's.

    ``scale_loss`` multiplies the loss by the current scale (Python floats
    too). A step first unscales the gradients (so clipping sees true
    values), then applies the inner step only if every gradient is finite;
    otherwise the step is skipped and the scale halves. After
    ``dynamic_growth_steps`` finite steps in a row the scale doubles. The
    scaling runs on a ``torch.amp.GradScaler`` created on the parameters'
    device when the inner optimizer has parameters. As in Keras, the inner
    optimizer's constant ``loss_scale_factor`` is switched off (set to None).

    Every attribute the wrapper does not define (``param_groups``,
    ``iterations``...) is the inner optimizer's, so torch LR schedulers attach
    to ``inner_optimizer``.

    Args:
        inner_optimizer: a ``torch.optim.Optimizer``, or an unbound torchfit
            optimizer (bound by ``build`` or by ``compile``).
        initial_scale (float): the first loss scale, default ``2**15``.
        dynamic_growth_steps (int): finite steps between doublings, default 2000.
        name (str, optional): default ``"loss_scale_optimizer"``.
        dynamic (bool): must be True (Keras 3 only scales dynamically).

    Raises:
        ValueError: a base-optimizer argument (``clipnorm``...; set it on the
            inner optimizer), an unknown keyword, or a bad value.
        TypeError: ``inner_optimizer`` is not a torch optimizer.
    """

    def __init__(self, inner_optimizer: torch.optim.Optimizer, initial_scale: float = 2.0**15,
                 dynamic_growth_steps: int = 2000, name: Optional[str] = None,
                 dynamic: bool = True, device: Any = None, **kwargs: Any) -> None:
        _check_extra_arguments(kwargs)
        _check_arguments(inner_optimizer, initial_scale, dynamic_growth_steps, dynamic)
        if getattr(inner_optimizer, "loss_scale_factor", None) is not None:
            # As Keras: the dynamic scale replaces the inner constant one.
            inner_optimizer.loss_scale_factor = None
        self.inner_optimizer = inner_optimizer
        self.initial_scale = float(initial_scale)
        self.dynamic_growth_steps = dynamic_growth_steps
        self.name = name or "loss_scale_optimizer"
        self._device = device
        self._scaler: Optional[torch.amp.GradScaler] = None

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not found on the wrapper itself.
        if name in ("inner_optimizer", "_scaler", "_device"):
            raise AttributeError(name)
        return getattr(self.inner_optimizer, name)

    # -- the scaler ---------------------------------------------------------- #
    @property
    def scaler(self) -> torch.amp.GradScaler:
        """The ``GradScaler``, created on the parameters' device on first use."""
        if self._scaler is None:
            device = self._device
            if device is None:
                params = _bound_params(self.inner_optimizer)
                device = params[0].device if params else torch.device("cpu")
            scaler = torch.amp.GradScaler(
                torch.device(device).type, init_scale=self.initial_scale, growth_factor=2.0,
                backoff_factor=0.5, growth_interval=self.dynamic_growth_steps,
            )
            # The scale tensor is created by the first ``scale()``; Keras's
            # ``apply(grads)`` may come before any loss was scaled.
            scaler.scale(torch.zeros((), device=device))
            self._scaler = scaler
        return self._scaler

    @property
    def dynamic_scale(self) -> float:
        """The current loss scale."""
        if self._scaler is None:
            return self.initial_scale
        return float(self._scaler.get_scale())

    # -- Keras's surface ----------------------------------------------------- #
    @property
    def iterations(self) -> int:
        return getattr(self.inner_optimizer, "iterations", 0)

    @property
    def learning_rate(self) -> float:
        inner = self.inner_optimizer
        if hasattr(type(inner), "learning_rate"):
            return inner.learning_rate
        return inner.param_groups[0]["lr"]

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        inner = self.inner_optimizer
        if hasattr(type(inner), "learning_rate"):
            inner.learning_rate = value
        else:
            for group in inner.param_groups:
                group["lr"] = value

    def build(self, params: Iterable[torch.Tensor]) -> "LossScaleOptimizer":
        """Bind an unbound inner torchfit optimizer to ``params``."""
        build = getattr(self.inner_optimizer, "build", None)
        if build is None:
            raise TypeError(
                f"LossScaleOptimizer.build: the inner {type(self.inner_optimizer).__name__} "
                "is a torch optimizer, already bound to its parameters; expected an "
                "unbound torchfit optimizer."
            )
        build(params)
        return self

    def scale_loss(self, loss: Any) -> torch.Tensor:
        """``loss`` (a tensor or a Python number) times the current scale."""
        if isinstance(loss, bool) or not isinstance(loss, (torch.Tensor, numbers.Real)):
            raise TypeError(
                "LossScaleOptimizer.scale_loss: argument `loss` must be a tensor or a "
                f"real number; received loss={loss!r} of type {type(loss).__name__}."
            )
        if not isinstance(loss, torch.Tensor):
            return torch.as_tensor(float(loss)) * self.dynamic_scale
        return self.scaler.scale(loss)

    def apply(self, grads: Iterable[Any], trainable_variables: Any = None) -> None:
        """Keras's ``apply``: one scaled step with explicit (scaled) gradients.

        The gradients are set as ``.grad`` for the step and the previous
        ``.grad`` values are put back afterwards. ``trainable_variables``
        holds tensors or ``(name, tensor)`` pairs, as the inner optimizer's
        :meth:`apply` takes them.
        """
        grads = list(grads)
        if trainable_variables is None:
            params = _bound_params(self.inner_optimizer)
        else:
            entries, params = named_entries("LossScaleOptimizer", trainable_variables)
            if not _bound_params(self.inner_optimizer):
                self.build(entries)  # (name, tensor) pairs bind with their names
        if len(params) != len(grads):
            raise ValueError(
                "LossScaleOptimizer.apply: `grads` must match the parameters one to one; "
                f"received {len(grads)} gradients for {len(params)} parameters."
            )
        saved = [p.grad for p in params]
        try:
            for p, g in zip(params, grads):
                p.grad = None if g is None else torch.as_tensor(g, dtype=p.dtype, device=p.device)
            self.step()
        finally:
            for p, g in zip(params, saved):
                p.grad = g

    def apply_gradients(self, grads_and_vars: Iterable[Any]) -> int:
        """Keras's ``apply_gradients(zip(grads, params))``; returns ``iterations``."""
        pairs = list(grads_and_vars)
        if pairs:
            grads, params = zip(*pairs)
            self.apply(grads, params)
        return self.iterations

    # -- torch's surface ----------------------------------------------------- #
    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner_optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure: Any = None) -> Any:
        """Unscale, step the inner optimizer if the gradients are finite, update the scale."""
        if closure is not None:
            raise ValueError("Argument `closure` is not supported with loss scaling. Received a callable.")
        result = self.scaler.step(self.inner_optimizer)
        self.scaler.update()
        return result

    def state_dict(self) -> Dict[str, Any]:
        return {"inner": self.inner_optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.inner_optimizer.load_state_dict(state["inner"])
        self.scaler.load_state_dict(state["scaler"])

    # -- config -------------------------------------------------------------- #
    def get_config(self) -> Dict[str, Any]:
        """Keras's layout: ``name``, ``initial_scale``, ``dynamic_growth_steps``
        and the serialized ``inner_optimizer``."""
        return {"name": self.name, "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps,
                "inner_optimizer": serialize(self.inner_optimizer)}

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> "LossScaleOptimizer":
        """Rebuild from :meth:`get_config` (or Keras's) output; the inner
        optimizer comes back unbound. Base-optimizer keys that older Keras
        configs carry are ignored."""
        config = {k: v for k, v in config.items() if k not in _INNER_ONLY_ARGUMENTS}
        inner = config.pop("inner_optimizer", None)
        if isinstance(inner, dict):
            inner = deserialize(inner, custom_objects=custom_objects)
        return cls(inner, **config)

    def __repr__(self) -> str:
        return f"LossScaleOptimizer({self.inner_optimizer!r}, scale={self.dynamic_scale})"
