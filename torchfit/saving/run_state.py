"""Run state: what the rest of a ``fit`` depends on, captured and put back.

``BackupAndRestore`` decides when and where a backup is written; this module
decides what it holds and how it comes back:

* :class:`RunStateKeeper` captures and restores the weights and buffers, the
  optimizer state, torch LR schedulers (held by the model's compiled state or
  by callbacks), the states of the other callbacks, extra ``state_dict``
  objects, the metric states (each metric's ``get_state``/``set_state``) and
  the global RNGs; it checks a whole backup before anything changes.
* :class:`DataPosition` records where the data stands: the RNG state at the
  start of the epoch and of the current data pass, and how many batches of
  the pass were read. On restart the loop (through the ``RunState``'s
  ``ResumePoint``) redraws that pass with the pass-start RNG, drops the
  batches read, starts the epoch's step counter at the step, then calls back
  to put the RNG, metrics, weights and optimizer as they were.

Without ``steps_per_epoch`` every epoch is a pass, so the pass position is the
step and the pass-start RNG the epoch-start RNG. With ``steps_per_epoch``
shorter than the data a pass spans epochs (the training ``EpochIterator``,
``RunState.train_iterator`` during ``fit``, says when an epoch starts a new
pass and how far the pass is), and an epoch-level backup may be taken in the
middle of a pass: resuming it also redraws and positions the pass, then puts
back the RNG as it was when the pass-start state was swapped in. Backups
written before the pass fields existed (no ``pass_batches``) resume as they
did then: the epoch is taken to be its pass.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch

from .. import state as training_state
from ..data.epoch_iterator import ResumePoint
from ..logs import to_python
from .optimizer_state import check_optimizer_state, optimizer_identity
from .rng import check_rng_state, get_rng_state, set_rng_state
from .weights import check_state_dict

__all__ = ["RunStateKeeper", "DataPosition", "stateful"]

_SCHEDULER_TYPES = tuple(
    t for t in (getattr(torch.optim.lr_scheduler, "LRScheduler", None),
                getattr(torch.optim.lr_scheduler, "_LRScheduler", None),
                getattr(torch.optim.lr_scheduler, "ReduceLROnPlateau", None))
    if t is not None
)


def stateful(obj: Any) -> bool:
    """Whether ``obj`` has ``state_dict()`` and ``load_state_dict()``."""
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))


def _damaged(source: str, what: str) -> ValueError:
    return ValueError(f"BackupAndRestore: {source} {what}. The backup is damaged; delete it "
                      "to start over.")


class RunStateKeeper:
    """Captures and restores one model's run state, with the callbacks of its ``fit``.

    ``callbacks`` are the other callbacks of the ``fit`` (their
    ``state_dict()``, or the LR schedulers they hold); ``extra_state`` maps
    names to further objects with ``state_dict()``/``load_state_dict()``.
    """

    def __init__(self, model: Any, callbacks: List[Any], extra_state: Dict[str, Any]) -> None:
        self.model = model
        self.callbacks = callbacks
        self.extra_state = extra_state
        self._awaiting_build: List[Any] = []  # compiled metrics to fill in once built

    # --------------------------------------------------------------- capture
    def _optimizer(self) -> Any:
        # Not unwrapped: a loss-scale optimizer's state_dict holds its GradScaler too.
        return getattr(self.model, "optimizer", None)

    def _schedulers(self) -> Dict[str, Any]:
        """Torch LR schedulers held by callbacks without a state of their own
        (``compile(lr_scheduler=)``'s ``TorchLRScheduler`` is a stateful callback)."""
        found: Dict[str, Any] = {}
        for index, callback in enumerate(self.callbacks):
            if stateful(callback):
                continue
            for name, value in sorted(vars(callback).items()):
                if isinstance(value, _SCHEDULER_TYPES):
                    found[f"callbacks.{index}.{name}"] = value
        return found

    def _stateful_callbacks(self) -> List[Any]:
        return [c for c in self.callbacks if stateful(c)]

    def capture(self, step: int) -> Dict[str, Any]:
        """Weights, optimizer, schedulers, extra and callback states, RNGs, and
        (mid-epoch, ``step > 0``) the metric states and the epoch's logs so far."""
        optimizer = self._optimizer()
        return {
            "stopped": bool(self.model.stop_training),
            "weights": self.model.state_dict(),
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "optimizer_class": optimizer_identity(optimizer) if optimizer is not None else None,
            "schedulers": {k: s.state_dict() for k, s in self._schedulers().items()},
            "extra": {k: obj.state_dict() for k, obj in self.extra_state.items()},
            "callbacks": [{"class": type(c).__qualname__, "state": c.state_dict()}
                          for c in self._stateful_callbacks()],
            "metrics": _metric_states(self.model) if step > 0 else None,
            # The epoch's logs so far: a resumed epoch with no batch left ends with them.
            "logs": _logs_so_far(self.model) if step > 0 else None,
            "rng": get_rng_state(),
        }

    # ----------------------------------------------------------------- check
    def check(self, backup: Dict[str, Any], source: str) -> None:
        """Everything the restore will use, checked before it changes anything:
        the position, weights, optimizer kind and param groups, callbacks,
        extra states and RNG states."""
        for key in ("epoch", "step"):
            value = backup.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _damaged(source, f"holds {key}={value!r}; expected an integer >= 0")
        if not isinstance(backup.get("weights"), dict):
            raise _damaged(source, "holds no weights")
        check_state_dict(self.model, backup["weights"], source)
        optimizer = self._optimizer()
        if backup.get("optimizer") is not None and optimizer is not None:
            check_optimizer_state(optimizer, backup["optimizer"], backup.get("optimizer_class"),
                                  source)
        self._check_callbacks(backup)
        extra = backup.get("extra", {})
        missing = [key for key in self.extra_state if key not in extra]
        if missing:
            raise ValueError(f"BackupAndRestore: the backup has no state for extra_state "
                             f"{missing}; it holds {sorted(extra)}.")
        for key in ("rng", "epoch_rng", "pass_rng"):
            if backup.get(key) is not None or key == "rng":
                check_rng_state(backup.get(key), f"{source} ({key})")
        self._try_callback_states(backup, source)

    def _check_callbacks(self, backup: Dict[str, Any]) -> None:
        saved = backup.get("callbacks", [])
        names = [type(c).__qualname__ for c in self._stateful_callbacks()]
        saved_names = [e.get("class") if isinstance(e, dict) else None for e in saved]
        if names != saved_names:
            raise ValueError(
                "BackupAndRestore: the callbacks of this fit() differ from those of the run "
                f"that wrote the backup. Expected stateful callbacks {saved_names}; "
                f"received {names}."
            )

    def _try_callback_states(self, backup: Dict[str, Any], source: str) -> None:
        """Load each callback's saved state into a shallow copy of it first, so a
        damaged state fails here, before the weights change."""
        for callback, entry in zip(self._stateful_callbacks(), backup.get("callbacks", [])):
            trial = copy.copy(callback)
            try:
                trial.load_state_dict(entry["state"])
            except Exception as error:  # whatever the callback raises on a bad state
                raise ValueError(f"BackupAndRestore: the state of {type(callback).__qualname__} in "
                                 f"{source} cannot be loaded ({type(error).__name__}: {error}). "
                                 "The backup is damaged or was written by other code.") from None

    # --------------------------------------------------------------- restore
    @contextlib.contextmanager
    def undone_on_error(self) -> Iterator[None]:
        """Put the weights and the optimizer state back if restoring fails."""
        weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        optimizer = self._optimizer()
        # load_state_dict replaces the state's tensors, so this dict stays as it is.
        optimizer_state = optimizer.state_dict() if optimizer is not None else None
        try:
            yield
        except BaseException:
            with torch.no_grad():
                self.model.load_state_dict(weights)
            if optimizer is not None:
                optimizer.load_state_dict(optimizer_state)
            raise

    def restore_training(self, backup: Dict[str, Any], source: str, path: str) -> None:
        """Weights, optimizer, schedulers and extra states (checked by :meth:`check`);
        ``source`` and ``path`` name the backup in messages."""
        weights = check_state_dict(self.model, backup["weights"], source)
        with torch.no_grad():
            self.model.load_state_dict(weights)
        optimizer = self._optimizer()
        if backup.get("optimizer") is not None and optimizer is not None:
            try:
                optimizer.load_state_dict(backup["optimizer"])
            except (ValueError, KeyError, RuntimeError) as error:
                raise ValueError(f"BackupAndRestore: the optimizer state in {path} does not "
                                 f"fit the model's optimizer ({type(optimizer).__name__}): {error}"
                                 ) from None
        self.model.stop_training = False
        saved = backup.get("schedulers", {})
        for key, scheduler in self._schedulers().items():
            if key in saved:
                scheduler.load_state_dict(saved[key])
        for key, obj in self.extra_state.items():  # present: see check()
            obj.load_state_dict(backup["extra"][key])

    def restore_callbacks(self, backup: Dict[str, Any]) -> None:
        self._check_callbacks(backup)
        for callback, entry in zip(self._stateful_callbacks(), backup.get("callbacks", [])):
            callback.load_state_dict(entry["state"])

    def restore_metrics(self, saved: Optional[Dict[str, Any]]) -> None:
        """Metric states; compiled metrics not built yet get theirs once built."""
        if saved is None:
            return
        compiled = training_state.of(self.model).compiled
        for name, metrics in _metric_groups(self.model).items():
            values = saved.get(name)
            if values is None:
                continue
            owner = getattr(compiled, name, None) if name in ("compile_metrics", "compile_loss") else None
            if owner is not None and not owner.built:
                _after_build(owner, lambda n=name, v=values: _assign_metrics(
                    _metric_groups(self.model)[n], v, n))
                self._awaiting_build.append(owner)
                continue
            _assign_metrics(metrics, values, name)

    def forget_unbuilt(self) -> None:
        """Metric states waiting for their metrics to be built belong to the
        resumed epoch only (it may have had no batch left to build them)."""
        while self._awaiting_build:
            self._awaiting_build.pop().__dict__.pop("build", None)


class DataPosition:
    """Where the data of a ``fit`` stands: RNG states at the start of the
    epoch and of the data pass, and the batches of the pass read.

    ``per_batch``: backups are taken within epochs (they need the epoch-start RNG).
    """

    def __init__(self, model: Any, per_batch: bool) -> None:
        self.model = model
        self.per_batch = per_batch
        self.reset()

    def reset(self) -> None:
        self.epoch_rng: Optional[Dict[str, Any]] = None
        self.pass_rng: Optional[Dict[str, Any]] = None  # at the start of the current data pass
        self.pass_epoch: Optional[int] = None  # the epoch the current pass began in
        self._rng_after_positioning: Optional[Dict[str, Any]] = None

    def train_iterator(self) -> Any:
        """The ``EpochIterator`` of the running ``fit`` (``None`` outside ``Loop.fit``)."""
        state = training_state.of(self.model)
        return state.run.train_iterator if state is not None else None

    def resume_point(self, backup: Dict[str, Any], epochs: Any,
                     on_positioned: Callable[[], None]) -> Optional[Dict[str, Any]]:
        """Hand the loop the ``ResumePoint`` of ``backup`` (through the run state).
        Returns the backup when the loop will call back once positioned: then
        ``on_positioned`` (mid-epoch backups) or :meth:`pass_positioned` runs."""
        epoch, step = int(backup["epoch"]), int(backup["step"])
        pass_batches = _pass_batches(backup)
        pending: Optional[Dict[str, Any]] = backup
        if step == 0:
            if backup.get("stopped"):
                epoch = max(epoch, int(epochs or epoch))
                pass_batches = 0  # nothing left to train
            if pass_batches:  # an epoch-level backup in the middle of a pass
                point = ResumePoint(epoch, 0, self.pass_positioned, pass_position=pass_batches,
                                    pass_epoch=backup.get("pass_epoch"))
            else:
                point, pending = ResumePoint(epoch, 0, None), None
        else:
            point = ResumePoint(epoch, step, on_positioned, pass_position=pass_batches,
                                pass_epoch=backup.get("pass_epoch"), logs=backup.get("logs"))
        training_state.of(self.model).run.resume_point = point
        return pending

    def epoch_begin(self, epoch: int, resumed: Optional[Dict[str, Any]]) -> None:
        """Record the RNG at this epoch's (and pass's) start; ``resumed``: the
        backup whose epoch this is, whose pass is redrawn."""
        if resumed is not None:
            self._resume_epoch(epoch, resumed)
            return
        iterator = self.train_iterator()
        if self.per_batch:
            self.epoch_rng = get_rng_state()
            if iterator is None or iterator.starts_new_pass:
                self.pass_rng, self.pass_epoch = self.epoch_rng, epoch
        else:
            self.epoch_rng = None
            if iterator is not None and iterator.steps_per_epoch is not None and iterator.starts_new_pass:
                self.pass_rng = get_rng_state()  # epoch-level backups may fall mid-pass
                self.pass_epoch = epoch

    def _resume_epoch(self, epoch: int, backup: Dict[str, Any]) -> None:
        if int(backup["step"]) == 0:  # epoch-level backup in the middle of a pass
            now = get_rng_state()  # this epoch's start, after the other callbacks' hooks
            self._rng_after_positioning = now
            self.epoch_rng = now if self.per_batch else None
        else:
            self.epoch_rng = backup.get("epoch_rng")
        self.pass_rng = _pass_rng(backup)
        self.pass_epoch = backup.get("pass_epoch")
        if self.pass_epoch is None:
            self.pass_epoch = epoch
        if self.pass_rng is not None:
            set_rng_state(self.pass_rng)

    def pass_positioned(self) -> None:
        """An epoch-level backup: the loop has redrawn the pass and dropped the
        batches read before it; the epoch goes on with the RNG of its start."""
        state, self._rng_after_positioning = self._rng_after_positioning, None
        if state is not None:
            set_rng_state(state)

    def pass_used_up(self) -> bool:
        iterator = self.train_iterator()
        return iterator is not None and iterator.pass_used_up

    def capture(self, step: int) -> Dict[str, Any]:
        """The position fields of a backup taken at ``step`` (0: epoch end)."""
        pass_batches = self._pass_batches_now(step)
        return {
            "epoch_rng": self.epoch_rng if step > 0 else None,
            "pass_batches": pass_batches,
            "pass_rng": self.pass_rng if pass_batches > 0 else None,
            "pass_epoch": self.pass_epoch if pass_batches > 0 else None,
        }

    def _pass_batches_now(self, step: int) -> int:
        iterator = self.train_iterator()
        if iterator is None:
            return step  # not driven by Loop.fit: epochs taken for passes, as before
        if step == 0 and iterator.starts_new_pass:
            return 0
        return iterator.pass_position


# ------------------------------------------------------------------ data pass
def _pass_batches(backup: Dict[str, Any]) -> int:
    """Batches of the data pass read at backup time (older backups: the step)."""
    value = backup.get("pass_batches")
    return int(backup["step"]) if value is None else int(value)


def _pass_rng(backup: Dict[str, Any]) -> Any:
    """RNG state at the start of the backup's data pass (older backups: the epoch's)."""
    if "pass_batches" in backup:
        return backup.get("pass_rng")
    return backup.get("epoch_rng")


# ------------------------------------------------------------------ metric states
def _logs_so_far(model: Any) -> Optional[Dict[str, float]]:
    """The model's metric results as floats (this process's), or None without metrics."""
    results = getattr(model, "get_metrics_result", None)
    return to_python(results()) if callable(results) else None


def _metric_groups(model: Any) -> Dict[str, List[Any]]:
    """The model's metrics, grouped by where they live (so that unbuilt
    compiled metrics can be filled in once they are built)."""
    state = training_state.of(model)
    groups: Dict[str, List[Any]] = {"loss_tracker": [], "compile_metrics": [], "compile_loss": [],
                                     "other": []}
    known = set()
    if state is not None:
        compiled = state.compiled
        if compiled.loss_tracker is not None:
            groups["loss_tracker"] = [compiled.loss_tracker]
        if compiled.compile_metrics is not None and compiled.compile_metrics.built:
            groups["compile_metrics"] = list(compiled.compile_metrics.metrics)
        if compiled.compile_loss is not None and compiled.compile_loss.built:
            groups["compile_loss"] = list(compiled.compile_loss.metrics)
        known = {id(m) for g in groups.values() for m in g}
        if compiled.compile_metrics is not None:
            known.add(id(compiled.compile_metrics))  # the container; its members are above
    groups["other"] = [m for m in (getattr(model, "metrics", None) or []) if id(m) not in known]
    return groups


def _metric_states(model: Any) -> Dict[str, List[Any]]:
    """Each metric's ``get_state()`` (None for a metric without one), by group."""
    return {name: [m.get_state() if callable(getattr(m, "get_state", None)) else None
                   for m in metrics]
            for name, metrics in _metric_groups(model).items()}


def _assign_metrics(metrics: List[Any], values: List[Any], group: str) -> None:
    if len(metrics) != len(values):
        raise ValueError(f"BackupAndRestore: the backup holds {len(values)} metric states for "
                         f"{group}, the model has {len(metrics)} metrics there.")
    for metric, value in zip(metrics, values):
        if value is not None:
            metric.set_state(value)


def _after_build(owner: Any, then: Any) -> None:
    """Run ``then()`` right after ``owner.build(...)`` next runs (inside the step)."""
    original = owner.build

    @torch.compiler.disable
    def build(*args: Any, **kwargs: Any) -> Any:
        del owner.build
        result = original(*args, **kwargs)
        then()
        return result

    owner.build = build
