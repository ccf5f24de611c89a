"""``ReduceLROnPlateau``: lower the learning rate when a monitored quantity plateaus."""

from __future__ import annotations

import warnings
from typing import Any, Dict

import numpy as np

from .. import validation as check
from ..logs import as_float
from ._optimizer import get_learning_rate, group_learning_rates, model_optimizer, set_learning_rate
from .callback import Logs
from .monitor_callback import MonitorCallback


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without improvement.

    Works with torchfit optimizers (through ``optimizer.learning_rate``) and
    with plain ``torch.optim`` optimizers (each param group's ``"lr"`` is
    reduced on its own, never below ``min_lr``). Adds ``learning_rate`` to
    the epoch logs, as Keras does.

    Args:
        monitor: the epoch log to watch.
        factor: the multiplier, in [0, 1).
        patience: epochs without improvement before the rate is reduced.
        verbose: 1 prints a message at each reduction.
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        min_delta: the smallest change that counts as an improvement.
        cooldown: epochs to wait after a reduction before counting again.
        min_lr: the learning rate is never set below this.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 verbose: int = 0, mode: str = "auto", min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0) -> None:
        super().__init__(monitor, mode, min_delta=min_delta)
        owner = type(self).__name__
        self.factor = check.check_number(factor, "factor", minimum=0.0, maximum=1.0,
                                         max_exclusive=True, owner=owner)
        self.patience = check.check_int(patience, "patience", minimum=0, owner=owner)
        self.verbose = check.check_int(verbose, "verbose", minimum=0, owner=owner)
        self.cooldown = check.check_int(cooldown, "cooldown", minimum=0, owner=owner)
        self.min_lr = check.check_number(min_lr, "min_lr", minimum=0.0, owner=owner)
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self) -> None:
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_train_begin(self, logs: Logs = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        optimizer = model_optimizer(self.model, type(self).__name__)
        logs["learning_rate"] = get_learning_rate(optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which "
                f"is not available. Available metrics are: {','.join(logs)}.",
                stacklevel=2,
            )
            return
        current = as_float(current)
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def _reduce(self, optimizer: Any, epoch: int) -> bool:
        owner = type(self).__name__
        floor = np.float32(self.min_lr)
        rates = group_learning_rates(optimizer)
        if len(set(rates)) == 1:
            if rates[0] <= floor:
                return False
            new_lr = max(rates[0] * self.factor, self.min_lr)
            set_learning_rate(optimizer, new_lr, owner)
            self._say(epoch, new_lr)
            return True
        reduced = False
        for group, lr in zip(optimizer.param_groups, rates):
            if lr > floor:
                new_lr = max(lr * self.factor, self.min_lr)
                set_learning_rate(optimizer, new_lr, owner, group=group)
                self._say(epoch, new_lr)
                reduced = True
        return reduced

    def _say(self, epoch: int, new_lr: float) -> None:
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, Any]:
        state = self._monitor_state()
        state.update(wait=self.wait, cooldown_counter=self.cooldown_counter)
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self._load_monitor_state(state)
        self.wait = state["wait"]
        self.cooldown_counter = state["cooldown_counter"]
