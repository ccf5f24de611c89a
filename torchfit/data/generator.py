"""Python generators and other iterators yielding ready batches."""

from __future__ import annotations

import collections.abc
import inspect
from typing import Any, Iterator, Optional

from .adapter import Batch, DataAdapter, unpack_x_y_sample_weight


def is_iterator_input(value: Any) -> bool:
    return inspect.isgenerator(value) or isinstance(value, collections.abc.Iterator)


class GeneratorDataAdapter(DataAdapter):
    """A one-shot iterator: later epochs continue where the last one stopped."""

    def __init__(self, generator: Iterator[Any]) -> None:
        self._generator = generator

    @property
    def num_batches(self) -> Optional[int]:
        return None

    def get_iterator(self) -> Iterator[Batch]:
        for batch in self._generator:
            yield unpack_x_y_sample_weight(batch)
