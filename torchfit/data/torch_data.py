"""``torch.utils.data.DataLoader`` and bare ``Dataset`` inputs."""

from __future__ import annotations

from typing import Any, Iterator, Optional

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from .adapter import Batch, DataAdapter, unpack_x_y_sample_weight


def _loader_length(loader: DataLoader) -> Optional[int]:
    try:
        return len(loader)
    except TypeError:  # iterable datasets without __len__
        return None


class TorchDataLoaderAdapter(DataAdapter):
    """Reads batches from a user's ``DataLoader`` as they come."""

    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader

    @property
    def num_batches(self) -> Optional[int]:
        return _loader_length(self._loader)

    @property
    def num_samples(self) -> Optional[int]:
        try:
            return len(self._loader.dataset)  # type: ignore[arg-type]
        except TypeError:
            return None

    def get_iterator(self) -> Iterator[Batch]:
        for batch in self._loader:
            yield unpack_x_y_sample_weight(batch)


def dataset_loader(dataset: Dataset, batch_size: Optional[int], shuffle: bool) -> DataLoader:
    """Batch a bare ``Dataset`` the way ``fit`` batches arrays."""
    iterable = isinstance(dataset, IterableDataset)
    return DataLoader(
        dataset,
        batch_size=batch_size or 32,
        shuffle=bool(shuffle) and not iterable,
    )


def is_torch_dataset(value: Any) -> bool:
    return isinstance(value, Dataset) and not isinstance(value, torch.Tensor)
