"""``EarlyStopping``: stop ``fit`` when a monitored quantity stops improving."""

from __future__ import annotations

import warnings
from typing import Any, Dict, Optional

import torch

from .. import validation as check
from ..logs import as_float
from .callback import Logs
from .monitor_callback import MonitorCallback, _plain


def copy_state_dict(model: Any) -> Dict[str, torch.Tensor]:
    """A detached copy of the model's ``state_dict`` (weights and buffers)."""
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: the epoch log to watch (default ``"val_loss"``).
        min_delta: changes smaller than this do not count as improvements.
        patience: epochs without improvement after which training stops.
        verbose: 1 prints a message when stopping or restoring weights.
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        baseline: training also stops if the monitored value does not beat
            this value within ``patience`` epochs; ``wait`` is only reset by
            values that beat both the best value so far and the baseline.
        restore_best_weights: at the end of training, load the weights (the
            full ``state_dict``, buffers included) of the best epoch.
        start_from_epoch: epochs of warm-up during which nothing is monitored.

    After ``fit``, ``stopped_epoch`` is the epoch at which training stopped (0
    if it did not) and ``best_epoch`` the epoch of the best value.
    """

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0, patience: int = 0,
                 verbose: int = 0, mode: str = "auto", baseline: Optional[float] = None,
                 restore_best_weights: bool = False, start_from_epoch: int = 0) -> None:
        super().__init__(monitor, mode, min_delta=min_delta)
        owner = type(self).__name__
        self.patience = check.check_int(patience, "patience", minimum=0, owner=owner)
        self.verbose = check.check_int(verbose, "verbose", minimum=0, owner=owner)
        self.baseline = check.check_number(baseline, "baseline", allow_none=True, owner=owner)
        self.restore_best_weights = check.check_bool(restore_best_weights,
                                                     "restore_best_weights", owner=owner)
        self.start_from_epoch = check.check_int(start_from_epoch, "start_from_epoch", minimum=0,
                                                owner=owner)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights: Optional[Dict[str, torch.Tensor]] = None

    def on_train_begin(self, logs: Logs = None) -> None:
        # Fresh counters, so one instance can serve several fit() calls.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()  # metrics are built by now
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Until something better comes, the current weights are the best.
            self.best_weights = copy_state_dict(self.model)
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = copy_state_dict(self.model)
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print("Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            with torch.no_grad():
                self.model.load_state_dict(self.best_weights)

    def get_monitor_value(self, logs: Logs) -> Any:
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(logs)}",
                stacklevel=2,
            )
            return None
        return as_float(value)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, Any]:
        """Counters and best value/weights (for ``BackupAndRestore``)."""
        state = self._monitor_state()
        state.update(wait=self.wait, stopped_epoch=self.stopped_epoch,
                     best_epoch=self.best_epoch, best=_plain(self.best),
                     best_weights=self.best_weights)
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self._load_monitor_state(state)
        self.wait = state["wait"]
        self.stopped_epoch = state["stopped_epoch"]
        self.best_epoch = state["best_epoch"]
        self.best_weights = state["best_weights"]
