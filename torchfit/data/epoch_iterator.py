"""Walks an adapter epoch by epoch with Keras's ``steps_per_epoch`` rules."""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ..batch import Batch
from .adapter import DataAdapter


@dataclass
class ResumePoint:
    """Where an interrupted ``fit`` continues.

    A callback (e.g. a backup/restore callback) sets ``model.resume_point`` in
    ``on_train_begin``; the loop then starts at ``epoch``, drops the first
    ``step`` batches of that epoch (drawn with the same shuffle as the
    original run) and calls ``on_positioned()`` before training the next one.

    With ``steps_per_epoch`` shorter than the data a pass spans epochs:
    ``pass_position`` is then the number of batches of the current pass read
    before the resume point (``None``: ``step``, the epoch began the pass). The
    loop draws a new pass in that epoch (the callback puts back the RNG state
    of the original pass start in its ``on_epoch_begin``), drops
    ``pass_position`` batches, the last ``step`` of which count as the epoch's
    first steps, then calls ``on_positioned()``. During ``fit`` the training
    ``EpochIterator`` is ``state.of(model).run.train_iterator`` (its
    ``starts_new_pass`` and ``pass_position`` say where the pass is).
    """

    epoch: int
    step: int = 0
    on_positioned: Optional[Callable[[], None]] = None
    pass_position: Optional[int] = None
    #: The epoch that pass began in: under torch.distributed its shared shuffle
    #: is drawn for that epoch (``set_epoch``). ``None``: the resumed epoch.
    pass_epoch: Optional[int] = None
    #: The epoch's logs at the resume point: a resumed epoch with no step left
    #: ends with them (its compiled metrics may not even be built yet).
    logs: Optional[Dict[str, Any]] = None

def warn_ran_out_of_data(stacklevel: int = 2) -> None:
    """Keras's warning for an input that runs dry before ``steps_per_epoch * epochs`` batches."""
    warnings.warn(
        "Your input ran out of data; interrupting training. Make sure that your dataset "
        "or generator can generate at least `steps_per_epoch * epochs` batches. You may "
        "need to use the `.repeat()` function when building your dataset.",
        UserWarning,
        stacklevel=stacklevel,
    )


class EpochIterator:
    """Yields ``(first_step, last_step, batches)`` groups of ``steps_per_execution``.

    Without ``steps_per_epoch`` every epoch is one full pass over the data.
    With it, an epoch is that many steps and the next epoch continues where the
    previous one stopped, restarting the data once a full pass is consumed.

    A pass always begins at an epoch start (one that runs out mid-epoch ends
    that epoch). For resuming an interrupted run, ``starts_new_pass`` and
    ``pass_position`` say where in its pass the iterator is, and
    ``resume_at`` continues a pass from there.
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
        self._skip = 0  # batches of the pass the next epoch drops (resume_at)
        self._skip_step = 0  # ...of which the last ``_skip_step`` belong to that epoch
        self._on_positioned: Optional[Callable[[], None]] = None

    def skip_next(self, batches: int, on_positioned: Optional[Callable[[], None]] = None) -> None:
        """Make the next epoch start at batch ``batches`` of a new pass (``resume_at(batches, batches)``)."""
        self.resume_at(batches, batches, on_positioned)

    def resume_at(self, pass_batches: int, step: int,
                  on_positioned: Optional[Callable[[], None]] = None) -> None:
        """Make the next epoch continue a pass from batch ``pass_batches``, at step ``step``.

        The next ``__iter__`` draws a new pass exactly as a pass start does (so
        the caller puts back the RNG state of the original pass start first),
        reads and drops its first ``pass_batches`` batches, then calls
        ``on_positioned()`` before the first batch that is yielded. The last
        ``step`` dropped batches count as the epoch's first steps (``step <=
        pass_batches``; they are equal when epochs are full passes).
        """
        if not 0 <= step <= pass_batches:
            raise ValueError("EpochIterator.resume_at: expected 0 <= step <= pass_batches. "
                             f"Received step={step}, pass_batches={pass_batches}.")
        self._iterator = None  # a fresh pass
        self._steps_seen = 0
        self._skip, self._skip_step = pass_batches, step
        self._on_positioned = on_positioned

    @property
    def starts_new_pass(self) -> bool:
        """Whether the next ``__iter__`` (epoch) begins a new pass over the data.

        Always true without ``steps_per_epoch``; with it, true when no pass was
        drawn yet or the last one was used up.
        """
        return self._iterator is None or self.steps_per_epoch is None

    @property
    def pass_position(self) -> int:
        """Batches of the current pass read so far (0 before a pass or once it is used up).

        During an epoch this counts every batch of the pass handed out,
        including those of earlier epochs when the pass spans several.
        """
        return 0 if self._iterator is None else self._steps_seen

    @property
    def pass_used_up(self) -> bool:
        """During an epoch: whether every batch of the current pass was handed out,
        so that the epoch ends after the current step. ``False`` while the length
        of the input is not known (it is learnt when the first pass runs out)."""
        return (self._iterator is not None and self._num_batches is not None
                and self._steps_seen >= self._num_batches)

    @property
    def num_batches(self) -> Optional[int]:
        """Steps per epoch as shown to callbacks (``params["steps"]``)."""
        return self.steps_per_epoch or self._num_batches

    def ran_dry(self) -> bool:
        """Whether the next epoch would get no batch at all: the input can be read
        only once and is used up (see ``DataAdapter.exhausted``; it may read ahead)."""
        return self.adapter.exhausted()

    def reset(self) -> None:
        """Start over from the beginning of the data (used by evaluation)."""
        self._iterator = None
        self._steps_seen = 0

    def _warn_exhausted(self) -> None:
        warn_ran_out_of_data(stacklevel=7)  # the user's fit() call

    def _position(self, limit: Optional[int]) -> int:
        """Consume the batches a resumed run already applied; return the epoch's step."""
        skip, step, callback = self._skip, self._skip_step, self._on_positioned
        self._skip, self._skip_step, self._on_positioned = 0, 0, None
        earlier = skip - step  # batches of the pass that earlier epochs read
        if self._num_batches is not None:
            skip = min(skip, self._num_batches)
        skipped, _ = self._next_group(self._iterator, skip)
        self._steps_seen += len(skipped)
        if callback is not None:
            callback()
        step = max(0, len(skipped) - earlier)  # the epoch's share (less if the data got shorter)
        return step if limit is None else min(step, limit)

    @staticmethod
    def _next_group(iterator: Iterator[Batch], size: int) -> Tuple[List[Batch], bool]:
        """Up to ``size`` batches, and whether the iterator ran out before ``size``."""
        group = list(itertools.islice(iterator, size))
        return group, len(group) < size

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
