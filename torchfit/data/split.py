"""``validation_split``: the last fraction of the samples, taken before shuffling.

Supported for what can be sliced by sample: arrays, tensors, pandas objects and
lists/tuples/dicts of them, and map-style torch ``Dataset``s. Inputs that
batch themselves (DataLoaders, generators, PyDatasets, tf.data, iterable
datasets) cannot be split by sample and are refused with a ``ValueError``.
"""

from __future__ import annotations

import math
from typing import Any, Tuple

from .. import tree
from ..batch import Batch
from .arrays import ArrayDataAdapter, is_array_structure
from .pandas_data import contains_pandas, convert_pandas
from .torch_data import is_torch_dataset, split_dataset


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
    """``((x, y, sample_weight), validation_data)``: training part and the last
    ``validation_split`` of the samples, before any shuffling."""
    if is_torch_dataset(x):
        train, validation = split_dataset(x, validation_split)
        return (train, y, sample_weight), validation
    if contains_pandas(x, y, sample_weight):
        x, y, sample_weight = (convert_pandas(x, "x"), convert_pandas(y, "y"),
                               convert_pandas(sample_weight, "sample_weight"))
    if not is_array_structure(x):
        raise ValueError(
            "Argument `validation_split` is only supported for data that can be sliced "
            "by sample: NumPy arrays, tensors, pandas objects (or lists/dicts of them) "
            f"and map-style torch Datasets. Received x of type {type(x).__name__}, "
            "which yields ready batches; pass `validation_data` instead."
        )
    arrays = ArrayDataAdapter(x, y, sample_weight).arrays
    return train_validation_split(arrays, validation_split)
