"""``tf.data.Dataset`` inputs (TensorFlow is optional and never imported here).

The dataset is iterated eagerly as it is (its batching, shuffling and
repetition are the user's); each element becomes NumPy-backed CPU tensors and
is unpacked with Keras's rules: ``(x,)``, ``(x, y)``, ``(x, y, sample_weight)``,
a dict alone is ``x``. Its length is ``dataset.cardinality()`` when finite.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np
import torch

from .. import tree
from ..batch import Batch, unpack_x_y_sample_weight
from .adapter import DataAdapter

_TF_DATASET_CLASSES = ("DatasetV2", "DistributedDataset", "DistributedDatasetsFromFunction")


def is_tf_dataset(value: Any) -> bool:
    """A ``tf.data.Dataset``, recognised by its class without importing TensorFlow."""
    return any(cls.__name__ in _TF_DATASET_CLASSES and "tensorflow.python." in str(cls.__module__)
               for cls in type(value).__mro__)


def _to_torch(value: Any) -> Any:
    """Every leaf of one dataset element as a CPU tensor (``None`` stays)."""
    return tree.map_structure(_leaf_to_torch, value)


def _leaf_to_torch(value: Any) -> Any:
    if value is None:
        return None
    array = value.numpy() if hasattr(value, "numpy") else np.asarray(value)
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind in "USV":
        raise TypeError(
            "Argument `x` (a tf.data.Dataset) must yield numeric tensors. "
            f"Received an element of dtype {array.dtype}."
        )
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(np.ascontiguousarray(array))


class TFDatasetAdapter(DataAdapter):
    """Reads a ``tf.data.Dataset`` element by element (each element is one batch)."""

    def __init__(self, dataset: Any) -> None:
        self._dataset = dataset

    @property
    def num_batches(self) -> Optional[int]:
        try:
            cardinality = int(self._dataset.cardinality())
        except Exception:  # noqa: BLE001 - distributed datasets have no cardinality
            return None
        return cardinality if cardinality >= 0 else None  # -1 infinite, -2 unknown

    def get_iterator(self) -> Iterator[Batch]:
        for element in self._dataset:
            if tree.is_namedtuple(element):
                unpack_x_y_sample_weight(element)  # raises: namedtuples are ambiguous
            yield unpack_x_y_sample_weight(_to_torch(element))
