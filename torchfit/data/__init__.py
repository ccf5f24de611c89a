"""Input adapters: every input type behind one interface (see ``adapter.py``).

``get_adapter`` picks the adapter for what the user passed as ``x``:

==============================================  ==========================  ===============
input                                           adapter (file)              batching
==============================================  ==========================  ===============
arrays, tensors, lists/tuples/dicts of them     ``ArrayDataAdapter``        ``batch_size``
pandas ``DataFrame`` / ``Series``               ``PandasDataAdapter``       ``batch_size``
``torch.utils.data.DataLoader``                 ``TorchDataLoaderAdapter``  the loader's
bare torch ``Dataset`` (map-style or iterable)  ``dataset_adapter``         ``batch_size``
``torchfit.utils.PyDataset``                    ``PyDatasetAdapter``        the dataset's
``tf.data.Dataset``                             ``TFDatasetAdapter``        the dataset's
Python generators and iterators                 ``GeneratorDataAdapter``    the generator's
==============================================  ==========================  ===============

``class_weight`` becomes per-sample weights for every input type (up front for
arrays, batch by batch otherwise: ``ClassWeighted``), and batches are handed
over in pinned memory when the model is on a CUDA device (``PinnedBatches``).
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, Optional

import torch
from torch.utils.data import DataLoader

from ..batch import Batch, pack_x_y_sample_weight, unpack_x_y_sample_weight
from .adapter import DataAdapter, PinnedBatches, WrappedAdapter
from .arrays import ArrayDataAdapter, is_array_structure
from .epoch_iterator import EpochIterator
from .generator import GeneratorDataAdapter, is_iterator_input
from .pandas_data import PandasDataAdapter, contains_pandas, convert_pandas
from .py_dataset import PyDatasetAdapter, is_py_dataset
from .split import split_for_validation, train_validation_split
from .tf_data import TFDatasetAdapter, is_tf_dataset
from .torch_data import (TorchDataLoaderAdapter, dataset_adapter, dataset_loader, is_map_style,
                         is_torch_dataset)
from .weights import ClassWeighted, class_weight_to_sample_weight, validate_class_weight
from ..validation import check_int, check_shuffle

__all__ = [
    "ArrayDataAdapter",
    "Batch",
    "ClassWeighted",
    "DataAdapter",
    "EpochIterator",
    "GeneratorDataAdapter",
    "PandasDataAdapter",
    "PinnedBatches",
    "PyDatasetAdapter",
    "TFDatasetAdapter",
    "TorchDataLoaderAdapter",
    "WrappedAdapter",
    "get_adapter",
    "get_validation_adapter",
    "is_batched_input",
    "split_for_validation",
    "train_validation_split",
    "pack_x_y_sample_weight",
    "unpack_x_y_sample_weight",
]

NAMES = {"x": "x", "y": "y", "sample_weight": "sample_weight", "batch_size": "batch_size"}


def is_batched_input(x: Any) -> bool:
    """Inputs that already yield batches (y and batch_size must not be given)."""
    return (isinstance(x, (DataLoader, DataAdapter)) or is_py_dataset(x) or is_tf_dataset(x)
            or is_iterator_input(x))


def describe(x: Any) -> str:
    """What kind of input ``x`` is, with its article, for messages ("a DataLoader")."""
    if isinstance(x, DataLoader):
        return "a DataLoader"
    if is_py_dataset(x):
        return "a PyDataset"
    if is_tf_dataset(x):
        return "a tf.data.Dataset"
    if is_torch_dataset(x):
        return "a torch Dataset"
    if is_iterator_input(x):
        return "a generator" if type(x).__name__ == "generator" else f"an iterator ({type(x).__name__})"
    return f"a {type(x).__name__}"


def _reject_extra_arguments(x: Any, names: Dict[str, str], **given: Any) -> None:
    kind = describe(x)
    for key, value in given.items():
        if value is not None:
            name = names[key]
            raise ValueError(
                f"Argument `{name}` must be None when `{names['x']}` is {kind}: the "
                f"batches come from `{names['x']}` itself (as (x, y) or (x, y, "
                f"sample_weight) tuples). Received: {name} of type {type(value).__name__}."
            )


def _warn_shuffle_ignored(x: Any, shuffle: Any) -> None:
    """Keras's warning: inputs that yield ready batches keep their own order."""
    if shuffle:
        warnings.warn(
            f"`shuffle={shuffle!r}` was passed, but will be ignored since the data `x` "
            f"was provided as {describe(x)}, which yields batches in its own order "
            "(shuffle at the source, e.g. DataLoader(..., shuffle=True)); pass "
            "shuffle=False to silence this warning.",
            UserWarning,
            stacklevel=6,  # the user's fit() call
        )


def _batched_adapter(x: Any, y: Any, sample_weight: Any, batch_size: Any, steps: Any,
                     shuffle: Any, names: Dict[str, str]) -> DataAdapter:
    """Adapters for inputs that are not arrays."""
    if isinstance(x, DataAdapter):
        _reject_extra_arguments(x, names, y=y, sample_weight=sample_weight, batch_size=batch_size)
        return x
    if is_torch_dataset(x):
        # A bare Dataset has no batching of its own: batch_size applies.
        _reject_extra_arguments(x, names, y=y, sample_weight=sample_weight)
        if not is_map_style(x):
            _warn_shuffle_ignored(x, shuffle)
        return dataset_adapter(x, batch_size, steps, shuffle)
    _reject_extra_arguments(x, names, y=y, sample_weight=sample_weight, batch_size=batch_size)
    if isinstance(x, DataLoader):
        _warn_shuffle_ignored(x, shuffle)
        return TorchDataLoaderAdapter(x)
    if is_py_dataset(x):
        return PyDatasetAdapter(x, shuffle)
    if is_tf_dataset(x):
        _warn_shuffle_ignored(x, shuffle)
        return TFDatasetAdapter(x)
    _warn_shuffle_ignored(x, shuffle)
    return GeneratorDataAdapter(x, names["x"])


