"""``LearningRateScheduler``: set the learning rate at the start of each epoch."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import numpy as np

from .. import validation as check
from ._optimizer import get_learning_rate, model_optimizer, set_learning_rate, sub_optimizers
from .callback import Callback, Logs


def _takes_two_arguments(fn: Callable) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    positional = [p for p in signature.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in signature.parameters.values()):
        return True
    return len(positional) >= 2


class LearningRateScheduler(Callback):
    """Call ``schedule(epoch, lr)`` (or ``schedule(epoch)``) at each epoch start
    and use its result as the learning rate.

    ``epoch`` is 0-based and ``lr`` the current rate (first param group). The
    new rate is written to every param group of a plain torch optimizer, or to
    ``optimizer.learning_rate`` of a torchfit one. ``learning_rate`` is added to
    the epoch logs.

    Args:
        schedule: a function of ``(epoch, lr)`` or ``(epoch)`` returning a float.
        verbose: 1 prints the rate set at each epoch.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        owner = type(self).__name__
        self.schedule = check.check_callable(schedule, "schedule", allow_none=False, owner=owner)
        self.verbose = check.check_int(verbose, "verbose", minimum=0, owner=owner)

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        owner = type(self).__name__
        optimizer = model_optimizer(self.model, owner)
        # A MultiOptimizer's sub-optimizers each follow the schedule from their
        # own rate, as in Keras; every value is checked before any is written.
        targets = sub_optimizers(optimizer)
        values = [self._scheduled(epoch, target) for target in targets]
        for target, value in zip(targets, values):
            set_learning_rate(target, value, owner)
        value = values[0]
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {value}.")

    def _scheduled(self, epoch: int, optimizer: Any) -> float:
        owner = type(self).__name__
        if _takes_two_arguments(self.schedule):
            value = self.schedule(epoch, get_learning_rate(optimizer))
        else:
            value = self.schedule(epoch)
        if isinstance(value, bool) or not isinstance(value, (float, np.floating)):
            raise ValueError(
                f"{owner}: the output of the `schedule` function must be a float. "
                f"Received: {value!r} (type {type(value).__name__}) at epoch {epoch}."
            )
        value = float(value)
        if not np.isfinite(value) or value < 0:
            raise ValueError(
                f"{owner}: the output of the `schedule` function must be a finite float "
                f">= 0. Received: {value!r} at epoch {epoch}."
            )
        return value

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if logs is not None:
            logs["learning_rate"] = get_learning_rate(model_optimizer(self.model, type(self).__name__))


