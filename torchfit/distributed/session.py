"""The loop's session: the hooks ``Loop`` calls around fit/evaluate/predict.

:func:`loop_session` gives a :class:`LocalSession` on a single process (every
hook the identity or a no-op, so the loop runs its single-process path) and a
:class:`Session` when several processes run (shards inputs, wraps step
functions, reduces logs, gathers predictions).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from .. import callbacks as callbacks_module
from .. import tree
from ..batch import ROUTES  # call_model's table; filled here while a train step runs
from .errors import PeerProcessError, _publish_error, _published_error, _raise_unrouted
from .process_group import _comm_device, _dist, is_distributed
from .reduction import _gather_rows, _no_rows, _restore_metric_states, _save_metric_states, metrics_result
from .sharding import InputSharding, ShardBatch
from .strategies import FSDP, DataParallel, Distribution, _gathers_checkpoints, _is_fsdp_module
from .strategies import distribution as current_distribution


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``factor`` (a process's share)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, factor: float) -> torch.Tensor:  # type: ignore[override]
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.factor, None


class _Route:
    """The train step's forward: through the DDP wrapper, gradients weighted."""

    __slots__ = ("target", "factor", "calls")

    def __init__(self, target: Callable) -> None:
        self.target = target
        self.factor = 1.0
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        out = self.target(*args, **kwargs)
        if self.factor != 1.0:
            factor = self.factor
            out = tree.map_structure(
                lambda t: _ScaleGrad.apply(t, factor)
                if isinstance(t, torch.Tensor) and t.requires_grad else t, out)
        return out


def _declares(callback: Any, capability: str) -> bool:
    """Whether ``callback`` sets a capability flag declared on ``Callback``
    (read with a default: the list is not validated yet, so an item may be
    something else, which ``CallbackList`` then reports)."""
    return getattr(callback, capability, False) is True


def loop_session(model: nn.Module) -> Union["LocalSession", "Session"]:
    """The distributed side of one ``Loop`` (fit/evaluate/predict): a
    :class:`LocalSession` on a single process, whose hooks change nothing, so
    the loop runs exactly its single-process path."""
    if not is_distributed():
        return LocalSession(model)
    chosen = current_distribution()
    if chosen is None:  # a model the user sharded with FSDP stays FSDP
        chosen = FSDP() if _is_fsdp_module(model) else DataParallel()
    return Session(model, chosen)


class LocalSession:
    """The session of a single process (a null object): each hook is the
    identity or a no-op, so the loop runs exactly its single-process path.
    :class:`Session` has the same methods."""

    __slots__ = ("model",)

    #: True in a multi-process session (the loop checks for empty inputs on one process only).
    multi_process = False

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def shard(self, adapter: Any, role: str, shuffle: Any = False) -> Any:
        return adapter

    def set_epoch(self, epoch: int) -> None:
        pass

    def local_callbacks(self, callbacks: Any) -> Any:
        return callbacks

    def step_function(self, fn: Callable, kind: str) -> Callable:
        return fn

    def unwrap(self, batch: Any) -> Any:
        return batch

    def publish_error(self) -> None:
        pass

    def metrics_result(self) -> Dict[str, Any]:
        return self.model.get_metrics_result()

    def batch_logs(self, logs: Any) -> Any:
        return logs

    def agree(self, flag: bool) -> bool:
        return flag

    def gather_outputs(self, outputs: List[Any], concat: Callable[[List[Any]], Any]) -> Any:
        """The predictions: ``concat(outputs)`` (the loop's concatenation)."""
        return concat(outputs)


