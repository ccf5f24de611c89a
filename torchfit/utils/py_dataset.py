"""``PyDataset``: a dataset of whole batches written in Python, read in parallel by ``fit``.

The interface is Keras's ``keras.utils.PyDataset``: subclass it, call
``super().__init__(**kwargs)``, implement ``__len__`` (the number of *batches*)
and ``__getitem__(index)`` (the batch at ``index``: ``(x,)``, ``(x, y)``,
``(x, y, sample_weight)`` or a dict taken as ``x``); optionally
``on_epoch_begin``/``on_epoch_end``. A dataset without ``__len__`` (or whose
``num_batches`` is ``None``) is infinite and needs ``steps_per_epoch``.

``workers``, ``use_multiprocessing`` and ``max_queue_size`` say how ``fit``,
``evaluate`` and ``predict`` read it (see ``torchfit/data/py_dataset.py``):
with ``workers > 1`` (or ``workers >= 1`` and ``use_multiprocessing=True``)
batches are fetched ahead by that many threads (or processes), at most
``max_queue_size`` ahead, and handed over in order. Iterating over the
dataset yourself (``for batch in dataset``) uses no parallelism.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any, Iterator, Optional

from ..validation import _received, is_int

__all__ = ["PyDataset"]


def _check_settings(workers: Any, use_multiprocessing: Any, max_queue_size: Any) -> None:
    if not is_int(workers) or workers < 0:
        raise ValueError(
            f"Argument `workers` must be an integer >= 0. Received: {_received(workers)}."
        )
    if not isinstance(use_multiprocessing, bool):
        raise TypeError(
            "Argument `use_multiprocessing` must be True or False. "
            f"Received: {_received(use_multiprocessing)}."
        )
    if not is_int(max_queue_size) or max_queue_size < 1:
        raise ValueError(
            f"Argument `max_queue_size` must be an integer >= 1. Received: {_received(max_queue_size)}."
        )


class PyDataset:
    """Base class for datasets that return whole batches by index.

    Args:
        workers: threads (or processes) reading batches ahead during
            ``fit``/``evaluate``/``predict``; 0 or 1 reads in the calling thread.
        use_multiprocessing: read with processes instead of threads (for
            CPU-bound Python preprocessing). The dataset is copied into each
            worker process, so it must be picklable where processes are spawned.
        max_queue_size: how many batches may be read ahead of the training step.
    """

    def __init__(self, workers: int = 1, use_multiprocessing: bool = False,
                 max_queue_size: int = 10) -> None:
        _check_settings(workers, use_multiprocessing, max_queue_size)
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self) -> None:
        defaults = {"_workers": 1, "_use_multiprocessing": False, "_max_queue_size": 10}
        if all(name in self.__dict__ for name in defaults):
            return
        for name, default in defaults.items():
            self.__dict__.setdefault(name, default)
        warnings.warn(
            f"Your `{type(self).__name__}` class should call `super().__init__(**kwargs)` "
            "in its constructor; `**kwargs` can include `workers`, `use_multiprocessing` "
            "and `max_queue_size`. Using workers=1, use_multiprocessing=False, "
            "max_queue_size=10.",
            stacklevel=3,
        )

    @property
    def workers(self) -> int:
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value: int) -> None:
        self._workers = value

    @property
    def use_multiprocessing(self) -> bool:
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        self._use_multiprocessing = value

    @property
    def max_queue_size(self) -> int:
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value: int) -> None:
        self._max_queue_size = value

    def __getitem__(self, index: int) -> Any:
        """The batch at position ``index``."""
        raise NotImplementedError(
            f"`{type(self).__name__}` must implement `__getitem__(index)` returning one batch."
        )

    @property
    def num_batches(self) -> Optional[int]:
        """Batches per epoch, or ``None`` for an infinite dataset (default: ``len(self)``)."""
        if hasattr(self, "__len__"):
            return len(self)  # type: ignore[arg-type]
        return None

    def __iter__(self) -> Iterator[Any]:
        count = self.num_batches
        indices = range(count) if count is not None else itertools.count()
        for index in indices:
            yield self[index]

    def on_epoch_begin(self) -> None:
        """Called at the start of every epoch."""

    def on_epoch_end(self) -> None:
        """Called at the end of every epoch (e.g. to reshuffle the samples)."""
