"""The one interface every input type is read through.

An adapter turns what the user passed to ``fit``/``evaluate``/``predict`` into
an iterable of ``(x, y, sample_weight)`` batches of CPU tensors (``y`` and
``sample_weight`` may be ``None``). Moving a batch to the model's device is
the loop's job (``loop.move_to``, non-blocking on CUDA); when the target is a
CUDA device, adapters hand over batches in pinned (page-locked) memory so that
copy can overlap with compute (see :class:`PinnedBatches`).
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Tuple

import numpy as np
import torch

Batch = Tuple[Any, Any, Any]


class DataAdapter:
    """Base class: one subclass per input type.

    Subclasses must provide :meth:`get_iterator` (batches of ``(x, y,
    sample_weight)``) and :attr:`num_batches`. They may provide
    :attr:`num_samples`, :attr:`batch_size`, :attr:`sliced_from`,
    :meth:`exhausted` and the ``on_epoch_begin``/``on_epoch_end`` hooks; the
    defaults suit an input of unknown size. ``get_iterator`` must return a
    *fresh* pass over the data for re-iterable inputs (arrays, datasets,
    loaders), which is how validation restarts at the start of the data every
    epoch; one-shot inputs (generators) continue where they stopped.
    """

    #: Whether ``validation_split`` can slice this input.
    can_split = False

    @property
    def num_batches(self) -> Optional[int]:
        """Batches in one pass over the data, or ``None`` when unknown."""
        raise NotImplementedError

    @property
    def num_samples(self) -> Optional[int]:
        """Samples in one pass, or ``None`` when unknown."""
        return None

    @property
    def batch_size(self) -> Optional[int]:
        """Samples per batch when the adapter batches (or knows it), else ``None``."""
        return None

    def get_iterator(self) -> Iterator[Batch]:
        """A fresh iterator over one pass of ``(x, y, sample_weight)`` batches."""
        raise NotImplementedError

    @property
    def sliced_from(self) -> Optional[Batch]:
        """The ``(x, y, sample_weight)`` tensors every batch is a slice of (so
        batches share their dtypes and devices), or ``None`` when batches are
        made otherwise. The loop then checks placement once, not per batch."""
        return None

    def exhausted(self) -> bool:
        """Whether an input that can be read only once (a generator) has no batch
        left; it may read one batch ahead to know. Re-iterable inputs: ``False``."""
        return False

    def on_epoch_begin(self) -> None:
        """Called before each epoch's first batch is drawn."""

    def on_epoch_end(self) -> None:
        """Called after each epoch."""


class WrappedAdapter(DataAdapter):
    """An adapter that transforms each batch of another one (class weights, pinning)."""

    def __init__(self, inner: DataAdapter) -> None:
        self.inner = inner

    @property
    def num_batches(self) -> Optional[int]:
        return self.inner.num_batches

    @property
    def num_samples(self) -> Optional[int]:
        return self.inner.num_samples

    @property
    def batch_size(self) -> Optional[int]:
        return self.inner.batch_size

    def exhausted(self) -> bool:
        return self.inner.exhausted()

    def on_epoch_begin(self) -> None:
        self.inner.on_epoch_begin()

    def on_epoch_end(self) -> None:
        self.inner.on_epoch_end()

    def transform(self, batch: Batch) -> Batch:
        raise NotImplementedError

    def get_iterator(self) -> Iterator[Batch]:
        for batch in self.inner.get_iterator():
            yield self.transform(batch)


def to_tensors(structure: Any) -> Any:
    """NumPy leaves of a batch as CPU tensors (sharing memory); other leaves as they are."""
    if isinstance(structure, np.ndarray) and structure.dtype.kind in "biufc":
        if not structure.flags.writeable:
            structure = structure.copy()
        return torch.from_numpy(np.ascontiguousarray(structure))
    if isinstance(structure, tuple) and not hasattr(structure, "_fields"):
        return tuple(to_tensors(item) for item in structure)
    if isinstance(structure, list):
        return [to_tensors(item) for item in structure]
    if isinstance(structure, dict):
        return type(structure)((key, to_tensors(value)) for key, value in structure.items())
    return structure


def pin(structure: Any) -> Any:
    """Copy CPU tensors (and NumPy arrays) of a batch into pinned memory.

    Tensors already pinned, or not on the CPU, are left as they are. Only
    called when the model lives on a CUDA device.
    """
    if isinstance(structure, torch.Tensor):
        if structure.device.type != "cpu" or structure.is_pinned():
            return structure
        return structure.pin_memory()
    if isinstance(structure, np.ndarray) and structure.dtype.kind in "biufc":
        return pin(torch.from_numpy(np.ascontiguousarray(structure)))
    if isinstance(structure, tuple) and not hasattr(structure, "_fields"):
        return tuple(pin(item) for item in structure)
    if isinstance(structure, list):
        return [pin(item) for item in structure]
    if isinstance(structure, dict):
        return type(structure)((key, pin(value)) for key, value in structure.items())
    return structure


class PinnedBatches(WrappedAdapter):
    """Hands batches over in pinned memory, for non-blocking host→CUDA copies."""

    def transform(self, batch: Batch) -> Batch:
        return pin(batch)


def unpack_x_y_sample_weight(data: Any) -> Batch:
    """Split one element of an iterator-like input into ``(x, y, sample_weight)``.

    Tuples (and lists) of length 1, 2 or 3 are unpacked; anything else,
    including a dict, is ``x`` alone. Namedtuples are ambiguous and rejected.
    """
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        raise ValueError(
            "Each batch of the input data must be a tuple (x,), (x, y) or "
            "(x, y, sample_weight); a namedtuple is ambiguous (is it x, or "
            f"x/y/sample_weight by position?). Received: a {type(data).__name__} "
            f"with fields {data._fields}. Convert it to a plain tuple."
        )
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data[0], data[1], data[2]
    raise ValueError(
        "Each batch of the input data must be a tuple (x,), (x, y) or "
        f"(x, y, sample_weight). Received: a tuple of length {len(data)}."
    )


def pack_x_y_sample_weight(x: Any, y: Any = None, sample_weight: Any = None) -> Any:
    """The batch a step receives, packed as Keras packs it: ``x`` alone (or
    ``(x,)`` when ``x`` is a tuple/list), ``(x, y)``, or ``(x, y, sample_weight)``,
    so that ``x, y = data`` works in a custom ``train_step``."""
    if y is None:
        return (x,) if isinstance(x, (tuple, list)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)
