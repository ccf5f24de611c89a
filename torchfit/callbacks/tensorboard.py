"""``TensorBoard``: write training logs for TensorBoard with ``torch.utils.tensorboard``.

The ``tensorboard`` package is optional; it is imported when the first event
file is written, with an ``ImportError`` that says what to install.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any, Dict, Optional

import torch
from torch import nn

from ..optimizers._unwrap import unwrap_loss_scale
from .. import validation as check
from ..logs import as_float
from ..saving.weights import save_weights
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


#: What Keras 3.15 writes as every embedding's ``tensor_name`` (a TensorFlow
#: object-checkpoint key); kept so that the projector config is Keras's.
KERAS_EMBEDDING_TENSOR_NAME = "layer_with_weights-0/embeddings/.ATTRIBUTES/VARIABLE_VALUE"


def weight_image(weight: torch.Tensor) -> Optional[torch.Tensor]:
    """``weight`` as a batch of NHWC images, or None when it has no image form.

    Keras's rules, on torch's channels-first layout: size-1 dimensions are
    dropped; a vector is one ``n x 1`` image; a matrix one image, wider than
    tall (so a ``Linear`` weight shows as Keras's ``Dense`` kernel does); a
    3-D weight (a convolution with one input channel) one image per output
    channel; a 4-D one is shown only when its last dimension can be a colour
    channel (1, 3 or 4), as in Keras.
    """
    image = weight.detach().squeeze()
    if image.ndim == 1:
        image = image.reshape(1, image.shape[0], 1, 1)
    elif image.ndim == 2:
        if image.shape[0] > image.shape[1]:
            image = image.t()
        image = image.reshape(1, image.shape[0], image.shape[1], 1)
    elif image.ndim == 3:
        image = image.unsqueeze(-1)
    if image.ndim == 4 and image.shape[-1] in (1, 3, 4):
        # Pixels are clipped to [0, 1]: infinities to its ends, NaN (no value) to 0.
        return torch.nan_to_num(image.float().cpu(), nan=0.0, posinf=1.0, neginf=0.0)
    return None


def _log_histogram(writer: Any, tag: str, weight: torch.Tensor, step: int) -> None:
    """A histogram of ``weight``'s finite values. torch's histogram refuses
    NaN and infinity, which a diverging run puts in its weights: those are
    left out, and a weight with no finite value gets a histogram of NaN
    statistics (so logging never stops ``fit``)."""
    values = weight.detach().double().cpu().flatten()
    finite = values[torch.isfinite(values)]
    if finite.numel():
        writer.add_histogram(tag, finite, global_step=step)
        return
    nan = float("nan")
    writer.add_histogram_raw(tag, min=nan, max=nan, num=values.numel(), sum=nan, sum_squares=nan,
                             bucket_limits=[nan], bucket_counts=[values.numel()], global_step=step)


def _embedding_layers(model: nn.Module) -> Dict[str, nn.Embedding]:
    """The model's ``nn.Embedding`` modules by ``named_modules()`` name."""
    return {name: module for name, module in model.named_modules() if isinstance(module, nn.Embedding)}


def _metadata_path(name: str, metadata: Dict[str, str]) -> Optional[str]:
    """The key of ``metadata`` naming the layer ``name``: its full module name,
    else its last part (``"embedding"`` for ``"encoder.embedding"``)."""
    for key in (name, name.rsplit(".", 1)[-1]):
        if key in metadata:
            return key
    return None


def projector_config(model: nn.Module, embeddings_metadata: Any) -> str:
    """The text of Keras's ``projector_config.pbtxt`` for ``model``'s
    ``nn.Embedding`` layers, with their metadata files."""
    try:
        from google.protobuf import text_format
        from tensorboard.plugins import projector
    except ImportError as error:
        raise ImportError(f"{INSTALL_HINT} Import failed with: {error}") from error
    config = projector.ProjectorConfig()
    unused = dict(embeddings_metadata) if isinstance(embeddings_metadata, dict) else {}
    for name in _embedding_layers(model):
        embedding = config.embeddings.add()
        embedding.tensor_name = KERAS_EMBEDDING_TENSOR_NAME
        if isinstance(embeddings_metadata, str):
            embedding.metadata_path = embeddings_metadata
        else:
            key = _metadata_path(name, unused)
            if key is not None:
                embedding.metadata_path = unused.pop(key)
    if unused:
        raise ValueError(
            "TensorBoard: argument `embeddings_metadata` names layers that are not "
            f"nn.Embedding modules of the model: {sorted(unused)}. Expected names of "
            f"{sorted(_embedding_layers(model)) or 'its embeddings (it has none)'}."
        )
    return text_format.MessageToString(config)


def _embeddings_metadata(owner: str, value: Any) -> Any:
    """None, a file name for every embedding, or ``{layer name: file name}``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                       for k, v in value.items()):
        return dict(value)
    raise check.argument_error(TypeError, "embeddings_metadata",
                               "None, a file name, or a dict of layer names to file names",
                               check._received(value), owner=owner)


class TensorBoard(Callback):
    """Log scalars (and optionally weight histograms and images) for TensorBoard.

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
        write_images: with ``histogram_freq``, also write each parameter as
            images (``<name>/image``, see :func:`weight_image`; all of a
            weight's images go into one grid).
        write_steps_per_second: also log training steps per second
            (``epoch_steps_per_second``, and with batch logs
            ``batch_steps_per_second``).
        update_freq: ``"epoch"``, ``"batch"`` or an integer number of batches.
        profile_batch: must be 0 (use ``torch.profiler`` to profile), as in
            Keras on torch.
        embeddings_freq: every how many epochs to save the weights for the
            embedding projector (0: never), to
            ``log_dir/train/keras_embedding.ckpt-<epoch>.weights.pt`` (torch's
            format, see ``save_weights``). As in Keras, ``log_dir/
            projector_config.pbtxt`` then lists the model's ``nn.Embedding``
            layers, with Keras's ``tensor_name`` for each.
        embeddings_metadata: a metadata file for every embedding layer, or a
            dict from layer name (as ``named_modules()`` gives it, or its last
            part) to file; a name that is no embedding layer is a ValueError.
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
        self.embeddings_freq = check.check_int(embeddings_freq, "embeddings_freq", minimum=0,
                                               owner=owner)
        self.embeddings_metadata = _embeddings_metadata(owner, embeddings_metadata)
        if profile_batch not in (False, 0, None) or isinstance(profile_batch, (list, tuple, str)):
            raise check.argument_error(  # Keras's refusal on the torch backend
                ValueError, "profile_batch",
                "0 (profiling is not available with the torch backend)", repr(profile_batch),
                owner=owner)
        self._writers: Dict[str, Any] = {}
        self._global_train_batch = 0
        self._global_test_batch = 0
        self._training = False
        self._epoch_start_time = 0.0
        self._batch_start_time = 0.0
        self._epoch_start_batch = 0
        # Fail at construction, not at the first epoch, when tensorboard is missing.
        summary_writer_class()

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        if self.embeddings_freq:
            self._write_projector_config()

    def _write_projector_config(self) -> None:
        config = projector_config(self.model, self.embeddings_metadata)
        os.makedirs(self.log_dir, exist_ok=True)
        with open(os.path.join(self.log_dir, "projector_config.pbtxt"), "w",
                  encoding="utf-8") as handle:
            handle.write(config)

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
        self._batch_start_time = time.time()

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        step = self._global_train_batch
        if self.update_freq == "epoch" or step % self.update_freq:
            return
        if self.write_steps_per_second:
            elapsed = max(time.time() - self._batch_start_time, 1e-12)
            self._writer("train").add_scalar("batch_steps_per_second", 1.0 / elapsed,
                                             global_step=step)
        if isinstance(logs, Mapping):
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
        if self.embeddings_freq and epoch % self.embeddings_freq == 0:
            self._log_embeddings(epoch)
        for writer in self._writers.values():
            writer.flush()

    def _log_weights(self, epoch: int) -> None:
        writer = self._writer("train")
        for name, parameter in self.model.named_parameters():
            _log_histogram(writer, f"{name}/histogram", parameter, epoch)
            image = weight_image(parameter) if self.write_images else None
            if image is not None:
                writer.add_images(f"{name}/image", image, global_step=epoch, dataformats="NHWC")

    def _log_embeddings(self, epoch: int) -> None:
        path = os.path.join(self.log_dir, "train", f"keras_embedding.ckpt-{epoch}.weights.pt")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        save_weights(self.model, path)

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
