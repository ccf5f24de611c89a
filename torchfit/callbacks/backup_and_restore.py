"""``BackupAndRestore``: continue an interrupted ``fit`` exactly where it stopped.

A backup holds everything the rest of the run depends on: weights and
buffers, optimizer state, LR scheduler states, the states of the other
callbacks (``EarlyStopping`` counters, ``ReduceLROnPlateau``...), metric
accumulators, the Python/NumPy/torch/CUDA RNG states and the position in the
epoch. Re-running the same script after a crash restores it and trains on, so
that on CPU the final weights are bit-identical to an uninterrupted run.

How the position is restored: the backup records the RNG state at the start
of the current data pass (before its order was drawn), the number of batches
of that pass already read and how many of them belong to the current epoch
(its step). On restart the loop (``model.resume_point``) redraws that pass
with the pass-start RNG, drops the batches read, starts the epoch's step
counter at the step, then calls back here to put the RNG, metrics, weights
and optimizer as they were at backup time.

Without ``steps_per_epoch`` every epoch is a pass, so the pass position is
the step and the pass-start RNG the epoch-start RNG. With ``steps_per_epoch``
shorter than the data a pass spans epochs (the training ``EpochIterator``,
``model._torchfit.train_iterator`` during ``fit``, says when an epoch starts a
new pass and how far the pass is), and an epoch-level backup may be taken in
the middle of a pass: resuming it also redraws and positions the pass, then
puts back the RNG as it was when the pass-start state was swapped in.

Backups written before the pass fields existed (no ``pass_batches``) resume
as they did then: the epoch is taken to be its pass.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import warnings
from typing import Any, Dict, Iterator, List, Optional

import torch

from ..data.epoch_iterator import ResumePoint
from ..logs import to_python
from ..saving import (atomic_save, check_optimizer_state, check_rng_state, check_state_dict,
                      get_rng_state, optimizer_identity, read_checkpoint, set_rng_state)
from .. import validation as check
from .callback import Callback, Logs

BACKUP_FORMAT = "torchfit.backup"
BACKUP_VERSION = 1

_SCHEDULER_TYPES = tuple(
    t for t in (getattr(torch.optim.lr_scheduler, "LRScheduler", None),
                getattr(torch.optim.lr_scheduler, "_LRScheduler", None),
                getattr(torch.optim.lr_scheduler, "ReduceLROnPlateau", None))
    if t is not None
)


def _stateful(obj: Any) -> bool:
    return callable(getattr(obj, "state_dict", None)) and callable(getattr(obj, "load_state_dict", None))


class BackupAndRestore(Callback):
    """Back up the training state during ``fit`` and resume from it after a crash.

    Use the same ``backup_dir`` in the script that is restarted. At the start
    of ``fit`` an existing backup is loaded and training continues from it;
    at the end of a completed ``fit`` the backup is deleted (unless
    ``delete_checkpoint=False``); a ``fit`` ended by an exception or Ctrl-C
    keeps it.

    This callback always runs after the other callbacks of the ``fit`` call
    (it moves itself to the end of the list), so a backup sees their state
    after they handled the same hook, and a restore comes after their
    ``on_train_begin`` resets.

    Exactness needs the same script, data and callbacks. The RNGs restored
    are the global ones (``random``, ``numpy.random``, torch CPU and CUDA);
    private generators (a ``DataLoader(generator=...)``, ``np.random.default_rng``)
    are not known to the backup. Positions are exact for inputs that can be
    iterated again with the same order given the same global RNG state (arrays,
    tensors, ``Dataset``/``DataLoader``, ``PyDataset``), also with
    ``steps_per_epoch`` shorter than the data, where an epoch continues the
    data pass of the previous one: resuming redraws that pass and drops the
    batches already read. A one-shot Python generator cannot be replayed.

    Args:
        backup_dir: the directory holding the backup (created if needed). Do
            not share it with another run or callback. Under torch.distributed
            with several processes each writes its own file.
        save_freq: ``"epoch"`` (a backup after each epoch) or an integer N (a
            backup every N batches; one due on the last batch of an epoch, or
            on the last batch of a pass that ends its epoch early, is written
            at the end of that epoch instead).
        double_checkpoint: keep the previous backup too, and fall back to it
            when the latest one cannot be read.
        delete_checkpoint: delete the backup when ``fit`` completes.
        extra_state: a dict ``{name: object}`` of further objects with
            ``state_dict()``/``load_state_dict()`` to back up, e.g. a torch LR
            scheduler stepped by your own code or a ``GradScaler``. LR
            schedulers held as attributes of callbacks, or by the model, are
            found without it.
    """

    reads_batch_logs_immediately = True

    def __init__(self, backup_dir: Any, save_freq: Any = "epoch", double_checkpoint: bool = False,
                 delete_checkpoint: bool = True, extra_state: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()
        owner = type(self).__name__
        if backup_dir is None or backup_dir == "":
            raise ValueError(f"{owner}: Empty `backup_dir` argument passed; expected a "
                             f"directory path. Received: {backup_dir!r}.")
        self.backup_dir = check.check_path(backup_dir, "backup_dir", owner=owner)
        self.save_freq = check.check_save_freq(save_freq, owner=owner)
        self.double_checkpoint = check.check_bool(double_checkpoint, "double_checkpoint",
                                                  owner=owner)
        self.delete_checkpoint = check.check_bool(delete_checkpoint, "delete_checkpoint",
                                                  owner=owner)
        if extra_state is None:
            extra_state = {}
        if not isinstance(extra_state, dict):
            raise TypeError(f"{owner}: argument `extra_state` must be a dict of name → object "
                            "with state_dict()/load_state_dict(). Received: "
                            f"{type(extra_state).__name__}.")
        for name, obj in extra_state.items():
            if not isinstance(name, str) or not _stateful(obj):
                raise TypeError(
                    f"{owner}: argument `extra_state` must map names (str) to objects with "
                    f"state_dict() and load_state_dict(). Received {name!r}: "
                    f"{type(obj).__name__}.")
        self.extra_state = dict(extra_state)
        self._path = os.path.join(self.backup_dir, "latest.pt")
        self._prev_path = self._path + ".bkp"
        self._siblings: List[Callback] = []
        self._epoch = 0
        self._epoch_rng: Optional[Dict[str, Any]] = None
        self._pass_rng: Optional[Dict[str, Any]] = None  # at the start of the current data pass
        self._pass_epoch: Optional[int] = None  # the epoch the current pass began in
        self._rng_after_positioning: Optional[Dict[str, Any]] = None
        self._last_batch_seen = -1
        self._batches_since_saving = 0
        self._save_at_epoch_end = False
        self._resume: Optional[Dict[str, Any]] = None
        self._awaiting_build: List[Any] = []  # compiled metrics to fill in once built

    # ------------------------------------------------------- callback list
    def _attach_to_callback_list(self, callback_list: Any) -> None:
        """Called by ``CallbackList``: see the other callbacks and run after them."""
        callbacks = callback_list.callbacks
        if self in callbacks:
            callbacks.remove(self)
            callbacks.append(self)
        self._siblings = [c for c in callbacks if c is not self]

    # --------------------------------------------------------------- hooks
    def _set_paths(self) -> None:
        """One file per process when torch.distributed runs several (their RNGs differ)."""
        name = "latest.pt"
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            name = f"latest.rank{dist.get_rank()}.pt"
        self._path = os.path.join(self.backup_dir, name)
        self._prev_path = self._path + ".bkp"

    def on_train_begin(self, logs: Logs = None) -> None:
        self._set_paths()
        if os.path.exists(self.backup_dir) and not os.path.isdir(self.backup_dir):
            raise NotADirectoryError(
                "BackupAndRestore: argument `backup_dir` must be a directory. Received a path "
                f"that is an existing file: {self.backup_dir}"
            )
        self._epoch_rng = None
        self._pass_rng = None
        self._pass_epoch = None
        self._rng_after_positioning = None
        self._last_batch_seen = -1
        self._batches_since_saving = 0
        self._save_at_epoch_end = False
        self._resume = None
        backup = self._read_backup()
        if backup is None:
            return
        self._check_backup(backup)  # all of it, before anything changes
        epoch, step = int(backup["epoch"]), int(backup["step"])
        pass_batches = _pass_batches(backup)
        self._batches_since_saving = int(backup.get("save_counter", 0))
        # Weights and optimizer now (and again once positioned mid-epoch: the
        # resumed epoch's on_epoch_begin hooks may change them).
        with self._undone_on_error():
            self._restore_training_state(backup)
            if step == 0:
                self._restore_callbacks(backup)
        if step == 0:
            set_rng_state(backup["rng"])
            if backup.get("stopped"):
                epoch = max(epoch, int(self.params.get("epochs", epoch) or epoch))
                pass_batches = 0  # nothing left to train
            if pass_batches:  # an epoch-level backup in the middle of a pass
                self._resume = backup
                self.model.resume_point = ResumePoint(epoch, 0, self._on_pass_positioned,
                                                      pass_position=pass_batches,
                                                      pass_epoch=backup.get("pass_epoch"))
            else:
                self.model.resume_point = ResumePoint(epoch, 0, None)
        else:
            self._resume = backup
            self.model.resume_point = ResumePoint(epoch, step, self._on_positioned,
                                                  pass_position=pass_batches,
                                                  pass_epoch=backup.get("pass_epoch"),
                                                  logs=backup.get("logs"))

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._epoch = epoch
        self._last_batch_seen = -1
        backup = self._resume
        if backup is not None and int(backup["epoch"]) == epoch:
            # The resumed epoch redraws the pass the backup was taken in.
            if int(backup["step"]) == 0:  # epoch-level backup in the middle of a pass
                now = get_rng_state()  # this epoch's start, after the other callbacks' hooks
                self._rng_after_positioning = now
                self._epoch_rng = now if self.save_freq != "epoch" else None
            else:
                self._epoch_rng = backup.get("epoch_rng")
            self._pass_rng = _pass_rng(backup)
            self._pass_epoch = backup.get("pass_epoch")
            if self._pass_epoch is None:
                self._pass_epoch = epoch
            if self._pass_rng is not None:
                set_rng_state(self._pass_rng)
            return
        iterator = self._train_iterator()
        if self.save_freq != "epoch":
            self._epoch_rng = get_rng_state()
            if iterator is None or iterator.starts_new_pass:
                self._pass_rng, self._pass_epoch = self._epoch_rng, epoch
        else:
            self._epoch_rng = None
            if iterator is not None and iterator.steps_per_epoch is not None and iterator.starts_new_pass:
                self._pass_rng = get_rng_state()  # epoch-level backups may fall mid-pass
                self._pass_epoch = epoch

    def _train_iterator(self) -> Any:
        """The ``EpochIterator`` of the running ``fit`` (``None`` outside ``Loop.fit``)."""
        return getattr(self.model.__dict__.get("_torchfit"), "train_iterator", None)

    def _pass_batches_now(self, step: int) -> int:
        """Batches of the current pass read at a backup taken at ``step`` (0: epoch end)."""
        iterator = self._train_iterator()
        if iterator is None:
            return step  # not driven by Loop.fit: epochs taken for passes, as before
        if step == 0 and iterator.starts_new_pass:
            return 0
        return iterator.pass_position

    def _on_positioned(self) -> None:
        """The loop has dropped the batches the backup already applied."""
        backup, self._resume = self._resume, None
        if backup is None:
            return
        self._restore_training_state(backup)
        self._restore_callbacks(backup)
        self._restore_metrics(backup.get("metrics"))
        self._last_batch_seen = int(backup["step"]) - 1
        set_rng_state(backup["rng"])

    def _on_pass_positioned(self) -> None:
        """An epoch-level backup: the loop has redrawn the pass and dropped the
        batches read before it. The rest was restored in ``on_train_begin``; the
        epoch goes on with the RNG of its start."""
        self._resume = None
        state, self._rng_after_positioning = self._rng_after_positioning, None
        if state is not None:
            set_rng_state(state)

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        if self.save_freq == "epoch":
            return
        added = batch - self._last_batch_seen if batch > self._last_batch_seen else batch + 1
        self._last_batch_seen = batch
        self._batches_since_saving += added
        if self._batches_since_saving < self.save_freq:
            return
        steps = self.params.get("steps")
        iterator = self._train_iterator()
        if (self.model.stop_training or (steps is not None and batch + 1 >= steps)
                or (iterator is not None and iterator.pass_used_up)):
            # The epoch ends here (its last step, or the last batch of a pass
            # that ends it early): back up at its end, after validation and
            # the epoch-end callbacks.
            self._save_at_epoch_end = True
            return
        self._batches_since_saving = 0
        self._write_backup(epoch=self._epoch, step=batch + 1)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        # Metric states waiting for their metrics to be built belong to the
        # resumed epoch only (it may have had no batch left to build them).
        while self._awaiting_build:
            self._awaiting_build.pop().__dict__.pop("build", None)
        if self.save_freq == "epoch" or self._save_at_epoch_end:
            if self._save_at_epoch_end:
                self._batches_since_saving = 0
            self._save_at_epoch_end = False
            self._write_backup(epoch=epoch + 1, step=0)

    def on_train_end(self, logs: Logs = None) -> None:
        if not self.delete_checkpoint or sys.exc_info()[0] is not None:
            return  # kept, or fit was interrupted (Ctrl-C ends it through on_train_end)
        for path in (self._path, self._prev_path):
            if os.path.exists(path):
                os.remove(path)
        try:
            os.rmdir(self.backup_dir)
        except OSError:
            pass  # not empty (other files) or already gone

    # -------------------------------------------------------------- backup
    def _optimizer(self) -> Any:
        # Not unwrapped: a loss-scale optimizer's state_dict holds its GradScaler too.
        return getattr(self.model, "optimizer", None)

    def _schedulers(self) -> Dict[str, Any]:
        """Torch LR schedulers held by the model's training state or by callbacks."""
        found: Dict[str, Any] = {}
        state = getattr(self.model, "__dict__", {}).get("_torchfit")
        for name, value in sorted(vars(state).items()) if state is not None else []:
            if isinstance(value, _SCHEDULER_TYPES):
                found[f"model.{name}"] = value
        for index, callback in enumerate(self._siblings):
            if _stateful(callback):
                continue
            for name, value in sorted(vars(callback).items()):
                if isinstance(value, _SCHEDULER_TYPES):
                    found[f"callbacks.{index}.{name}"] = value
        return found

    def _stateful_callbacks(self) -> List[Callback]:
        return [c for c in self._siblings if _stateful(c)]

    def _write_backup(self, epoch: int, step: int) -> None:
        optimizer = self._optimizer()
        pass_batches = self._pass_batches_now(step)
        backup = {
            "format": BACKUP_FORMAT,
            "version": BACKUP_VERSION,
            "epoch": epoch,
            "step": step,
            "stopped": bool(self.model.stop_training),
            "save_counter": self._batches_since_saving,
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
            "epoch_rng": self._epoch_rng if step > 0 else None,
            # The current data pass: batches read, and the RNG state at its start.
            "pass_batches": pass_batches,
            "pass_rng": self._pass_rng if pass_batches > 0 else None,
            "pass_epoch": self._pass_epoch if pass_batches > 0 else None,
        }
        if self.double_checkpoint and os.path.exists(self._path):
            os.replace(self._path, self._prev_path)
        atomic_save(backup, self._path)

    # ------------------------------------------------------------- restore
    def _read_backup(self) -> Optional[Dict[str, Any]]:
        candidates = [p for p in (self._path, self._prev_path) if os.path.exists(p)]
        error: Optional[Exception] = None
        for path in candidates:
            try:
                backup = read_checkpoint(path)
            except ValueError as exc:
                error = exc
                continue
            if not isinstance(backup, dict) or backup.get("format") != BACKUP_FORMAT:
                raise ValueError(
                    f"BackupAndRestore: {path} is not a backup written by BackupAndRestore "
                    f"(expected format {BACKUP_FORMAT!r}). Use a `backup_dir` that only this "
                    "callback writes to."
                )
            if backup.get("version", 0) > BACKUP_VERSION:
                raise ValueError(f"BackupAndRestore: {path} was written by a newer torchfit "
                                 f"(version {backup['version']}).")
            if error is not None:
                warnings.warn(f"BackupAndRestore: the latest backup could not be read ({error}); "
                              f"restoring the previous one from {path}.", stacklevel=3)
            return backup
        if error is not None:
            raise error
        return None

    def _check_backup(self, backup: Dict[str, Any]) -> None:
        """Everything the restore will use, checked before it changes anything:
        the position, weights, optimizer kind and param groups, callbacks,
        extra states and RNG states."""
        source = f"the backup in {self.backup_dir}"
        for key in ("epoch", "step"):
            value = backup.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"BackupAndRestore: {source} holds {key}={value!r}; expected an "
                                 "integer >= 0. The backup is damaged; delete it to start over.")
        if not isinstance(backup.get("weights"), dict):
            raise ValueError(f"BackupAndRestore: {source} holds no weights. The backup is "
                             "damaged; delete it to start over.")
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

    @contextlib.contextmanager
    def _undone_on_error(self) -> Iterator[None]:
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

    def _restore_training_state(self, backup: Dict[str, Any]) -> None:
        weights = check_state_dict(self.model, backup["weights"], f"the backup in {self.backup_dir}")
        with torch.no_grad():
            self.model.load_state_dict(weights)
        optimizer = self._optimizer()
        if backup.get("optimizer") is not None and optimizer is not None:
            try:
                optimizer.load_state_dict(backup["optimizer"])
            except (ValueError, KeyError, RuntimeError) as error:
                raise ValueError(f"BackupAndRestore: the optimizer state in {self._path} does not "
                                 f"fit the model's optimizer ({type(optimizer).__name__}): {error}"
                                 ) from None
        self.model.stop_training = False
        schedulers = self._schedulers()
        saved = backup.get("schedulers", {})
        for key, scheduler in schedulers.items():
            if key in saved:
                scheduler.load_state_dict(saved[key])
        for key, obj in self.extra_state.items():  # present: see _check_backup
            obj.load_state_dict(backup["extra"][key])

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

    def _restore_callbacks(self, backup: Dict[str, Any]) -> None:
        self._check_callbacks(backup)
        for callback, entry in zip(self._stateful_callbacks(), backup.get("callbacks", [])):
            callback.load_state_dict(entry["state"])

    def _restore_metrics(self, saved: Optional[Dict[str, Any]]) -> None:
        if saved is None:
            return
        state = self.model.__dict__.get("_torchfit")
        groups = _metric_groups(self.model)
        for name, metrics in groups.items():
            values = saved.get(name)
            if values is None:
                continue
            owner = getattr(state, name, None) if name in ("compile_metrics", "compile_loss") else None
            if owner is not None and not owner.built:
                _after_build(owner, lambda n=name, v=values: _assign_metrics(
                    _metric_groups(self.model)[n], v, n))
                self._awaiting_build.append(owner)
                continue
            _assign_metrics(metrics, values, name)


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
    state = model.__dict__.get("_torchfit")
    groups: Dict[str, List[Any]] = {"loss_tracker": [], "compile_metrics": [], "compile_loss": [],
                                     "other": []}
    known = set()
    if state is not None:
        if state.loss_tracker is not None:
            groups["loss_tracker"] = [state.loss_tracker]
        if state.compile_metrics is not None and state.compile_metrics.built:
            groups["compile_metrics"] = list(state.compile_metrics.metrics)
        if state.compile_loss is not None and state.compile_loss.built:
            groups["compile_loss"] = list(state.compile_loss.metrics)
        known = {id(m) for g in groups.values() for m in g}
        if state.compile_metrics is not None:
            known.add(id(state.compile_metrics))  # the container; its members are above
    groups["other"] = [m for m in (getattr(model, "metrics", None) or []) if id(m) not in known]
    return groups


