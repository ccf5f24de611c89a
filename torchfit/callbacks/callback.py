"""The ``Callback`` base class: Keras's hooks, called by the training loop."""

from __future__ import annotations

from typing import Any, Dict, Optional

Logs = Optional[Dict[str, Any]]


class Callback:
    """Base class for objects that hook into ``fit``, ``evaluate`` and ``predict``.

    Subclasses may override any of the ``on_*`` methods, and may set the
    capability attributes below (``reads_batch_logs_immediately``,
    ``main_process_only``, ``gathers_fsdp_state``). ``self.model`` is the
    module being trained and ``self.params`` holds ``verbose``, ``epochs`` and
    ``steps``. Batch-level ``logs`` may hold 0-d tensors (converting them is
    left to the callbacks that need numbers, so training never waits on the
    device for callbacks that don't); epoch-level logs hold Python floats.
    """

    #: True for callbacks that read a batch hook's ``logs`` only while the hook
    #: runs and never keep the mapping: they may be handed batch logs whose
    #: values are computed on first read (:class:`torchfit.logs.LazyLogs`),
    #: which costs nothing on batches where they don't look. Others get a dict.
    reads_batch_logs_immediately: bool = False

    #: True for callbacks that only write files or reports (CSV, TensorBoard,
    #: checkpoints, remote posts): in a distributed run they run on rank 0
    #: only, so the processes don't write the same file at once.
    main_process_only: bool = False

    #: True for callbacks whose saves gather an FSDP-sharded model's full state:
    #: every process runs them (each holds a shard) and all must pass the same
    #: ones, even though ``main_process_only`` keeps other callbacks on rank 0.
    gathers_fsdp_state: bool = False

    def _attach_to_callback_list(self, callback_list: Any) -> None:
        """Called once by the ``CallbackList`` that holds this callback, after
        all its members are set up. Override to reach sibling callbacks
        (``BackupAndRestore`` backs up their state); the default does nothing."""

    def __init__(self) -> None:
        self.params: Dict[str, Any] = {}
        self._model: Any = None

    def set_params(self, params: Dict[str, Any]) -> None:
        self.params = params

    def set_model(self, model: Any) -> None:
        self._model = model

    @property
    def model(self) -> Any:
        return self._model

    # Batch hooks (``on_batch_*`` are the train-batch aliases, as in Keras).
    def on_batch_begin(self, batch: int, logs: Logs = None) -> None: ...
    def on_batch_end(self, batch: int, logs: Logs = None) -> None: ...

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: Logs = None) -> None: ...
    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None: ...
    def on_predict_batch_begin(self, batch: int, logs: Logs = None) -> None: ...
    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None: ...

    def on_train_begin(self, logs: Logs = None) -> None: ...
    def on_train_end(self, logs: Logs = None) -> None: ...
    def on_test_begin(self, logs: Logs = None) -> None: ...
    def on_test_end(self, logs: Logs = None) -> None: ...
    def on_predict_begin(self, logs: Logs = None) -> None: ...
    def on_predict_end(self, logs: Logs = None) -> None: ...
