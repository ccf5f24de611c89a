"""The one interface every input type is read through.

An adapter turns what the user passed to ``fit``/``evaluate``/``predict`` into
an iterable of ``(x, y, sample_weight)`` batches of CPU tensors (``y`` and
``sample_weight`` may be ``None``). Moving a batch to the model's device is
the loop's job (``batch.move_to``, non-blocking on CUDA); when the target is a
CUDA device, adapters hand over batches in pinned (page-locked) memory so that
copy can overlap with compute (see :class:`PinnedBatches`).
"""

from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np
import torch

from .. import tree
# Defined with the rest of a batch's helpers; importable from here as before.
from ..batch import Batch, pack_x_y_sample_weight, unpack_x_y_sample_weight  # noqa: F401


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


def _to_tensor(leaf: Any) -> Any:
    """A numeric NumPy leaf as a CPU tensor sharing its memory (read-only arrays are
    copied first: torch tensors are writable); any other leaf as it is."""
    if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "biufc":
        if not leaf.flags.writeable:
            leaf = leaf.copy()
        return torch.from_numpy(np.ascontiguousarray(leaf))
    return leaf


def to_tensors(structure: Any) -> Any:
    """NumPy leaves of a batch as CPU tensors (sharing memory); other leaves as they are."""
    return tree.map_structure(_to_tensor, structure)


def _pinned(leaf: Any) -> Any:
    """One CPU tensor (or numeric NumPy array) in pinned memory; others as they are."""
    leaf = _to_tensor(leaf)
    if not isinstance(leaf, torch.Tensor) or leaf.device.type != "cpu" or leaf.is_pinned():
        return leaf
    return leaf.pin_memory()


def pin(structure: Any) -> Any:
    """Copy CPU tensors (and NumPy arrays) of a batch into pinned memory.

    Tensors already pinned, or not on the CPU, are left as they are. Only
    called when the model lives on a CUDA device.
    """
    return tree.map_structure(_pinned, structure)


class PinnedBatches(WrappedAdapter):
    """Hands batches over in pinned memory, for non-blocking host→CUDA copies."""

    def transform(self, batch: Batch) -> Batch:
        return pin(batch)
