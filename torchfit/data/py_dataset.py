"""``torchfit.utils.PyDataset`` inputs, read by worker threads or processes.

Batch ``i`` of an epoch is ``dataset[order[i]]`` where ``order`` is
``range(num_batches)``, shuffled per pass when ``shuffle`` is set (infinite
datasets are read in index order, ``0, 1, 2, ...``). With
``dataset.workers > 1`` (or ``>= 1`` with ``use_multiprocessing``) an
:class:`OrderedPrefetcher` keeps up to ``max_queue_size`` reads in flight on a
pool of that many threads or processes and yields the results in order, so
the batches, and the training, are the same as without workers.

``keras.utils.PyDataset`` objects have the same interface and are accepted too.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import multiprocessing
import warnings
from typing import Any, Callable, Iterable, Iterator, Optional

import torch

from ..utils.py_dataset import PyDataset
from ..batch import Batch, unpack_x_y_sample_weight
from .adapter import DataAdapter, to_tensors


def is_py_dataset(value: Any) -> bool:
    """A ``torchfit.utils.PyDataset`` (or a ``keras.utils.PyDataset``)."""
    if isinstance(value, PyDataset):
        return True
    return any(cls.__name__ == "PyDataset" and cls.__module__.split(".")[0] == "keras"
               for cls in type(value).__mro__)


def standardize_batch(batch: Any) -> Batch:
    """``__getitem__``'s result as ``(x, y, sample_weight)``; a dict or a single
    array/tensor is ``x`` alone."""
    if isinstance(batch, (dict, torch.Tensor)) or hasattr(batch, "__array__"):
        return batch, None, None
    if isinstance(batch, (tuple, list)) and 1 <= len(batch) <= 3:
        return unpack_x_y_sample_weight(batch)
    text = repr(batch)
    raise ValueError(
        "PyDataset.__getitem__() must return a batch: a tuple (x,), (x, y) or "
        "(x, y, sample_weight), a dict (taken as x) or a single array. Received: "
        f"{text[:80] + '...' if len(text) > 80 else text} (type {type(batch).__name__})."
    )


# ------------------------------------------------------------------ workers
_WORKER_DATASET: Any = None


def _init_worker(dataset: Any) -> None:
    """Runs once in each worker process: keep the dataset, use one CPU thread."""
    global _WORKER_DATASET
    _WORKER_DATASET = dataset
    torch.set_num_threads(1)


def _read_in_worker(index: int) -> Any:
    return _WORKER_DATASET[index]


class OrderedPrefetcher:
    """Reads ``dataset[i]`` for ``i`` in ``indices`` on a pool, yields results in order.

    At most ``max_queue_size`` reads are in flight (submitted, not yet handed
    over). The pool lives as long as one pass: it is shut down when the pass
    ends, is abandoned (the generator is closed or collected), or fails; an
    exception raised in a worker is raised again in the calling thread.
    """

    def __init__(self, dataset: Any, workers: int, use_multiprocessing: bool,
                 max_queue_size: int) -> None:
        self.dataset = dataset
        self.workers = max(1, int(workers))
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max(1, int(max_queue_size))

    def _executor(self) -> concurrent.futures.Executor:
        if not self.use_multiprocessing:
            return concurrent.futures.ThreadPoolExecutor(
                self.workers, thread_name_prefix="torchfit_pydataset")
        # The dataset is copied into each process once per pass, so changes
        # made by on_epoch_end() are seen by the next pass.
        return concurrent.futures.ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context(),
            initializer=_init_worker, initargs=(self.dataset,))

    def iterate(self, indices: Iterable[int]) -> Iterator[Any]:
        executor = self._executor()
        read: Callable[[int], Any] = (_read_in_worker if self.use_multiprocessing
                                      else self.dataset.__getitem__)
        pending: collections.deque = collections.deque()
        indices = iter(indices)
        try:
            for index in itertools.islice(indices, self.max_queue_size):
                pending.append(executor.submit(read, index))
            while pending:
                batch = pending.popleft().result()
                for index in itertools.islice(indices, 1):
                    pending.append(executor.submit(read, index))
                yield batch
        finally:
            for future in pending:
                future.cancel()
            executor.shutdown(wait=True, cancel_futures=True)


class PyDatasetAdapter(DataAdapter):
    """Batches of a ``PyDataset``, by index, optionally read ahead by workers."""

    def __init__(self, dataset: Any, shuffle: Any = False) -> None:
        self.dataset = dataset
        self._shuffle = bool(shuffle)
        workers = dataset.workers
        use_multiprocessing = dataset.use_multiprocessing
        self._prefetcher: Optional[OrderedPrefetcher] = None
        if workers > 1 or (workers > 0 and use_multiprocessing):
            self._prefetcher = OrderedPrefetcher(dataset, workers, use_multiprocessing,
                                                 dataset.max_queue_size)
        if shuffle and self.num_batches is None:
            warnings.warn(
                "`shuffle=True` was passed, but will be ignored since the data `x` "
                "was provided as an infinite PyDataset. The PyDataset is expected "
                "to already be shuffled.",
                stacklevel=6,  # the user's fit() call
            )

    @property
    def num_batches(self) -> Optional[int]:
        return self.dataset.num_batches

    def _indices(self) -> Iterable[int]:
        count = self.num_batches
        if count is None:
            return itertools.count()
        if self._shuffle:
            return torch.randperm(count).tolist()
        return range(count)

    def get_iterator(self) -> Iterator[Batch]:
        indices = self._indices()
        if self._prefetcher is None:
            batches: Iterator[Any] = (self.dataset[i] for i in indices)
        else:
            batches = self._prefetcher.iterate(indices)
        for batch in batches:
            yield to_tensors(standardize_batch(batch))

    def on_epoch_begin(self) -> None:
        self.dataset.on_epoch_begin()

    def on_epoch_end(self) -> None:
        self.dataset.on_epoch_end()
