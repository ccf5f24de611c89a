"""Walks an adapter epoch by epoch with Keras's ``steps_per_epoch`` rules."""

from __future__ import annotations

import warnings
from typing import Callable, Iterator, List, Optional, Tuple

from .adapter import Batch, DataAdapter


class EpochIterator:
    """Yields ``(first_step, last_step, batches)`` groups of ``steps_per_execution``.

    Without ``steps_per_epoch`` every epoch is one full pass over the data.
    With it, an epoch is that many steps and the next epoch continues where the
    previous one stopped, restarting the data once a full pass is consumed.
    """

    def __init__(
        self,
        adapter: DataAdapter,
        steps_per_epoch: Optional[int] = None,
        steps_per_execution: int = 1,
    ) -> None:
        self.adapter = adapter
        self.steps_per_epoch = steps_per_epoch
        self.steps_per_execution = steps_per_execution
        self._iterator: Optional[Iterator[Batch]] = None
        self._steps_seen = 0
        self._num_batches = adapter.num_batches
        self._skip = 0
        self._on_positioned: Optional[Callable[[], None]] = None

    def skip_next(self, batches: int, on_positioned: Optional[Callable[[], None]] = None) -> None:
        """Make the next epoch start at batch ``batches`` (resuming mid-epoch).

        The data is drawn exactly as for a full epoch (same shuffle), the first
        ``batches`` are read and dropped, then ``on_positioned()`` is called
        before the first batch that is yielded.
        """
        self._skip = batches
        self._on_positioned = on_positioned

    @property
    def num_batches(self) -> Optional[int]:
        """Steps per epoch as shown to callbacks (``params["steps"]``)."""
        return self.steps_per_epoch or self._num_batches

    def reset(self) -> None:
        """Start over from the beginning of the data (used by evaluation)."""
        self._iterator = None
        self._steps_seen = 0

    def _warn_exhausted(self) -> None:
        warnings.warn(
            "Your input ran out of data; interrupting the epoch. Make sure "
            "that your dataset or generator can generate at least "
            "`steps_per_epoch * epochs` batches.",
            stacklevel=4,
        )

    def _position(self, limit: Optional[int]) -> int:
        """Consume the batches a resumed epoch already applied; return the step."""
        skip, callback = self._skip, self._on_positioned
        self._skip, self._on_positioned = 0, None
        if limit is not None:
            skip = min(skip, limit)
        skipped, _ = self._next_group(self._iterator, skip)
        self._steps_seen += len(skipped)
        if callback is not None:
            callback()
        return len(skipped)

    @staticmethod
    def _next_group(iterator: Iterator[Batch], size: int) -> Tuple[List[Batch], bool]:
        group: List[Batch] = []
        for _ in range(size):
            try:
                group.append(next(iterator))
            except StopIteration:
                return group, True
        return group, False

    def __iter__(self) -> Iterator[Tuple[int, int, List[Batch]]]:
        self.adapter.on_epoch_begin()
        limit = self.steps_per_epoch or self._num_batches
        if self._iterator is None or self.steps_per_epoch is None:
            self._iterator = self.adapter.get_iterator()
            self._steps_seen = 0
        step = self._position(limit)
        while limit is None or step < limit:
            if self._num_batches and self._steps_seen >= self._num_batches:
                if self.steps_per_epoch:
                    self._warn_exhausted()
                break
            size = self.steps_per_execution if limit is None else min(self.steps_per_execution, limit - step)
            group, exhausted = self._next_group(self._iterator, size)
            if group:
                self._steps_seen += len(group)
                yield step, step + len(group) - 1, group
                step += len(group)
            if exhausted:
                if self._num_batches is None:
                    self._num_batches = self._steps_seen
                if self.steps_per_epoch:
                    self._warn_exhausted()
                self._iterator = None
                break
        if self._num_batches and self._steps_seen >= self._num_batches:
            self._iterator = None
        self.adapter.on_epoch_end()
