"""Input adapters: every input type behind one interface (see ``adapter.py``)."""

from __future__ import annotations

from typing import Any, Optional

from torch.utils.data import DataLoader

from .adapter import Batch, DataAdapter, unpack_x_y_sample_weight
from .arrays import ArrayDataAdapter, is_array_structure
from .epoch_iterator import EpochIterator
from .generator import GeneratorDataAdapter, is_iterator_input
from .split import split_for_validation, train_validation_split
from .torch_data import TorchDataLoaderAdapter, dataset_loader, is_torch_dataset
from .weights import class_weight_to_sample_weight, validate_class_weight

__all__ = [
    "Batch",
    "DataAdapter",
    "EpochIterator",
    "get_adapter",
    "is_batched_input",
    "split_for_validation",
    "train_validation_split",
    "unpack_x_y_sample_weight",
]


def is_batched_input(x: Any) -> bool:
    """Inputs that already yield batches (y and batch_size must not be given)."""
    return isinstance(x, DataLoader) or is_iterator_input(x)


def _reject_extra_arguments(x: Any, y: Any, sample_weight: Any, batch_size: Any) -> None:
    kind = type(x).__name__
    for name, value in (("y", y), ("sample_weight", sample_weight), ("batch_size", batch_size)):
        if value is not None:
            raise ValueError(
                f"Argument `{name}` must be None when `x` is a {kind}: the batches "
                f"come from `x` itself (as (x, y) or (x, y, sample_weight) tuples). "
                f"Received: {name} of type {type(value).__name__}."
            )


def get_adapter(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    batch_size: Optional[int] = None,
    steps: Optional[int] = None,
    shuffle: bool | str = False,
    class_weight: Any = None,
) -> DataAdapter:
    """Pick the adapter for ``x`` and apply ``class_weight``."""
    validate_class_weight(class_weight)
    if class_weight is not None and sample_weight is not None:
        raise ValueError(
            "Arguments `sample_weight` and `class_weight` cannot be given together. "
            "Expected one of them, received both."
        )
    if is_batched_input(x) or is_torch_dataset(x):
        if is_torch_dataset(x):
            _reject_extra_arguments(x, y, sample_weight, None)
            adapter: DataAdapter = TorchDataLoaderAdapter(dataset_loader(x, batch_size, shuffle))
        else:
            _reject_extra_arguments(x, y, sample_weight, batch_size)
            adapter = (
                TorchDataLoaderAdapter(x) if isinstance(x, DataLoader) else GeneratorDataAdapter(x)
            )
        return ClassWeighted(adapter, class_weight) if class_weight else adapter
    if not is_array_structure(x):
        raise TypeError(
            "Argument `x` must be a NumPy array, a torch tensor, a list/tuple/dict "
            "of them, a torch DataLoader or Dataset, or a generator of batches. "
            f"Received: {type(x).__name__}."
        )
    if y is not None and not is_array_structure(y):
        raise TypeError(
            "Argument `y` must be a NumPy array, a torch tensor or a list/tuple/dict "
            f"of them when `x` is an array. Received: {type(y).__name__}."
        )
    if class_weight is not None:
        if y is None:
            raise ValueError("Argument `class_weight` needs targets `y`. Received y=None.")
        sample_weight = class_weight_to_sample_weight(y, class_weight)
    return ArrayDataAdapter(x, y, sample_weight, batch_size, steps, shuffle)


class ClassWeighted(DataAdapter):
    """Turns ``class_weight`` into the third batch element on the fly."""

    def __init__(self, inner: DataAdapter, class_weight: Any) -> None:
        self._inner = inner
        self._class_weight = class_weight

    @property
    def num_batches(self) -> Optional[int]:
        return self._inner.num_batches

    def on_epoch_begin(self) -> None:
        self._inner.on_epoch_begin()

    def on_epoch_end(self) -> None:
        self._inner.on_epoch_end()

    def get_iterator(self):
        for x, y, sample_weight in self._inner.get_iterator():
            if sample_weight is not None:
                raise ValueError(
                    "Argument `class_weight` cannot be combined with batches that "
                    "already carry sample weights. Received a 3-element batch."
                )
            yield x, y, class_weight_to_sample_weight(y, self._class_weight)
