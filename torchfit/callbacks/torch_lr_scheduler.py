"""``TorchLRScheduler``: a ``torch.optim.lr_scheduler`` stepped by ``fit``.

Lightning's semantics: ``interval="step"`` steps the scheduler after every
``frequency``-th *applied* optimizer step, ``interval="epoch"`` after every
``frequency``-th epoch; ``ReduceLROnPlateau`` reads ``monitor`` from the
epoch logs (Keras's default ``"val_loss"``).

Applied steps are counted by hooks on the optimizer itself (torch's
``register_step_pre_hook``/``register_step_post_hook``), so the count is
per optimizer step whatever the batch callbacks see: a ``steps_per_execution``
group of 4 steps the scheduler 4 times; a loss-scale optimizer that skips a
step (non-finite gradients) never calls the inner ``step``, so nothing is
counted; with ``gradient_accumulation_steps`` only the micro-steps that
apply an update count (a torchfit optimizer's ``iterations`` advances).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Dict, List, Optional

import torch

from .. import state as training_state
from ..validation import _received
from .. import validation as check
from ._optimizer import get_learning_rate, model_optimizer
from .callback import Callback, Logs
from .monitor_callback import direction_from_model

INTERVALS = ("step", "epoch")
SCHEDULER_TYPES = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
_STATE_KEYS = ("scheduler", "applied_steps")


def check_scheduler(owner: str, scheduler: Any) -> Any:
    """A torch LR scheduler instance, else a ``TypeError`` naming the argument."""
    if not isinstance(scheduler, SCHEDULER_TYPES):
        raise TypeError(
            f"{owner}: argument `scheduler` must be a torch.optim.lr_scheduler scheduler "
            f"(LRScheduler or ReduceLROnPlateau). Received: {_received(scheduler)}."
        )
    return scheduler


def check_same_optimizer(owner: str, scheduler: Any, optimizer: Any) -> None:
    """The scheduler must drive the optimizer the model steps, else nothing it sets is used."""
    if scheduler.optimizer is not optimizer:
        raise ValueError(
            f"{owner}: the scheduler must be built on the model's optimizer. Expected a "
            f"scheduler of the {type(optimizer).__name__} that compile() set; received one of "
            f"another {type(scheduler.optimizer).__name__} (for a torchfit or string "
            "optimizer pass a factory: compile(lr_scheduler=lambda opt: ...)).")


class TorchLRScheduler(Callback):
    """Step a torch LR scheduler during ``fit``, per applied optimizer step or per epoch.

    Attach it with ``compile(..., lr_scheduler=...)`` (it then travels with the
    model: ``model.save``/``ModelCheckpoint``/``load_model`` keep its state), or
    pass it in ``fit(callbacks=[...])`` for one run. ``BackupAndRestore`` saves
    and restores its state either way. The learning rate of the first param
    group, as the epoch used it, is logged at each epoch end as
    ``learning_rate`` (before an epoch-interval step, as Keras's
    ``ReduceLROnPlateau`` logs it).

    Args:
        scheduler: a ``torch.optim.lr_scheduler`` instance built on the
            model's optimizer (for a torchfit optimizer, the one ``compile``
            bound; see ``compile(lr_scheduler=...)`` for a factory).
        interval: ``"step"`` (after applied optimizer steps) or ``"epoch"``.
        frequency: step the scheduler every ``frequency`` intervals.
        monitor: for ``ReduceLROnPlateau`` only, the epoch log it reads
            (default ``"val_loss"``); a missing value warns and skips that step.
    """

    def __init__(self, scheduler: Any, interval: str = "epoch", frequency: int = 1,
                 monitor: Optional[str] = None) -> None:
        super().__init__()
        owner = type(self).__name__
        self.scheduler = check_scheduler(owner, scheduler)
        self.interval = check.check_choice(interval, "interval", INTERVALS, owner=owner)
        self.frequency = check.check_int(frequency, "frequency", minimum=1, owner=owner)
        self.plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self.monitor = self._check_monitor(owner, monitor)
        #: Optimizer steps applied while this callback was attached (``fit`` only).
        self.applied_steps = 0
        self._iterations_before: Optional[int] = None
        self._handles: List[Any] = []
        self._direction_checked = False

    def _check_monitor(self, owner: str, monitor: Any) -> Optional[str]:
        if monitor is not None:
            check.check_string(monitor, "monitor", owner=owner)
        if not self.plateau:
            if monitor is not None:
                raise ValueError(
                    f"{owner}: argument `monitor` is read by ReduceLROnPlateau only. Expected "
                    f"monitor=None for {type(self.scheduler).__name__}; received {monitor!r}.")
            return None
        if self.interval != "epoch":
            raise ValueError(
                f"{owner}: ReduceLROnPlateau reads `monitor` from the epoch logs. Expected "
                f"interval='epoch'; received interval={self.interval!r}.")
        return "val_loss" if monitor is None else monitor

    # --------------------------------------------------------------- state
    def state_dict(self) -> Dict[str, Any]:
        """The scheduler's ``state_dict`` and the applied-step count."""
        return {"scheduler": copy.deepcopy(self.scheduler.state_dict()),
                "applied_steps": self.applied_steps}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Put back a ``state_dict()`` (checked first: nothing changes on a bad one)."""
        owner = type(self).__name__
        if not isinstance(state, dict) or set(state) != set(_STATE_KEYS):
            raise ValueError(f"{owner}: argument `state` must be a dict with keys "
                             f"{list(_STATE_KEYS)}. Received: {_received(state)}.")
        applied = check.check_int(state["applied_steps"], "state['applied_steps']", minimum=0,
                                  owner=owner)
        self.scheduler.load_state_dict(copy.deepcopy(state["scheduler"]))
        self.applied_steps = applied

    # ----------------------------------------------------------- training
    def on_train_begin(self, logs: Logs = None) -> None:
        owner = type(self).__name__
        optimizer = model_optimizer(self.model, owner)
        check_same_optimizer(owner, self.scheduler, optimizer)
        self._remove_hooks()
        self._handles = [optimizer.register_step_pre_hook(self._before_optimizer_step),
                         optimizer.register_step_post_hook(self._after_optimizer_step)]

    def on_train_end(self, logs: Logs = None) -> None:
        self._remove_hooks()

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _fitting(self) -> bool:
        state = training_state.of(self.model)
        return state is not None and state.run.train_iterator is not None

    def _before_optimizer_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        self._iterations_before = _applied_updates(optimizer)

    def _after_optimizer_step(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        if not self._fitting():
            return  # a fit that failed left the hooks: train_on_batch does not step
        before = self._iterations_before
        if before is not None and _applied_updates(optimizer) == before:
            return  # a gradient-accumulation micro-step: no update was applied
        self.applied_steps += 1
        if self.interval == "step" and self.applied_steps % self.frequency == 0:
            self.scheduler.step()

    def _check_direction(self) -> None:
        """Warn once when the scheduler's ``mode`` opposes the monitored metric's
        direction (Keras's ``mode="auto"`` would maximize an accuracy)."""
        if self._direction_checked:
            return
        self._direction_checked = True
        name = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
        direction = direction_from_model(self.model, name)
        wanted = {"up": "max", "down": "min"}.get(direction or "")
        if wanted is not None and self.scheduler.mode != wanted:
            warnings.warn(
                f"TorchLRScheduler: ReduceLROnPlateau(mode={self.scheduler.mode!r}) monitors "
                f"`{self.monitor}`, which improves when it goes {direction}; expected "
                f"mode={wanted!r}.", stacklevel=3)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        optimizer = model_optimizer(self.model, type(self).__name__)
        if logs is not None:
            logs["learning_rate"] = get_learning_rate(optimizer)
        if self.interval != "epoch" or (epoch + 1) % self.frequency:
            return
        if not self.plateau:
            self.scheduler.step()
            return
        self._check_direction()
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(
                f"TorchLRScheduler: ReduceLROnPlateau is conditioned on `{self.monitor}`, "
                f"which is not in the logs. Available: {', '.join(sorted(logs or {}))}.",
                stacklevel=2)
            return
        self.scheduler.step(float(value))


def _applied_updates(optimizer: Any) -> Optional[int]:
    """A torchfit optimizer's count of applied updates (``iterations``, which
    gradient-accumulation micro-steps do not advance); None for other optimizers,
    whose every ``step`` call applies one."""
    value = getattr(optimizer, "iterations", None)
    return value if isinstance(value, int) else None


def as_torch_lr_scheduler(spec: Any, optimizer: Any, argument: str = "lr_scheduler"
                          ) -> Optional[TorchLRScheduler]:
    """``compile(lr_scheduler=...)``'s forms as one :class:`TorchLRScheduler`.

    ``spec`` is None, a ``TorchLRScheduler``, a torch scheduler (stepped per
    epoch), a dict in Lightning's form ``{"scheduler": ..., "interval": ...,
    "frequency": ..., "monitor": ...}``, or a factory ``fn(optimizer)`` that
    returns one of these (the optimizer is the torch one ``compile`` built).
    """
    if spec is None:
        return None
    callback = _as_callback(spec, optimizer, argument)
    check_same_optimizer(f"Argument `{argument}`", callback.scheduler, optimizer)
    return callback


def _as_callback(spec: Any, optimizer: Any, argument: str) -> TorchLRScheduler:
    if isinstance(spec, TorchLRScheduler):
        return spec
    if callable(spec) and not isinstance(spec, SCHEDULER_TYPES):
        spec = spec(optimizer)
        if callable(spec) and not isinstance(spec, (dict, TorchLRScheduler, *SCHEDULER_TYPES)):
            raise TypeError(f"Argument `{argument}`: the factory must return a scheduler, a "
                            f"TorchLRScheduler or a dict. Received: {_received(spec)}.")
        return _as_callback(spec, optimizer, argument)
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"scheduler", "interval", "frequency", "monitor"})
        if unknown or "scheduler" not in spec:
            raise ValueError(
                f"Argument `{argument}` as a dict needs the key 'scheduler' and may hold "
                "'interval', 'frequency', 'monitor' (Lightning's form). Received keys "
                f"{sorted(spec)}.")
        scheduler = spec["scheduler"]
        if callable(scheduler) and not isinstance(scheduler, SCHEDULER_TYPES):
            scheduler = scheduler(optimizer)
        return TorchLRScheduler(scheduler, **{k: v for k, v in spec.items() if k != "scheduler"})
    if isinstance(spec, SCHEDULER_TYPES):
        return TorchLRScheduler(spec)
    raise TypeError(
        f"Argument `{argument}` must be None, a torch.optim.lr_scheduler scheduler, a "
        "TorchLRScheduler, a dict {'scheduler': ..., 'interval': ..., 'frequency': ..., "
        "'monitor': ...} or a factory fn(optimizer). "
        f"Received: {_received(spec)}.")

