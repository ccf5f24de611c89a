"""``validation_split``: the last fraction of the samples, taken before shuffling."""

from __future__ import annotations

import math
from typing import Any, Tuple

from .. import tree
from .adapter import Batch
from .arrays import ArrayDataAdapter, is_array_structure


def train_validation_split(arrays: Batch, validation_split: float) -> Tuple[Batch, Batch]:
    """Split ``(x, y, sample_weight)`` tensors into train and validation parts."""
    first = tree.first_leaf(arrays)
    total = int(first.shape[0])
    split_at = int(math.floor(total * (1.0 - validation_split)))
    if split_at == 0 or split_at == total:
        raise ValueError(
            f"Argument `validation_split={validation_split}` leaves an empty "
            f"training or validation set: the data has {total} samples. "
            "Expected enough samples for both parts; provide more data or "
            "another `validation_split`."
        )

    def part(start: int, end: int) -> Any:
        return tree.map_structure(lambda t: None if t is None else t[start:end], arrays)

    return part(0, split_at), part(split_at, total)


def split_for_validation(x: Any, y: Any, sample_weight: Any, validation_split: float) -> tuple:
    """The last ``validation_split`` of array inputs, before any shuffling."""
    if not is_array_structure(x):
        raise ValueError(
            "Argument `validation_split` is only supported for arrays and tensors; "
            f"received x of type {type(x).__name__}. Expected NumPy arrays or tensors, "
            "or pass `validation_data` instead."
        )
    arrays = ArrayDataAdapter(x, y, sample_weight).arrays
    return train_validation_split(arrays, validation_split)
