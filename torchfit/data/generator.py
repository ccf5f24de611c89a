"""Python generators and other iterators yielding ready batches."""

from __future__ import annotations

import collections.abc
import inspect
from typing import Any, Iterator, Optional

from .. import tree
from ..batch import Batch, unpack_x_y_sample_weight
from .adapter import DataAdapter, to_tensors
from .arrays import check_string_keys

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
    Every later batch must keep the first one's structure (the same parts,
    nesting and dict keys): a batch that is ``None`` or shaped otherwise fails
    before it reaches the model.
    """

    def __init__(self, generator: Iterator[Any], argument: str = "x") -> None:
        first = next(generator, _EMPTY)
        if first is _EMPTY:
            raise ValueError(
                f"Argument `{argument}` must yield at least one batch. Received a "
                f"{type(generator).__name__} that is empty or already exhausted."
            )
        self._argument = argument
        self._index = 0  # batches read so far, for messages
        unpacked = self._unpack(first)  # malformed batches fail here, at the door
        check_string_keys(unpacked[0], argument)
        self._structure = batch_structure(unpacked)
        self._generator: Iterator[Any] = generator
        self._ahead: Any = first  # a batch read ahead (the first, or by ``exhausted``), or _EMPTY/None

    @property
    def num_batches(self) -> Optional[int]:
        return None

    def _unpack(self, batch: Any) -> Batch:
        if batch is None:
            raise ValueError(
                f"Argument `{self._argument}` yielded None as batch {self._index}. Expected "
                "every batch to be (x,), (x, y) or (x, y, sample_weight) (or x alone); "
                "received None."
            )
        return unpack_x_y_sample_weight(batch)

    def _checked(self, batch: Any) -> Batch:
        unpacked = self._unpack(batch)
        structure = batch_structure(unpacked)
        if structure != self._structure:
            raise ValueError(
                f"Argument `{self._argument}` changed structure at batch {self._index}: "
                f"expected every batch shaped like the first, {describe_batch(self._structure)}; "
                f"received {describe_batch(structure)}. No step was run on this batch."
            )
        self._index += 1
        return unpacked

    def exhausted(self) -> bool:
        if self._ahead is None:
            self._ahead = next(self._generator, _EMPTY)
        return self._ahead is _EMPTY

    def _next(self) -> Any:
        batch, self._ahead = self._ahead, None
        return next(self._generator, _EMPTY) if batch is None else batch

    def get_iterator(self) -> Iterator[Batch]:
        # Every pass reads the one shared generator, through the read-ahead slot.
        batch = self._next()
        while batch is not _EMPTY:
            yield to_tensors(self._checked(batch))
            batch = self._next()


def _structure(value: Any) -> Any:
    """The nesting of one part of a batch, leaves reduced to ``"array"`` (or None)."""
    return tree.map_structure(lambda leaf: None if leaf is None else "array", value)


def batch_structure(batch: Batch) -> Any:
    """What two batches of one input must share: the nesting of x, y and sample_weight."""
    return tuple(_structure(part) for part in batch)


def describe_batch(structure: Any) -> str:
    """``(x=array, y=array)``: a batch structure for messages."""
    parts = [f"{name}={part!r}".replace("'array'", "array")
             for name, part in zip(("x", "y", "sample_weight"), structure) if part is not None]
    return "(" + ", ".join(parts) + ")"
