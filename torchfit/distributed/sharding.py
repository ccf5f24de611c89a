"""Input sharding: which samples each process takes at each step.

:class:`ShardPlan` (deterministic, no communication), the sharded adapters for
arrays and ``DataLoader``s, :class:`ShardBatch` for steps whose pieces differ
in size, and :class:`InputSharding`, the input side of a loop session.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import (BatchSampler, DataLoader, DistributedSampler, IterableDataset,
                              RandomSampler, SequentialSampler)

from .. import tree
from ..data.adapter import DataAdapter, WrappedAdapter
from ..data.arrays import ArrayDataAdapter, gather_rows, rows_of
from ..data.torch_data import TorchDataLoaderAdapter
from .errors import _warn_unsharded
from .process_group import _comm_device, _dist


class ShardPlan:
    """Which samples each process takes at each step (deterministic, no communication).

    Step ``s`` covers positions ``[s*G, min((s+1)*G, size))`` of the epoch's
    order, ``G = world * batch_size``. A full step gives process ``r`` the
    ``r``-th block of ``batch_size``; a short last step of ``m`` samples is
    split evenly (``m // world`` or one more, in rank order). A process that
    gets nothing (``m < world``) runs a placeholder piece (``real == 0``) whose
    effects the loop undoes. ``drop_last`` drops a short last step.
    """

    def __init__(self, size: int, batch_size: int, world: int, rank: int,
                 drop_last: bool = False) -> None:
        self.size, self.batch_size = int(size), int(batch_size)
        self.world, self.rank = int(world), int(rank)
        self.global_batch = self.world * self.batch_size
        full, rest = divmod(self.size, self.global_batch)
        self.steps = full if (drop_last or not rest) else full + 1

    def total(self, step: int) -> int:
        """Samples of step ``step`` over all processes."""
        return min(self.global_batch, self.size - step * self.global_batch)

    def piece(self, step: int, rank: Optional[int] = None) -> Tuple[int, int, int]:
        """``(start, stop, real)``: positions of ``rank``'s piece and how many count."""
        r = self.rank if rank is None else rank
        start, m = step * self.global_batch, self.total(step)
        if m == self.global_batch:
            lo = start + r * self.batch_size
            return lo, lo + self.batch_size, self.batch_size
        q, rem = divmod(m, self.world)
        n = q + (1 if r < rem else 0)
        if n:
            lo = start + r * q + min(r, rem)
            return lo, lo + n, n
        if m >= 2:  # placeholder: two samples (BatchNorm needs more than one)
            return start, start + 2, 0
        return 0, min(2, self.size), 0

    def marked(self, step: int) -> bool:
        """Whether the pieces of ``step`` differ in size (weights needed) or one is empty."""
        m = self.total(step)
        return m != self.global_batch and m % self.world != 0

    @property
    def any_marked(self) -> bool:
        return self.steps > 0 and self.marked(self.steps - 1)

    def positions(self, rank: Optional[int] = None) -> np.ndarray:
        """Order positions of ``rank``'s real samples, in the order it sees them."""
        parts = []
        for step in range(self.steps):
            lo, hi, real = self.piece(step, rank)
            if real:
                parts.append(np.arange(lo, hi, dtype=np.int64))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def __repr__(self) -> str:
        return (f"ShardPlan(size={self.size}, batch_size={self.batch_size}, "
                f"world={self.world}, rank={self.rank}, steps={self.steps})")


def _epoch_order(size: int, shuffle: Any, seed: int, epoch: int, chunk: int) -> Optional[torch.Tensor]:
    """The epoch's sample order, the same on every process (None: stored order)."""
    if not shuffle or size <= 1:
        return None
    generator = torch.Generator().manual_seed(int(seed) + int(epoch))
    if shuffle == "batch":  # Keras's "batch": shuffle inside global-batch-sized chunks
        keys = torch.arange(size, dtype=torch.float64) // chunk
        return (keys + torch.rand(size, dtype=torch.float64, generator=generator)).argsort()
    return torch.randperm(size, generator=generator)


def _make_sharded_arrays(source: Any, plan: ShardPlan, shuffle: Any, seed: Callable[[], int]) -> Any:
    class ShardedArrays(DataAdapter):
        """This process's share of in-memory arrays, batch by batch (views when unshuffled)."""

        def __init__(self) -> None:
            self.source, self.plan, self.shuffle, self.epoch = source, plan, shuffle, 0
            self._seed = seed

        @property
        def num_batches(self) -> int:
            return plan.steps

        @property
        def num_samples(self) -> int:
            return int(sum(plan.piece(s)[1] - plan.piece(s)[0] for s in range(plan.steps)))

        @property
        def batch_size(self) -> int:
            return plan.batch_size

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def get_iterator(self) -> Iterator[Any]:
            arrays = source.arrays
            leaves = tree.flatten(arrays)
            flat = all(not tree.is_nested(part) for part in arrays)
            order = _epoch_order(plan.size, self.shuffle, self._seed() if self.shuffle else 0,
                                 self.epoch, plan.global_batch)
            pieces = [plan.piece(s) for s in range(plan.steps)]
            if order is not None:
                index = torch.cat([order[lo:hi] for lo, hi, _ in pieces])
                leaves = [None if t is None else gather_rows(t, index) for t in leaves]
                offset, spans = 0, []
                for lo, hi, _ in pieces:
                    spans.append((offset, offset + hi - lo))
                    offset += hi - lo
            else:
                spans = [(lo, hi) for lo, hi, _ in pieces]
            for lo, hi in spans:
                sliced = [None if t is None else rows_of(t, lo, hi) for t in leaves]
                yield tuple(sliced) if flat else tree.pack_sequence_as(arrays, sliced)

    return ShardedArrays()


class _PlanBatchSampler(torch.utils.data.Sampler):
    """Index lists of this process's pieces, for a rebuilt DataLoader."""

    def __init__(self, plan: ShardPlan, base_order: Callable[[int], Sequence[int]]) -> None:
        self.plan, self.base_order, self.epoch = plan, base_order, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.plan.steps

    def __iter__(self) -> Iterator[List[int]]:
        order = self.base_order(self.epoch)
        for step in range(self.plan.steps):
            lo, hi, _ = self.plan.piece(step)
            yield [int(i) for i in order[lo:hi]]


_LOADER_OPTIONS = ("num_workers", "collate_fn", "pin_memory", "timeout", "worker_init_fn",
                   "multiprocessing_context", "generator", "prefetch_factor",
                   "persistent_workers", "pin_memory_device", "in_order")


def _rebuild_loader(loader: Any, batch_sampler: Any) -> Any:
    accepted = inspect.signature(DataLoader.__init__).parameters
    kwargs = {name: getattr(loader, name) for name in _LOADER_OPTIONS
              if name in accepted and hasattr(loader, name)}
    if not kwargs.get("num_workers"):
        kwargs.pop("prefetch_factor", None)
        kwargs["persistent_workers"] = False
    if not kwargs.get("pin_memory_device"):
        kwargs.pop("pin_memory_device", None)
    return DataLoader(loader.dataset, batch_sampler=batch_sampler, **kwargs)


class ShardBatch:
    """A batch with what the loop needs to keep it exact: ``real`` samples of it
    count (0: a placeholder), ``total`` samples make the whole step. The loop
    hands it to :meth:`Session.unwrap` before the step that runs it."""

    __slots__ = ("batch", "real", "total")

    def __init__(self, batch: Any, real: int, total: int) -> None:
        self.batch, self.real, self.total = batch, real, total


def _make_marked(top: Any, plan: ShardPlan) -> Any:
    class MarkedBatches(WrappedAdapter):
        """Wraps the outermost adapter: batches of marked steps become ``ShardBatch``es."""

        def __init__(self) -> None:
            super().__init__(top)
            self.plan = plan

        def get_iterator(self) -> Iterator[Any]:
            for step, batch in enumerate(self.inner.get_iterator()):
                if step < plan.steps and plan.marked(step):
                    _, _, real = plan.piece(step)
                    yield ShardBatch(batch, real, plan.total(step))
                else:
                    yield batch

    return MarkedBatches()


class InputSharding:
    """The input side of a distributed loop session: this process's share of
    each adapter, a shuffling seed shared by every process, and ``set_epoch``."""

    def __init__(self, world: int, rank: int, seed: Optional[int]) -> None:
        self.world = world
        self.rank = rank
        self._seed: Optional[int] = seed
        self._plans: Dict[str, Optional[ShardPlan]] = {}
        self._equal_steps: Dict[str, bool] = {}
        self._epoch_targets: List[Any] = []

    # -- shared seed --------------------------------------------------------------------
    def seed(self) -> int:
        """The shuffling seed, the same on every process (drawn on rank 0 once)."""
        if self._seed is None:
            value = torch.zeros(1, dtype=torch.int64)
            if self.rank == 0:
                value = torch.randint(0, 2**62, (1,), dtype=torch.int64)
            value = value.to(_comm_device())
            _dist().broadcast(value, src=0)
            self._seed = int(value.item())
        return self._seed

    # -- inputs -------------------------------------------------------------------------
    def shard(self, adapter: Any, role: str, shuffle: Any = False) -> Any:
        """This process's share of ``adapter`` (role: "train", "test" or "predict")."""
        parents, node = [], adapter
        while isinstance(getattr(node, "inner", None), DataAdapter):
            parents.append(node)
            node = node.inner
        training = role == "train"
        if training and shuffle:
            self.seed()  # a collective: drawn now, at the same point on every process
        replaced, plan, equal = self._shard_source(node, role, shuffle if training else False)
        self._plans[role] = plan
        self._equal_steps["test" if role == "predict" else role] = equal or training
        if replaced is None:
            return adapter
        if parents:
            parents[-1].inner = replaced
            top = adapter
        else:
            top = replaced
        if plan is not None and plan.any_marked:
            top = _make_marked(top, plan)
        return top

    def _shard_source(self, source: Any, role: str, shuffle: Any) -> Tuple[Any, Optional[ShardPlan], bool]:
        if isinstance(source, ArrayDataAdapter):
            plan = ShardPlan(source.num_samples, source.batch_size, self.world, self.rank)
            sharded = _make_sharded_arrays(source, plan, shuffle, self.seed)
            if role == "train":
                self._epoch_targets.append(sharded)
            return sharded, plan, True
        if isinstance(source, TorchDataLoaderAdapter):
            loader = getattr(source, "loader", None) or getattr(source, "_loader")
            return self._shard_loader(loader, role, TorchDataLoaderAdapter)
        _warn_unsharded(type(source).__name__)
        return None, None, False

    def _shard_loader(self, loader: Any, role: str,
                      adapter_class: type) -> Tuple[Any, Optional[ShardPlan], bool]:
        if isinstance(loader.dataset, IterableDataset):
            _warn_unsharded("DataLoader over an IterableDataset")
            return None, None, False
        batch_sampler = loader.batch_sampler
        sampler = getattr(batch_sampler, "sampler", loader.sampler)
        if isinstance(sampler, DistributedSampler) and role == "train":
            self._epoch_targets.append(sampler)  # used as is; set_epoch every epoch
            return None, None, True
        size = len(loader.dataset)
        drop_last = False
        if type(batch_sampler) is BatchSampler:
            batch_size, drop_last = batch_sampler.batch_size, batch_sampler.drop_last
        elif type(batch_sampler).__name__ == "ChunkShuffleSampler" and hasattr(batch_sampler, "batch_size"):
            batch_size = batch_sampler.batch_size
        else:
            _warn_unsharded("DataLoader with a custom batch_sampler")
            return None, None, False
        shuffle: Any = False
        base: Optional[List[int]] = None
        if type(batch_sampler).__name__ == "ChunkShuffleSampler":
            shuffle = "batch" if role == "train" else False
        elif isinstance(sampler, (SequentialSampler, DistributedSampler)):
            pass
        elif (isinstance(sampler, RandomSampler) and not sampler.replacement
              and sampler.num_samples == size):
            shuffle = role == "train"
        else:
            base = [int(i) for i in sampler]  # any other sampler: its order, sharded
            size = len(base)
        plan = ShardPlan(size, batch_size, self.world, self.rank,
                         drop_last=drop_last and role == "train")
        seed = self.seed() if shuffle else 0

        def order(epoch: int) -> Sequence[int]:
            permutation = _epoch_order(size, shuffle, seed, epoch, plan.global_batch)
            indices = base if base is not None else range(size)
            if permutation is None:
                return indices
            return [indices[i] for i in permutation.tolist()]

        plan_sampler = _PlanBatchSampler(plan, order)
        if role == "train":
            self._epoch_targets.append(plan_sampler)
        return adapter_class(_rebuild_loader(loader, plan_sampler)), plan, True

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle the shared order for ``epoch`` (DistributedSampler's ``set_epoch``)."""
        for target in self._epoch_targets:
            target.set_epoch(epoch)