def get_adapter(
    x: Any,
    y: Any = None,
    sample_weight: Any = None,
    batch_size: Optional[int] = None,
    steps: Optional[int] = None,
    shuffle: bool | str = False,
    class_weight: Any = None,
    *,
    device: Optional[torch.device] = None,
    names: Optional[Dict[str, str]] = None,
    check_arguments: bool = True,
) -> DataAdapter:
    """The adapter for ``x`` (see the table above), with ``class_weight`` applied.

    ``device`` is where the model lives: batches come in pinned memory when it
    is a CUDA device. ``names`` renames the arguments in error messages (used
    for ``validation_data``). ``check_arguments=False`` is for callers that
    checked ``batch_size``, ``steps``, ``shuffle`` and ``class_weight`` already
    (the loop: ``fit``/``evaluate``/``predict`` check them), so that each is
    checked once; the data itself is always checked here.
    """
    names = {**NAMES, **(names or {})}
    if check_arguments:
        check_int(batch_size, names["batch_size"], allow_none=True)
        check_int(steps, names.get("steps", "steps"), allow_none=True)
        check_shuffle(shuffle)
        validate_class_weight(class_weight)
    if class_weight is not None and sample_weight is not None:
        raise ValueError(
            f"Arguments `{names['sample_weight']}` and `class_weight` cannot be given "
            "together. Expected one of them, received both."
        )
    from_pandas = contains_pandas(x, y, sample_weight)
    if from_pandas:
        x, y, sample_weight = (convert_pandas(x, names["x"]), convert_pandas(y, names["y"]),
                               convert_pandas(sample_weight, names["sample_weight"]))
    if is_array_structure(x):
        if y is not None and not is_array_structure(y):
            raise TypeError(
                f"Argument `{names['y']}` must be a NumPy array, a torch tensor or a "
                f"list/tuple/dict of them when `{names['x']}` is an array. Received: "
                f"{type(y).__name__}."
            )
        if class_weight is not None:
            if y is None:
                raise ValueError(
                    f"Argument `class_weight` needs targets `{names['y']}`. Received "
                    f"{names['y']}=None.")
            sample_weight = class_weight_to_sample_weight(y, class_weight)
            class_weight = None
        array_adapter = PandasDataAdapter if from_pandas else ArrayDataAdapter
        adapter: DataAdapter = array_adapter(x, y, sample_weight, batch_size, steps, shuffle,
                                             names=names)
    elif (is_batched_input(x) or is_torch_dataset(x)):
        adapter = _batched_adapter(x, y, sample_weight, batch_size, steps, shuffle, names)
    else:
        raise TypeError(
            f"Argument `{names['x']}` must be a NumPy array, a torch tensor, a pandas "
            "DataFrame/Series, a list/tuple/dict of them, a torch DataLoader or Dataset, "
            "a torchfit.utils.PyDataset, a tf.data.Dataset, or a generator of batches. "
            f"Received: {type(x).__name__}."
        )
    if adapter.num_batches == 0:
        raise ValueError(
            f"Argument `{names['x']}` holds no batches: expected at least one sample, "
            f"received {describe(x)} of length 0."
        )
    if class_weight:
        adapter = ClassWeighted(adapter, class_weight)
    if device is not None and torch.device(device).type == "cuda":
        adapter = PinnedBatches(adapter)
    return adapter


def get_validation_adapter(
    validation_data: Any,
    batch_size: Optional[int],
    validation_batch_size: Optional[int],
    validation_steps: Optional[int],
    *,
    device: Optional[torch.device] = None,
    check_arguments: bool = True,
) -> DataAdapter:
    """The adapter for ``fit``'s ``validation_data`` (never shuffled or class-weighted).

    ``validation_data`` is ``(x, y)``, ``(x, y, sample_weight)``, or an input
    that yields batches itself. ``validation_batch_size`` (else ``batch_size``)
    batches array-like data; given explicitly for data that batches itself it
    is an error, while the training ``batch_size`` is simply not used there.
    ``check_arguments`` as for :func:`get_adapter` (``fit`` checks the sizes).
    """
    if isinstance(validation_data, (tuple, list)):
        if len(validation_data) not in (2, 3):
            raise ValueError(
                "Argument `validation_data` must be (x_val, y_val) or (x_val, y_val, "
                f"val_sample_weight). Received a {type(validation_data).__name__} "
                f"of length {len(validation_data)}."
            )
        x, y, sample_weight = unpack_x_y_sample_weight(tuple(validation_data))
        names = {"x": "validation_data[0]", "y": "validation_data[1]",
                 "sample_weight": "validation_data[2]"}
    else:
        x, y, sample_weight = validation_data, None, None
        names = {"x": "validation_data"}
    names.update(batch_size="validation_batch_size", steps="validation_steps")
    if check_arguments:
        check_int(batch_size, "batch_size", allow_none=True)
        check_int(validation_batch_size, names["batch_size"], allow_none=True)
        check_int(validation_steps, names["steps"], allow_none=True)
    size = validation_batch_size
    if size is None and not is_batched_input(x):
        size = batch_size
    return get_adapter(x, y, sample_weight, size, validation_steps, False,
                       device=device, names=names, check_arguments=False)
