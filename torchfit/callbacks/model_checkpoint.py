"""``ModelCheckpoint``: save the model (or its weights) during training."""

from __future__ import annotations

import os
import string
import warnings
from typing import Any, Dict, Optional

import torch

from .. import distributed, saving
from ..distributed import strategies
from ..distributed.process_group import _comm_device, _dist
from ..saving.model_file import checkpoint_state
from .. import validation as check
from ..logs import as_float
from .callback import Logs
from .monitor_callback import MonitorCallback, _plain


def _check_template(owner: str, filepath: str) -> str:
    """Reject ``filepath`` templates that can never be formatted (unbalanced braces,
    positional fields) when the callback is made, not after the first epoch."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(filepath) if field is not None]
    except ValueError as error:
        raise ValueError(f'{owner}: argument `filepath` is not a valid str.format template '
                         f'({error}). Received: "{filepath}". Double braces ("{{{{") to '
                         "write a literal brace.") from None
    for field in fields:
        if field == "" or field.split(".")[0].split("[")[0].isdigit():
            raise ValueError(f'{owner}: argument `filepath` must use named fields such as '
                             f'"{{epoch:02d}}" or "{{val_loss:.2f}}". Received the positional '
                             f'field "{{{field}}}" in "{filepath}".')
    return filepath


class ModelCheckpoint(MonitorCallback):
    """Save the model at the end of every epoch or every ``save_freq`` batches.

    Files are written in torch's format with :mod:`torchfit.saving`, atomically:
    ``save_weights_only=True`` writes a plain ``state_dict`` (loadable with
    ``model.load_state_dict(torch.load(path, weights_only=True))``), otherwise
    ``model.save`` writes weights, optimizer state, compile config, epoch and step.

    Args:
        filepath: a path that may hold ``str.format`` fields filled from
            ``epoch`` (1-based), ``batch`` (1-based, batch-level saves) and the
            logs, e.g. ``"ckpt/model.{epoch:02d}-{val_loss:.2f}.pt"``.
        monitor: the log watched by ``save_best_only``.
        verbose: 1 prints a message at each save decision.
        save_best_only: save only when ``monitor`` improves on the best value
            so far (with a fixed ``filepath`` the file then always holds the
            best model).
        save_weights_only: save the ``state_dict`` only.
        mode: ``"auto"``, ``"min"`` or ``"max"`` for ``monitor``.
        save_freq: ``"epoch"``, or an integer number of batches between saves.
        initial_value_threshold: the value ``monitor`` must beat before the
            first save (with ``save_best_only``).

    Several processes: with DDP (or one process) the callback runs on rank 0
    only, which writes ``model.state_dict()``. With an FSDP-sharded model
    each process holds a shard only, so the callback runs on every process
    (pass it to ``fit`` on every process; ``fit`` raises a ``ValueError`` on
    all of them when some lack it): each save gathers the full weights
    (:func:`torchfit.distributed.full_state_dict`, a collective) and, for
    ``save_weights_only=False``, the full optimizer state, and rank 0 alone
    writes the file, atomically. The file has the plain model's keys: it
    loads into the unwrapped model (``load_state_dict(torch.load(path,
    weights_only=True))``, or ``load_model(path, model=...)`` with the
    optimizer). Whether to save (``save_best_only``, ``best``) is decided on
    rank 0 and shared with the others (one tiny broadcast per save
    opportunity), so every process gathers at the same steps even when batch
    logs are per process (``reduce_batch_logs=False``).
    """

    main_process_only = True  # writes files: rank 0 only (but see gathers_fsdp_state)
    reads_batch_logs_immediately = True
    #: Under FSDP over several processes, run on every process (saving gathers
    #: the shards, a collective); read by the distributed session.
    gathers_fsdp_state = True

    def __init__(self, filepath: Any, monitor: str = "val_loss", verbose: int = 0,
                 save_best_only: bool = False, save_weights_only: bool = False,
                 mode: str = "auto", save_freq: Any = "epoch",
                 initial_value_threshold: Optional[float] = None) -> None:
        owner = type(self).__name__
        check.check_number(initial_value_threshold, "initial_value_threshold", allow_none=True,
                           owner=owner)
        super().__init__(monitor, mode, baseline=initial_value_threshold)
        self.filepath = _check_template(owner, check.check_path(filepath, "filepath", owner=owner))
        self.verbose = check.check_int(verbose, "verbose", minimum=0, owner=owner)
        self.save_best_only = check.check_bool(save_best_only, "save_best_only", owner=owner)
        self.save_weights_only = check.check_bool(save_weights_only, "save_weights_only",
                                                  owner=owner)
        self.save_freq = check.check_save_freq(save_freq, owner=owner)
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen: Optional[int] = None
        self._current_epoch = 0

    # ------------------------------------------------------------------ hooks
    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._current_epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if self.save_best_only and self.monitor_op is None:
            self._set_monitor_op()  # metrics are built by now
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    # ---------------------------------------------------------------- helpers
    def _should_save_on_batch(self, batch: int) -> bool:
        if self.save_freq == "epoch":
            return False
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            added = batch + 1  # a new epoch started
        else:
            added = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += added
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch: int, logs: Dict[str, Any], filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=3)
            return True
        current = as_float(current)
        if not isinstance(current, float):
            warnings.warn(
                f"Can save best model only when `monitor` is a scalar value. Received: "
                f"{current}. Falling back to `save_best_only=False`.", stacklevel=3)
            return True
        if self.monitor_op is None:
            self._set_monitor_op()
        best_text = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_text} to "
                      f"{current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_text}")
        return False

    def _get_file_path(self, epoch: int, batch: Optional[int], logs: Dict[str, Any]) -> str:
        values = {k: as_float(v) for k, v in logs.items()}
        try:
            if batch is None or "batch" in values:
                return self.filepath.format(epoch=epoch + 1, **values)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **values)
        except KeyError as error:
            raise KeyError(
                f'ModelCheckpoint: failed to format the callback filepath "{self.filepath}": '
                f"the field {error} is not in the logs. Available fields: "
                f"{['epoch'] + ([] if batch is None else ['batch']) + sorted(values)}."
            ) from None
        except (ValueError, TypeError, IndexError, AttributeError) as error:
            raise ValueError(
                f'ModelCheckpoint: argument `filepath` "{self.filepath}" could not be formatted '
                f"with the epoch and logs ({type(error).__name__}: {error}). Expected "
                'str.format fields such as "{epoch:02d}" or "{val_loss:.2f}".'
            ) from None

    def _agreed_to_save(self, epoch: int, logs: Dict[str, Any], filepath: str) -> bool:
        """Under FSDP: rank 0 decides, every process follows (and keeps rank 0's
        ``best``), so all of them take part in the same gathers."""
        dist = _dist()
        main = dist.get_rank() == 0
        decided = self._should_save_model(epoch, logs, filepath) if main else True
        if not self.save_best_only:
            return True  # every opportunity saves
        best = None if self.best is None else float(self.best)
        message = torch.tensor([float(decided), float("nan") if best is None else best,
                                float(best is None)], dtype=torch.float64, device=_comm_device())
        dist.broadcast(message, src=0)
        if not main:
            self.best = None if bool(message[2]) else float(message[1])
        return bool(message[0])

    def _save_model(self, epoch: int, batch: Optional[int], logs: Logs) -> None:
        logs = dict(logs or {})
        filepath = self._get_file_path(epoch, batch, logs)
        gather = strategies._gathers_checkpoints(self.model)
        if gather:
            if not self._agreed_to_save(epoch, logs, filepath):
                return
        elif not self._should_save_model(epoch, logs, filepath):
            return
        writer = not gather or distributed.is_main_process()
        if writer and os.path.isdir(filepath):
            raise IsADirectoryError(
                "ModelCheckpoint: argument `filepath` must name a file. Received a path "
                f"that is an existing directory: {filepath}"
            )
        directory = os.path.dirname(filepath)
        if writer and directory:
            os.makedirs(directory, exist_ok=True)
        completed = epoch + 1 if batch is None else epoch
        step = 0 if batch is None else batch + 1
        # Under FSDP every process gathers and only rank 0 gets a state to write.
        state = checkpoint_state(self.model, self.save_weights_only, epoch=completed, step=step)
        if state is not None:
            saving.atomic_save(state, filepath)
        if self.verbose > 0 and writer:
            print(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, Any]:
        state = self._monitor_state()
        state.update(best=_plain(self.best),
                     batches_seen_since_last_saving=self._batches_seen_since_last_saving,
                     last_batch_seen=self._last_batch_seen, current_epoch=self._current_epoch)
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self._load_monitor_state(state)
        self._batches_seen_since_last_saving = state["batches_seen_since_last_saving"]
        self._last_batch_seen = state["last_batch_seen"]
        self._current_epoch = state["current_epoch"]
