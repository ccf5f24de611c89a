"""The one interface every input type is read through.

An adapter turns what the user passed to ``fit``/``evaluate``/``predict`` into
an iterable of ``(x, y, sample_weight)`` batches of CPU tensors (``y`` and
``sample_weight`` may be ``None``). Moving a batch to the model's device is
the loop's job, so adapters stay device-agnostic.
"""

from __future__ import annotations

from typing import Any, Iterator, Optional, Tuple

Batch = Tuple[Any, Any, Any]


class DataAdapter:
    """Base class: one subclass per input type."""

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

    def get_iterator(self) -> Iterator[Batch]:
        """A fresh iterator over one pass of ``(x, y, sample_weight)`` batches."""
        raise NotImplementedError

    def on_epoch_begin(self) -> None:
        """Called before each epoch's first batch is drawn."""

    def on_epoch_end(self) -> None:
        """Called after each epoch."""


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
