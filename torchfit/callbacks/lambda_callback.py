"""``LambdaCallback``: a callback built from plain functions."""

from __future__ import annotations

from typing import Any, Callable, Optional

from .. import validation as check
from .callback import Callback

_HOOKS = (
    "on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end",
    "on_train_batch_begin", "on_train_batch_end",
)

_OTHER_HOOKS = (
    "on_batch_begin", "on_batch_end", "on_test_begin", "on_test_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
    "on_predict_batch_begin", "on_predict_batch_end",
)


class LambdaCallback(Callback):
    """Run the given functions at the matching hooks.

    Each function takes the hook's arguments: ``on_epoch_*(epoch, logs)``,
    ``on_train_*(logs)``, ``on_*_batch_*(batch, logs)``. The six arguments
    below are named; the other hooks (``on_test_begin``, ``on_predict_end``,
    ...) may be given as keyword arguments too. Other keyword arguments
    become attributes, as in Keras.
    """

    def __init__(
        self,
        on_epoch_begin: Optional[Callable[..., Any]] = None,
        on_epoch_end: Optional[Callable[..., Any]] = None,
        on_train_begin: Optional[Callable[..., Any]] = None,
        on_train_end: Optional[Callable[..., Any]] = None,
        on_train_batch_begin: Optional[Callable[..., Any]] = None,
        on_train_batch_end: Optional[Callable[..., Any]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        given = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end)
        for name in _OTHER_HOOKS:
            if name in kwargs:
                given[name] = kwargs.pop(name)
        for name, fn in given.items():
            check.check_callable(fn, name, owner=owner)
            if fn is not None:
                setattr(self, name, fn)
        self.__dict__.update(kwargs)
