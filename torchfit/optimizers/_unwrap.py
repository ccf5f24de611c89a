"""Reaching the optimizer inside a loss-scale wrapper (a leaf: no torchfit imports)."""

from __future__ import annotations

from typing import Any


def unwrap_loss_scale(optimizer: Any) -> Any:
    """The optimizer that a ``LossScaleOptimizer`` wraps; any other optimizer
    (or ``None``) as it is. Read by duck typing (``inner_optimizer``, Keras's
    attribute), so every wrapper that follows Keras is unwrapped alike."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def eval_weight_optimizer(optimizer: Any) -> Any:
    """The bound optimizer (unwrapped from a loss-scale wrapper) that keeps a
    second set of weights for evaluation (``has_eval_weights``), or None.
    Plain torch optimizers have neither the attribute nor such weights."""
    inner = unwrap_loss_scale(optimizer)
    if getattr(inner, "has_eval_weights", False) and inner.is_bound:
        return inner
    return None
