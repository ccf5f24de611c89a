"""Reading and writing an optimizer's learning rate, for torchfit and plain torch optimizers.

torchfit optimizers expose Keras's ``learning_rate`` property (backed by the
param groups); plain ``torch.optim`` optimizers only have ``param_groups``
with an ``"lr"`` each. Wrappers that hold the real optimizer as
``inner_optimizer`` (loss-scale optimizers) are unwrapped.
"""

from __future__ import annotations

from typing import Any, List

import torch

from ..optimizers import MultiOptimizer, Optimizer
from ..optimizers._unwrap import unwrap_loss_scale


def model_optimizer(model: Any, owner: str) -> Any:
    """The optimizer of ``model`` (unwrapped), or a clear error when there is none."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = unwrap_loss_scale(optimizer)
    if optimizer is None:
        raise ValueError(
            f"{owner} needs the model's optimizer. Expected a model compiled with an "
            "optimizer; received a model whose `optimizer` is None (call compile() first)."
        )
    if not hasattr(optimizer, "param_groups") and not hasattr(optimizer, "learning_rate"):
        raise TypeError(
            f"{owner} needs an optimizer with `param_groups` (torch.optim.Optimizer) or a "
            f"`learning_rate` attribute. Received: {type(optimizer).__name__}."
        )
    return optimizer


def sub_optimizers(optimizer: Any) -> List[Any]:
    """The optimizers that own learning rates: a MultiOptimizer's sub-optimizers,
    else ``[optimizer]``."""
    if isinstance(optimizer, MultiOptimizer):
        return [o for o in optimizer.optimizers if o.is_bound]
    return [optimizer]


def _has_schedule(optimizer: Any) -> bool:
    return getattr(optimizer, "_lr_schedule", None) is not None


def group_learning_rates(optimizer: Any) -> List[float]:
    """The learning rate of each param group (one value without param groups)."""
    groups = getattr(optimizer, "param_groups", None)
    if groups and not _has_schedule(optimizer):
        return [_to_float(group["lr"]) for group in groups]
    return [_to_float(optimizer.learning_rate)]


def get_learning_rate(optimizer: Any) -> float:
    """The learning rate the next step uses (first param group)."""
    if _has_schedule(optimizer) or not getattr(optimizer, "param_groups", None):
        return _to_float(optimizer.learning_rate)
    return _to_float(optimizer.param_groups[0]["lr"])


def set_learning_rate(optimizer: Any, value: float, owner: str, group: Any = None) -> None:
    """Write ``value`` to every param group (or only to ``group``)."""
    if _has_schedule(optimizer):
        raise TypeError(
            f"{owner} cannot set the learning rate: This optimizer was created with a "
            f"`LearningRateSchedule` (the {type(optimizer).__name__} has a callable "
            "`learning_rate` schedule), so its rate is not settable to a float. "
            "Expected an optimizer with a float learning rate."
        )
    groups = getattr(optimizer, "param_groups", None)
    if not groups:
        optimizer.learning_rate = value
        return
    if group is None:
        if hasattr(type(optimizer), "learning_rate") and _is_torchfit(optimizer):
            optimizer.learning_rate = value  # keeps the optimizer's defaults in step
            return
        targets = groups
    else:
        targets = [group]
    for target in targets:
        lr = target["lr"]
        if isinstance(lr, torch.Tensor):
            lr.fill_(value)
        else:
            target["lr"] = value


def _is_torchfit(optimizer: Any) -> bool:
    return isinstance(optimizer, Optimizer)


def _to_float(value: Any) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().cpu())
    return float(value)
