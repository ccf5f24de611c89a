"""``torch.utils.data.DataLoader`` and bare ``Dataset`` inputs.

A ``DataLoader`` is read as it is: its batches, its order, its workers; each
batch is unpacked with Keras's rules (``(x,)``, ``(x, y)``,
``(x, y, sample_weight)``; a dict alone is ``x``), so datasets yielding dicts
or nested tuples give nested ``x``/``y``/``sample_weight``. A bare ``Dataset``
has no batching of its own: ``fit`` batches it with ``batch_size`` (32 by
default) and shuffles map-style datasets when ``shuffle`` is set.
``TensorDataset``s are sliced in whole batches like arrays (no per-sample
indexing); other map-style datasets go through a ``DataLoader``.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, List, Optional, Tuple

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler, Subset, TensorDataset

from ..batch import Batch, unpack_x_y_sample_weight
from .adapter import DataAdapter
from .arrays import ArrayDataAdapter


def is_torch_dataset(value: Any) -> bool:
    return isinstance(value, Dataset) and not isinstance(value, torch.Tensor)


def is_map_style(dataset: Any) -> bool:
    """Map-style datasets have ``__len__`` and ``__getitem__``; iterable ones do not."""
    if isinstance(dataset, IterableDataset):
        return False
    try:
        len(dataset)
    except TypeError:
        return False
    return True


def _loader_length(loader: DataLoader) -> Optional[int]:
    try:
        return len(loader)
    except TypeError:  # iterable datasets without __len__
        return None


class TorchDataLoaderAdapter(DataAdapter):
    """Reads batches from a user's ``DataLoader`` as they come (map-style or iterable)."""

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader

    @property
    def loader(self) -> DataLoader:
        return self._loader

    @property
    def num_batches(self) -> Optional[int]:
        return _loader_length(self._loader)

    @property
    def num_samples(self) -> Optional[int]:
        try:
            return len(self._loader.dataset)  # type: ignore[arg-type]
        except TypeError:
            return None

    @property
    def batch_size(self) -> Optional[int]:
        return self._loader.batch_size

    def get_iterator(self) -> Iterator[Batch]:
        for batch in self._loader:
            yield unpack_x_y_sample_weight(batch)


class ChunkShuffleSampler(Sampler):
    """Batches of consecutive indices, each shuffled inside (Keras's ``shuffle="batch"``)."""

    def __init__(self, size: int, batch_size: int) -> None:
        self.size, self.batch_size = size, batch_size

    def __len__(self) -> int:
        return math.ceil(self.size / self.batch_size)

    def __iter__(self) -> Iterator[List[int]]:
        for start in range(0, self.size, self.batch_size):
            stop = min(start + self.batch_size, self.size)
            yield (torch.randperm(stop - start) + start).tolist()


def tensor_dataset_adapter(dataset: TensorDataset, batch_size: Optional[int],
                           steps: Optional[int], shuffle: Any) -> ArrayDataAdapter:
    """A ``TensorDataset`` of 1, 2 or 3 tensors is ``(x,)``/``(x, y)``/``(x, y, sw)`` arrays."""
    x, y, sample_weight = unpack_x_y_sample_weight(tuple(dataset.tensors))
    return ArrayDataAdapter(x, y, sample_weight, batch_size, steps, shuffle)


def dataset_loader(dataset: Dataset, batch_size: Optional[int], shuffle: Any) -> DataLoader:
    """Batch a bare ``Dataset`` the way ``fit`` batches arrays."""
    batch_size = batch_size or 32
    if not is_map_style(dataset):
        return DataLoader(dataset, batch_size=batch_size)
    if shuffle == "batch":
        return DataLoader(dataset, batch_sampler=ChunkShuffleSampler(len(dataset), batch_size))
    return DataLoader(dataset, batch_size=batch_size, shuffle=bool(shuffle))


def dataset_adapter(dataset: Dataset, batch_size: Optional[int], steps: Optional[int],
                    shuffle: Any) -> DataAdapter:
    """The adapter for a bare ``Dataset``: whole-batch slicing where possible."""
    if isinstance(dataset, TensorDataset) and 1 <= len(dataset.tensors) <= 3:
        return tensor_dataset_adapter(dataset, batch_size, steps, shuffle)
    if batch_size is None and steps and is_map_style(dataset):
        batch_size = math.ceil(len(dataset) / steps)  # as for arrays
    return TorchDataLoaderAdapter(dataset_loader(dataset, batch_size, shuffle))


def split_dataset(dataset: Dataset, validation_split: float, argument: str = "x") -> Tuple[Dataset, Dataset]:
    """The last ``validation_split`` of a map-style dataset, before shuffling."""
    if not is_map_style(dataset):
        raise ValueError(
            "Argument `validation_split` needs data it can slice: arrays, tensors, "
            "dicts of them, or a map-style torch Dataset (with __len__ and "
            f"__getitem__). Received `{argument}` of type {type(dataset).__name__}, an "
            "iterable dataset; pass `validation_data` instead."
        )
    total = len(dataset)
    split_at = int(math.floor(total * (1.0 - validation_split)))
    if split_at == 0 or split_at == total:
        raise ValueError(
            f"Argument `validation_split={validation_split}` leaves an empty "
            f"training or validation set: the data has {total} samples. "
            "Expected enough samples for both parts; provide more data or "
            "another `validation_split`."
        )
    if isinstance(dataset, TensorDataset):  # views, still sliced in whole batches
        return (TensorDataset(*(t[:split_at] for t in dataset.tensors)),
                TensorDataset(*(t[split_at:] for t in dataset.tensors)))
    return Subset(dataset, range(split_at)), Subset(dataset, range(split_at, total))
