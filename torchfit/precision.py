"""Mixed precision: Keras's dtype policies on ``torch.autocast``, and a
``LossScaleOptimizer`` built on ``torch.amp.GradScaler``.

Under a ``"mixed_float16"`` or ``"mixed_bfloat16"`` policy the forward pass and
the loss run under ``torch.autocast`` while parameters stay float32. With
float16 the loss is scaled so small gradients don't underflow; a step whose
gradients overflow is skipped, and then the optimizer's ``iterations`` (and so
any learning-rate schedule) do not advance.
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager, Dict, Optional

import torch

__all__ = [
    "DTypePolicy",
    "LossScaleOptimizer",
    "autocast",
    "global_policy",
    "set_global_policy",
    "set_dtype_policy",
    "dtype_policy",
]

_POLICIES: Dict[str, tuple] = {
    # name: (compute dtype, variable dtype)
    "float32": (torch.float32, torch.float32),
    "float64": (torch.float64, torch.float64),
    "float16": (torch.float16, torch.float16),
    "bfloat16": (torch.bfloat16, torch.bfloat16),
    "mixed_float16": (torch.float16, torch.float32),
    "mixed_bfloat16": (torch.bfloat16, torch.float32),
}


class DTypePolicy:
    """A named pair of compute and variable dtypes, as Keras's ``DTypePolicy``."""

    def __init__(self, name: str = "float32") -> None:
        if not isinstance(name, str) or name not in _POLICIES:
            raise ValueError(
                f"Argument `name` must be one of {sorted(_POLICIES)}. Received: {name!r}."
            )
        self.name = name
        self.compute_dtype, self.variable_dtype = _POLICIES[name]
        #: Compute and variable dtypes differ (read by every step: an attribute).
        self.is_mixed: bool = name.startswith("mixed_")

    @property
    def needs_loss_scaling(self) -> bool:
        return self.name == "mixed_float16"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, DTypePolicy) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f'<DTypePolicy "{self.name}">'


_global_policy = DTypePolicy("float32")


def as_policy(policy: Any, argument: str = "policy") -> DTypePolicy:
    if isinstance(policy, DTypePolicy):
        return policy
    if isinstance(policy, str):
        try:
            return DTypePolicy(policy)
        except ValueError:
            pass
    raise ValueError(
        f"Argument `{argument}` must be a DTypePolicy or one of {sorted(_POLICIES)}. "
        f"Received: {policy!r}."
    )


def set_global_policy(policy: Any) -> None:
    """Set the policy ``compile`` uses for models without their own."""
    global _global_policy
    _global_policy = as_policy(policy)


def global_policy() -> DTypePolicy:
    return _global_policy


# Keras spells these both ways.
set_dtype_policy = set_global_policy
dtype_policy = global_policy


def autocast(policy: DTypePolicy, device: torch.device) -> ContextManager:
    """``torch.autocast`` for a mixed policy on ``device``; a no-op otherwise."""
    if not policy.is_mixed:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=policy.compute_dtype)


class LossScaleOptimizer:
    """Dynamic loss scaling around an optimizer, on ``torch.amp.GradScaler``.

    Keras's surface: ``inner_optimizer``, ``initial_scale``,
    ``dynamic_growth_steps``, ``scale_loss``, ``dynamic_scale``,
    ``iterations`` and ``learning_rate`` (both the inner optimizer's). Every
    other attribute (``param_groups``, ``state_dict``...) is the inner
    optimizer's too, so torch LR schedulers attach to ``inner_optimizer``.

    ``step()`` unscales the gradients first (so clipping sees true values),
    then applies the inner step only if every gradient is finite; otherwise
    the step is skipped and the scale halves. After ``dynamic_growth_steps``
    finite steps in a row the scale doubles.
    """

    def __init__(self, inner_optimizer: torch.optim.Optimizer, initial_scale: float = 2.0**15,
                 dynamic_growth_steps: int = 2000, name: Optional[str] = None,
                 dynamic: bool = True, device: Any = None) -> None:
        if not isinstance(inner_optimizer, torch.optim.Optimizer):
            raise TypeError(
                "Argument `inner_optimizer` must be a torch.optim.Optimizer. "
                f"Received: {type(inner_optimizer).__name__}."
            )
        if dynamic is not True:
            raise ValueError(
                "Argument `dynamic` must be True (as in Keras 3); for a fixed scale set "
                f"`loss_scale_factor` on the inner optimizer. Received: {dynamic!r}."
            )
        if isinstance(initial_scale, bool) or not isinstance(initial_scale, (int, float)) or initial_scale <= 0:
            raise ValueError(f"Argument `initial_scale` must be a positive number. Received: {initial_scale!r}.")
        if isinstance(dynamic_growth_steps, bool) or not isinstance(dynamic_growth_steps, int) or dynamic_growth_steps < 1:
            raise ValueError(
                "Argument `dynamic_growth_steps` must be an integer >= 1. "
                f"Received: {dynamic_growth_steps!r}."
            )
        self.inner_optimizer = inner_optimizer
        self.initial_scale = float(initial_scale)
        self.dynamic_growth_steps = dynamic_growth_steps
        self.name = name or "loss_scale_optimizer"
        if device is None:
            device = _optimizer_device(inner_optimizer)
        self.scaler = torch.amp.GradScaler(
            torch.device(device).type, init_scale=self.initial_scale, growth_factor=2.0,
            backoff_factor=0.5, growth_interval=dynamic_growth_steps,
        )

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes not found on the wrapper itself.
        if name == "inner_optimizer":
            raise AttributeError(name)
        return getattr(self.inner_optimizer, name)

    @property
    def dynamic_scale(self) -> float:
        return float(self.scaler.get_scale())

    @property
    def iterations(self) -> int:
        return getattr(self.inner_optimizer, "iterations", 0)

    @property
    def learning_rate(self) -> float:
        inner = self.inner_optimizer
        return getattr(inner, "learning_rate", inner.param_groups[0]["lr"])

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        inner = self.inner_optimizer
        if hasattr(type(inner), "learning_rate"):
            inner.learning_rate = value
        else:
            for group in inner.param_groups:
                group["lr"] = value

    def scale_loss(self, loss: torch.Tensor) -> torch.Tensor:
        inner_scale = getattr(self.inner_optimizer, "scale_loss", None)
        if callable(inner_scale):
            loss = inner_scale(loss)
        return self.scaler.scale(loss)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner_optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure: Any = None) -> Any:
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

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "initial_scale": self.initial_scale,
                "dynamic_growth_steps": self.dynamic_growth_steps}

    def __repr__(self) -> str:
        return f"LossScaleOptimizer({self.inner_optimizer!r}, scale={self.dynamic_scale})"


def _optimizer_device(optimizer: torch.optim.Optimizer) -> torch.device:
    for group in optimizer.param_groups:
        for param in group["params"]:
            return param.device
    return torch.device("cpu")
