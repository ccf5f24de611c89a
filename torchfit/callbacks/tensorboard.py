"""``TensorBoard``: write training logs for TensorBoard with ``torch.utils.tensorboard``.

The ``tensorboard`` package is optional; it is imported when the first event
file is written, with an ``ImportError`` that says what to install.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, Dict, Optional

from ..optimizers._unwrap import unwrap_loss_scale
from .. import validation as check
from ..logs import as_float
from ._optimizer import get_learning_rate
from .callback import Callback, Logs

INSTALL_HINT = ("The TensorBoard callback needs the optional `tensorboard` package "
                "(torch.utils.tensorboard writes its event files with it). Install it with "
                "`pip install tensorboard`.")


def summary_writer_class() -> Any:
    """``torch.utils.tensorboard.SummaryWriter``, or an ImportError naming the extra."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:  # tensorboard (or its protobuf dependency) is missing
        raise ImportError(f"{INSTALL_HINT} Import failed with: {error}") from error
    return SummaryWriter


class TensorBoard(Callback):
    """Log scalars (and optionally weight histograms) for TensorBoard.

    Epoch logs go to ``log_dir/train`` as ``epoch_<name>`` (with
    ``epoch_learning_rate``), validation logs to ``log_dir/validation`` (without
    the ``val_`` prefix); with ``update_freq`` set to ``"batch"`` or N, batch
    logs are written as ``batch_<name>`` every N batches (global step). After
    each evaluation ``evaluation_<name>_vs_iterations`` is written at the
    optimizer's step count, as in Keras.

    Args:
        log_dir: the directory for the event files.
        histogram_freq: every how many epochs to write a histogram of each
            parameter (0: never).
        write_graph: accepted for Keras compatibility; torch needs an example
            input to trace a graph, so none is written.
        write_images: must be False (weight images are not written).
        write_steps_per_second: also log training steps per second.
        update_freq: ``"epoch"``, ``"batch"`` or an integer number of batches.
        profile_batch: must be 0 (use ``torch.profiler`` to profile).
        embeddings_freq, embeddings_metadata: must stay at their defaults.
    """

    main_process_only = True  # writes files or posts: rank 0 only
    reads_batch_logs_immediately = True

    def __init__(self, log_dir: Any = "logs", histogram_freq: int = 0, write_graph: bool = True,
                 write_images: bool = False, write_steps_per_second: bool = False,
                 update_freq: Any = "epoch", profile_batch: int = 0, embeddings_freq: int = 0,
                 embeddings_metadata: Any = None) -> None:
        super().__init__()
        owner = type(self).__name__
        self.log_dir = check.check_path(log_dir, "log_dir", owner=owner)
        self.histogram_freq = check.check_int(histogram_freq, "histogram_freq", minimum=0,
                                              owner=owner)
        self.write_graph = check.check_bool(write_graph, "write_graph", owner=owner)
        self.write_images = check.check_bool(write_images, "write_images", owner=owner)
        self.write_steps_per_second = check.check_bool(write_steps_per_second,
                                                       "write_steps_per_second", owner=owner)
        if update_freq == "batch":
            update_freq = 1
        if not (update_freq == "epoch" or (check.is_int(update_freq) and update_freq >= 1)):
            raise ValueError(f'{owner}: argument `update_freq` must be "epoch", "batch" or an '
                             f"integer >= 1. Received: {update_freq!r}.")
        self.update_freq = update_freq
        for name, value in (("write_images", write_images), ("profile_batch", profile_batch),
                            ("embeddings_freq", embeddings_freq),
                            ("embeddings_metadata", embeddings_metadata)):
            if value not in (False, 0, None) or isinstance(value, (list, tuple, dict, str)):
                raise ValueError(
                    f"{owner}: argument `{name}` is not supported by the torch TensorBoard "
                    f"callback; expected its default. Received: {value!r}."
                )
        self._writers: Dict[str, Any] = {}
        self._global_train_batch = 0
        self._global_test_batch = 0
        self._training = False
        self._epoch_start_time = 0.0
        self._epoch_start_batch = 0
        # Fail at construction, not at the first epoch, when tensorboard is missing.
        summary_writer_class()

    # ---------------------------------------------------------------- writers
    def _writer(self, kind: str) -> Any:
        writer = self._writers.get(kind)
        if writer is None:
            subdir = "train" if kind == "train" else "validation"
            writer = summary_writer_class()(log_dir=os.path.join(self.log_dir, subdir))
            self._writers[kind] = writer
        return writer

    def _close_writers(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _scalars(self, kind: str, prefix: str, logs: Dict[str, Any], step: int,
                 suffix: str = "") -> None:
        writer = self._writer(kind)
        for name, value in logs.items():
            value = as_float(value)
            if isinstance(value, float):
                writer.add_scalar(f"{prefix}{name}{suffix}", value, global_step=step)

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, logs: Logs = None) -> None:
        self._global_train_batch = 0
        self._training = True

    def on_train_end(self, logs: Logs = None) -> None:
        self._training = False
        self._close_writers()

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._epoch_start_time = time.time()
        self._epoch_start_batch = self._global_train_batch

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._global_train_batch += 1

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        if self.update_freq == "epoch" or not isinstance(logs, Mapping):
            return
        step = self._global_train_batch
        if step % self.update_freq == 0:
            self._scalars("train", "batch_", logs, step)

    def on_test_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._global_test_batch += 1

    def on_test_end(self, logs: Logs = None) -> None:
        if logs and getattr(self.model, "optimizer", None) is not None:
            self._scalars("val", "evaluation_", logs, self._iterations(), "_vs_iterations")
            if not self._training:
                self._writer("val").flush()

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if logs:
            train = {k: v for k, v in logs.items() if not k.startswith("val_")}
            val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
            optimizer = getattr(self.model, "optimizer", None)
            optimizer = unwrap_loss_scale(optimizer)
            if optimizer is not None and (hasattr(optimizer, "param_groups")
                                          or hasattr(optimizer, "learning_rate")):
                train["learning_rate"] = get_learning_rate(optimizer)
            if self.write_steps_per_second:
                elapsed = max(time.time() - self._epoch_start_time, 1e-12)
                train["steps_per_second"] = (self._global_train_batch
                                             - self._epoch_start_batch) / elapsed
            if train:
                self._scalars("train", "epoch_", train, epoch)
            if val:
                self._scalars("val", "epoch_", val, epoch)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        for writer in self._writers.values():
            writer.flush()

    def _log_weights(self, epoch: int) -> None:
        writer = self._writer("train")
        for name, parameter in self.model.named_parameters():
            writer.add_histogram(f"{name}/histogram", parameter.detach().cpu(), global_step=epoch)

    def _iterations(self) -> int:
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = unwrap_loss_scale(optimizer)
        iterations: Optional[Any] = getattr(optimizer, "iterations", None)
        if iterations is None:
            return self._global_train_batch
        return int(iterations)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, Any]:
        return {"global_train_batch": self._global_train_batch,
                "global_test_batch": self._global_test_batch}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self._global_train_batch = state["global_train_batch"]
        self._global_test_batch = state["global_test_batch"]
