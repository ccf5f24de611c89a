"""Python generators and other iterators yielding ready batches."""

from __future__ import annotations

import collections.abc
import inspect
import itertools
from typing import Any, Iterator, Optional

from .adapter import Batch, DataAdapter, to_tensors, unpack_x_y_sample_weight

_EMPTY = object()


def is_iterator_input(value: Any) -> bool:
    return inspect.isgenerator(value) or isinstance(value, collections.abc.Iterator)


class GeneratorDataAdapter(DataAdapter):
    """A one-shot iterator of batches: ``(x,)``, ``(x, y)``, ``(x, y, sample_weight)``
    tuples, or anything else (a tensor, a dict) as ``x`` alone.

    Its length is unknown, so an epoch ends when the iterator is exhausted or
    after ``steps_per_epoch`` batches; later epochs continue where the last one
    stopped (an infinite generator with ``steps_per_epoch`` is the usual form).
    The first batch is read when the adapter is made, so an empty generator or
    a malformed batch fails before training starts; it is replayed first.
    """

    def __init__(self, generator: Iterator[Any], argument: str = "x") -> None:
        first = next(generator, _EMPTY)
        if first is _EMPTY:
            raise ValueError(
                f"Argument `{argument}` must yield at least one batch. Received a "
                f"{type(generator).__name__} that is empty or already exhausted."
            )
        unpack_x_y_sample_weight(first)  # malformed batches fail here, at the door
        self._generator: Iterator[Any] = itertools.chain([first], generator)

    @property
    def num_batches(self) -> Optional[int]:
        return None

    def get_iterator(self) -> Iterator[Batch]:
        for batch in self._generator:
            yield to_tensors(unpack_x_y_sample_weight(batch))
