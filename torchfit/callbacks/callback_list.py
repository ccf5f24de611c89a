"""``CallbackList``: dispatches every hook to a list of callbacks, in order."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from ..logs import LazyLogs, materialize
from .callback import Callback, Logs
from .history import History
from .progbar_logger import ProgbarLogger


BatchHook = Callable[[int, Logs], None]


def validate_callbacks(callbacks: Any, argument: str = "callbacks") -> List[Callback]:
    """``None``, a ``Callback`` or a list of them → a list (checked)."""
    if callbacks is None:
        return []
    if isinstance(callbacks, CallbackList):
        return list(callbacks.callbacks)
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    if not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            f"Argument `{argument}` must be a list of torchfit.callbacks.Callback "
            f"instances. Received: {type(callbacks).__name__}."
        )
    for index, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            raise TypeError(
                f"Argument `{argument}` must contain torchfit.callbacks.Callback "
                f"instances. Received {type(callback).__name__} at index {index}."
            )
    return list(callbacks)


class CallbackList(Callback):
    """A ``Callback`` that forwards each hook to its members.

    ``add_history``/``add_progbar`` add the default ``History`` and
    ``ProgbarLogger`` unless the user already passed one.
    """

    def __init__(
        self,
        callbacks: Optional[Iterable[Callback]] = None,
        add_history: bool = False,
        add_progbar: bool = False,
        model: Any = None,
        **params: Any,
    ) -> None:
        super().__init__()
        if callbacks is not None and not isinstance(callbacks, (Callback, list, tuple, dict, str, bytes)):
            try:  # any other iterable of callbacks (a generator...)
                callbacks = list(callbacks)
            except TypeError:
                pass  # validate_callbacks names the type
        self.callbacks: List[Callback] = validate_callbacks(callbacks)
        self.history: Optional[History] = next(
            (c for c in self.callbacks if isinstance(c, History)), None
        )
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in self.callbacks):
            self.callbacks.append(ProgbarLogger())
        if model is not None:
            self.set_model(model)
        if params:
            self.set_params(params)
        # Callbacks that need their siblings (BackupAndRestore backs up their state).
        for callback in list(self.callbacks):
            callback._attach_to_callback_list(self)

    def set_params(self, params: Dict[str, Any]) -> None:
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def _call(self, hook: str, *args: Any) -> None:
        if args[-1] is None:  # as Keras: hooks always receive a logs dict
            args = args[:-1] + ({},)
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def _call_batch_end(self, hook: str, batch: int, logs: Logs) -> None:
        """Batch logs computed on first read go as they are to the callbacks that
        read them during the hook, and as one computed dict to the others."""
        logs = {} if logs is None else logs
        plain = None
        for callback in self.callbacks:
            if isinstance(logs, LazyLogs) and not callback.reads_batch_logs_immediately:
                plain = materialize(logs) if plain is None else plain
                getattr(callback, hook)(batch, plain)
            else:
                getattr(callback, hook)(batch, logs)

    def batch_hooks(self, kind: str) -> Tuple[Optional[BatchHook], Optional[BatchHook]]:
        """The ``(begin, end)`` batch hooks of ``kind`` ("train", "test", "predict"),
        each ``None`` when no callback overrides it: the loop then skips the call
        (and the batch logs are never computed)."""
        begin, end = f"on_{kind}_batch_begin", f"on_{kind}_batch_end"
        aliases = ("on_batch_begin", "on_batch_end") if kind == "train" else (None, None)
        return (getattr(self, begin) if self._overridden(begin, aliases[0]) else None,
                getattr(self, end) if self._overridden(end, aliases[1]) else None)

    def _overridden(self, hook: str, alias: Optional[str]) -> bool:
        # Looked up on the instance: LambdaCallback sets its hooks per instance.
        names = [hook] + ([alias] if alias else [])
        return any(getattr(getattr(c, name), "__func__", None) is not getattr(Callback, name)
                   for c in self.callbacks for name in names)

    def on_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._call("on_train_batch_begin", batch, logs)

    def on_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._call_batch_end("on_train_batch_end", batch, logs)

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._call_batch_end("on_train_batch_end", batch, logs)

    def on_test_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._call("on_test_batch_begin", batch, logs)

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._call_batch_end("on_test_batch_end", batch, logs)

    def on_predict_batch_begin(self, batch: int, logs: Logs = None) -> None:
        self._call("on_predict_batch_begin", batch, logs)

    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._call_batch_end("on_predict_batch_end", batch, logs)

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self._call("on_epoch_end", epoch, logs)

    def on_train_begin(self, logs: Logs = None) -> None:
        self._call("on_train_begin", logs)

    def on_train_end(self, logs: Logs = None) -> None:
        self._call("on_train_end", logs)

    def on_test_begin(self, logs: Logs = None) -> None:
        self._call("on_test_begin", logs)

    def on_test_end(self, logs: Logs = None) -> None:
        self._call("on_test_end", logs)

    def on_predict_begin(self, logs: Logs = None) -> None:
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs: Logs = None) -> None:
        self._call("on_predict_end", logs)
