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
from typing import Any, ContextManager, Dict

import torch

# Keras lists it with the optimizers; it is re-exported here, where mixed
# precision wraps an optimizer in it.
from .optimizers.loss_scale_optimizer import LossScaleOptimizer

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
