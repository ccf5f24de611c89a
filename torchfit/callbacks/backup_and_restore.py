"""``BackupAndRestore``: continue an interrupted ``fit`` exactly where it stopped.

This callback decides when a backup is written (``save_freq``) and where
(``backup_dir``, one file per process, an optional previous copy); what a
backup holds and how it is put back (weights, optimizer, schedulers,
callbacks, metrics, RNGs, the data position) is ``saving/run_state.py``.
Re-running the same script after a crash restores it and trains on, so that
on CPU the final weights are bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Dict, List, Optional

import torch

from ..saving import atomic_save, read_checkpoint, set_rng_state
from ..saving.run_state import DataPosition, RunStateKeeper, stateful
from .. import validation as check
from .callback import Callback, Logs

BACKUP_FORMAT = "torchfit.backup"
BACKUP_VERSION = 1


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
            if not isinstance(name, str) or not stateful(obj):
                raise TypeError(
                    f"{owner}: argument `extra_state` must map names (str) to objects with "
                    f"state_dict() and load_state_dict(). Received {name!r}: "
                    f"{type(obj).__name__}.")
        self.extra_state = dict(extra_state)
        self._path = os.path.join(self.backup_dir, "latest.pt")
        self._prev_path = self._path + ".bkp"
        self._siblings: List[Callback] = []
        self._keeper: Optional[RunStateKeeper] = None
        self._position: Optional[DataPosition] = None
        self._epoch = 0
        self._last_batch_seen = -1
        self._batches_since_saving = 0
        self._save_at_epoch_end = False
        self._resume: Optional[Dict[str, Any]] = None

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
        self._keeper = RunStateKeeper(self.model, self._siblings, self.extra_state)
        self._position = DataPosition(self.model, per_batch=self.save_freq != "epoch")
        self._last_batch_seen = -1
        self._batches_since_saving = 0
        self._save_at_epoch_end = False
        self._resume = None
        backup = self._read_backup()
        if backup is None:
            return
        source = f"the backup in {self.backup_dir}"
        self._keeper.check(backup, source)  # all of it, before anything changes
        self._batches_since_saving = int(backup.get("save_counter", 0))
        # Weights and optimizer now (and again once positioned mid-epoch: the
        # resumed epoch's on_epoch_begin hooks may change them).
        with self._keeper.undone_on_error():
            self._keeper.restore_training(backup, source, self._path)
            if backup["step"] == 0:
                self._keeper.restore_callbacks(backup)
        if backup["step"] == 0:
            set_rng_state(backup["rng"])
        self._resume = self._position.resume_point(backup, self.params.get("epochs"),
                                                   self._on_positioned)

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._epoch = epoch
        self._last_batch_seen = -1
        backup = self._resume
        resumed = backup if backup is not None and int(backup["epoch"]) == epoch else None
        if resumed is not None and int(resumed["step"]) == 0:
            self._resume = None  # positioned by the loop: DataPosition.pass_positioned
        self._position.epoch_begin(epoch, resumed)

    def _on_positioned(self) -> None:
        """The loop has dropped the batches the backup already applied."""
        backup, self._resume = self._resume, None
        if backup is None:
            return
        self._keeper.restore_training(backup, f"the backup in {self.backup_dir}", self._path)
        self._keeper.restore_callbacks(backup)
        self._keeper.restore_metrics(backup.get("metrics"))
        self._last_batch_seen = int(backup["step"]) - 1
        set_rng_state(backup["rng"])

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        if self.save_freq == "epoch":
            return
        added = batch - self._last_batch_seen if batch > self._last_batch_seen else batch + 1
        self._last_batch_seen = batch
        self._batches_since_saving += added
        if self._batches_since_saving < self.save_freq:
            return
        steps = self.params.get("steps")
        if (self.model.stop_training or (steps is not None and batch + 1 >= steps)
                or self._position.pass_used_up()):
            # The epoch ends here (its last step, or the last batch of a pass
            # that ends it early): back up at its end, after validation and
            # the epoch-end callbacks.
            self._save_at_epoch_end = True
            return
        self._batches_since_saving = 0
        self._write_backup(epoch=self._epoch, step=batch + 1)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self._keeper.forget_unbuilt()
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

    # -------------------------------------------------------------- files
    def _write_backup(self, epoch: int, step: int) -> None:
        backup = {"format": BACKUP_FORMAT, "version": BACKUP_VERSION, "epoch": epoch,
                  "step": step, "save_counter": self._batches_since_saving,
                  **self._keeper.capture(step), **self._position.capture(step)}
        if self.double_checkpoint and os.path.exists(self._path):
            os.replace(self._path, self._prev_path)
        atomic_save(backup, self._path)

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