class Session(InputSharding):
    """Per-``Loop`` state: shards inputs, wraps step functions, reduces logs."""

    multi_process = True

    def __init__(self, model: nn.Module, distribution: Distribution) -> None:
        dist = _dist()
        super().__init__(dist.get_world_size(), dist.get_rank(), distribution.seed)
        self.model = model
        self.distribution = distribution
        self._mode = "train"
        self._placeholders: set = set()
        self._pending: Optional[ShardBatch] = None
        distribution.prepare(model)

    # -- callbacks ----------------------------------------------------------------------
    def local_callbacks(self, callbacks: Any) -> Any:
        """The user's callbacks for this process: on ranks other than 0, the
        ones that declare ``main_process_only = True`` (CSVLogger, TensorBoard,
        ModelCheckpoint, RemoteMonitor: they only write files) are left out. With an
        FSDP-sharded model, callbacks with ``gathers_fsdp_state = True``
        (ModelCheckpoint) stay on every process: their saves gather the shards
        (a collective) and rank 0 writes."""
        if callbacks is None:
            items = []
        elif isinstance(callbacks, callbacks_module.Callback):
            items = [callbacks]
        elif isinstance(callbacks, (list, tuple)):
            items = list(callbacks)
        else:
            return callbacks  # CallbackList reports the bad argument
        gathers = _gathers_checkpoints(self.model)
        if gathers:
            self._check_same_gatherers(items)
        if self.rank == 0 or callbacks is None:
            return callbacks
        return [c for c in items
                if (gathers and _declares(c, "gathers_fsdp_state")) or not _declares(c, "main_process_only")]

    def _check_same_gatherers(self, items: List[Any]) -> None:
        """Every process must pass the same shard-gathering callbacks: a save
        that one process starts alone would wait for the others forever."""
        mine = [type(c).__name__ for c in items if _declares(c, "gathers_fsdp_state")]
        everyone: List[Any] = [None] * self.world
        _dist().all_gather_object(everyone, mine)  # the same answer on every process
        if any(names != everyone[0] for names in everyone):
            received = ", ".join(f"rank {rank}: {names}" for rank, names in enumerate(everyone))
            raise ValueError(
                "Argument `callbacks`: with an FSDP-sharded model every process must pass the "
                "same checkpointing callbacks (their saves gather the shards, which all "
                f"processes join). Expected the same list on every rank; received {received}."
            )

    # -- steps --------------------------------------------------------------------------
    def step_function(self, fn: Callable, kind: str) -> Callable:
        """``fn`` (a train/test/predict step) made exact across processes.

        For ``kind="predict"``, ``fn`` is the loop's per-batch closure that
        collects outputs: outputs of placeholder batches are remembered and
        dropped by :meth:`gather_outputs`."""
        route = _Route(self.distribution.train_forward(self.model)) if kind == "train" else None
        check = route is not None and route.target is not self.model
        key = id(self.model)

        def step(batch: Any) -> Any:
            self._mode = kind
            marked, self._pending = self._pending, None
            try:
                if marked is not None:
                    return self._marked_step(fn, batch, marked, route, key, kind)
                if route is None:
                    return fn(batch)
                route.calls = 0
                ROUTES[key] = route
                try:
                    logs = fn(batch)
                finally:
                    ROUTES.pop(key, None)
            except BaseException:
                self.publish_error()
                raise
            if check and route.calls == 0:
                _raise_unrouted(self.model)
            return logs

        return step

    def unwrap(self, batch: Any) -> Any:
        """Called by the loop on each batch before it is moved and packed: a
        :class:`ShardBatch` gives its batch, and its counts to the next step."""
        if type(batch) is ShardBatch:
            self._pending = batch
            return batch.batch
        self._pending = None
        return batch

    def _marked_step(self, fn: Callable, batch: Any, marked: ShardBatch, route: Optional[_Route],
                     key: int, kind: str) -> Any:
        placeholder = marked.real == 0
        saved = _save_metric_states(self.model) if placeholder and kind != "predict" else None
        if route is not None:
            # This process's share of the step: DDP averages, so W * n_r / n weights
            # each process's mean gradient into the mean over the whole step.
            route.factor, route.calls = self.world * marked.real / marked.total, 0
            ROUTES[key] = route
            try:
                logs = fn(batch)
            finally:
                ROUTES.pop(key, None)
                route.factor = 1.0
        else:
            logs = fn(batch)
        if kind == "predict":
            if placeholder:  # its rows are dropped when the outputs are gathered
                self._placeholders.add(id(logs))
            return logs
        if saved is not None:
            _restore_metric_states(self.model, saved)
            if isinstance(logs, dict):
                results = self.model.get_metrics_result()
                logs = results if set(results) == set(logs) else logs
        return logs

    # -- failures -----------------------------------------------------------------------
    def publish_error(self) -> None:
        """Called while an exception propagates out of the loop on this process.

        If another process failed first (and this error is the broken
        connection it left behind), raise that process's error instead, so every
        process ends with the error that started it all. Otherwise record this
        error for the others (in the process group's store).
        """
        error = sys.exc_info()[1]
        if error is None or isinstance(error, PeerProcessError):
            return
        first = _published_error()
        if first is not None and first[0] != self.rank:
            raise PeerProcessError(first[0], first[1], error) from error
        _publish_error(self.rank, error)

    # -- logs ---------------------------------------------------------------------------
    def metrics_result(self) -> Dict[str, Any]:
        """The model's metric results over all processes (a collective)."""
        try:
            return metrics_result(self.model)
        except BaseException:
            self.publish_error()
            raise

    def batch_logs(self, logs: Any) -> Any:
        """Batch-level logs for callbacks: global when the steps line up."""
        if (self._mode == "predict" or not self.distribution.reduce_batch_logs
                or not isinstance(logs, dict) or not self._equal_steps.get(self._mode, False)):
            return logs
        results = self.metrics_result()
        return results if set(results) == set(logs) else logs

    def agree(self, flag: bool) -> bool:
        """True on every process if it is True on any (e.g. ``stop_training``)."""
        value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_comm_device())
        try:
            _dist().all_reduce(value, op=_dist().ReduceOp.MAX)
        except BaseException:
            self.publish_error()
            raise
        return bool(value.item())

    # -- predict ------------------------------------------------------------------------
    def gather_outputs(self, outputs: List[Any], concat: Callable[[List[Any]], Any]) -> Any:
        """Every process's predictions, concatenated in input order (``concat``:
        the loop's concatenation of one process's per-batch outputs)."""
        real = [out for out in outputs if id(out) not in self._placeholders]
        local = concat(real) if real else tree.map_structure(_no_rows, concat(outputs[:1]))
        leaves = tree.flatten(local)
        dist = _dist()
        comm = _comm_device()
        rows = int(leaves[0].shape[0]) if leaves and getattr(leaves[0], "ndim", 0) else 0
        counts = [torch.zeros(1, dtype=torch.int64, device=comm) for _ in range(self.world)]
        dist.all_gather(counts, torch.tensor([rows], dtype=torch.int64, device=comm))
        counts_list = [int(c.item()) for c in counts]
        plan = self._plans.get("predict")
        if plan is not None:
            positions = np.concatenate([plan.positions(r)[:n] for r, n in enumerate(counts_list)])
            order = np.argsort(positions, kind="stable")
        else:
            order = None
        main_only = self.distribution.predict_outputs == "main"
        gathered = [_gather_rows(np.asarray(leaf), counts_list, comm) for leaf in leaves]
        if main_only and self.rank != 0:
            return None
        if order is not None:
            gathered = [g[order] for g in gathered]
        return tree.pack_sequence_as(local, gathered)