def _metric_state(metric: Any) -> Any:
    if hasattr(metric, "variables") and callable(getattr(metric, "assign_variables", None)):
        return [v.detach().clone() for v in metric.variables]
    inner = getattr(metric, "metric", None)  # a torchmetrics adapter
    defaults = getattr(inner, "_defaults", None)
    if isinstance(defaults, dict):
        values = {}
        for name in defaults:
            value = getattr(inner, name)
            values[name] = ([v.detach().clone() for v in value] if isinstance(value, list)
                            else value.detach().clone())
        return {"torchmetrics": values, "update_count": int(getattr(inner, "_update_count", 0))}
    return None


def _metric_states(model: Any) -> Dict[str, List[Any]]:
    return {name: [_metric_state(m) for m in metrics]
            for name, metrics in _metric_groups(model).items()}


def _assign_metrics(metrics: List[Any], values: List[Any], group: str) -> None:
    if len(metrics) != len(values):
        raise ValueError(f"BackupAndRestore: the backup holds {len(values)} metric states for "
                         f"{group}, the model has {len(metrics)} metrics there.")
    for metric, value in zip(metrics, values):
        if value is None:
            continue
        if isinstance(value, dict) and "torchmetrics" in value:
            inner = metric.metric
            for name, tensor in value["torchmetrics"].items():
                setattr(inner, name, tensor)
            inner._update_count = value["update_count"]
            inner._computed = None
        else:
            metric.assign_variables(value)


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
