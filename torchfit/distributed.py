"""Several processes (``torchrun``): DDP/FSDP, data sharding, exact cross-rank logs.

The same ``fit``/``evaluate``/``predict`` calls run under ``torchrun`` (or any
launcher that sets up a ``torch.distributed`` process group) and give the
numbers of one process that sees the whole data:

* **Detection.** A process group with more than one process (set up by the
  user, by :func:`initialize`, or found in ``torchrun``'s environment and set
  up on first use) switches the loop to its distributed path. On a single
  process nothing here runs: the loop's code path is the single-process one.
* **The model stays the user's.** ``fit`` calls the model through a
  ``DistributedDataParallel`` wrapper only for the forward inside the train
  step (``call_model`` is routed, so DDP's gradient hooks fire); the wrapper
  is never registered on the model, so ``state_dict()`` keys carry no
  ``module.`` prefix. ``FSDP()`` shards the model in place with
  ``torch.distributed.fsdp.fully_shard`` (same keys; gather a full checkpoint
  with :func:`full_state_dict`).
* **Sharding.** Arrays, tensors, ``Dataset``s and ``DataLoader``s are split
  across processes. ``batch_size`` is the per-process batch, as in torch DDP:
  a step consumes ``world_size * batch_size`` samples (the "global batch"),
  process ``r`` taking the ``r``-th block of it. Every process draws the same
  permutation from a shared seed and ``epoch`` (``set_epoch``). A short last
  global batch is split evenly and the gradient of each process is weighted
  by its share, so training equals one process with the global batch (and a
  mean loss). A ``DataLoader`` that already has a ``DistributedSampler`` is
  used as is for training. ``evaluate`` and ``predict`` count every sample
  exactly once: no padding; a process left without samples in the last step
  runs a placeholder batch whose effects are undone, so collectives still
  line up.
* **Logs.** Losses and metrics are combined by their *states*
  (``metric.variables`` all-reduced with ``metric.state_reduce_ops``), at
  epoch end and at every batch-level callback call, never by averaging
  per-process results. Every process gets the same logs, so callbacks such as
  ``EarlyStopping`` decide the same everywhere. ``predict`` gathers the rows
  of every process and returns them in input order (on every process, or on
  process 0 only with ``predict_outputs="main"``).
* **Output.** The loop adds its progress bar on process 0 only; callbacks
  that write (CSV, TensorBoard, checkpoints) check :func:`is_main_process`
  or use :func:`main_process_only`.

Example (``torchrun --nproc_per_node=2 train.py``)::

    torchfit.distributed.initialize()          # optional: fit() does it under torchrun
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=32)             # 32 per process, 64 per step
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import gc
import inspect
import os
import sys
import warnings
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from . import tree

__all__ = [
    "DataParallel",
    "Distribution",
    "FSDP",
    "PeerProcessError",
    "ShardPlan",
    "all_processes_agree",
    "barrier",
    "device",
    "distribution",
    "full_state_dict",
    "initialize",
    "is_distributed",
    "is_initialized",
    "is_main_process",
    "launched_by_torchrun",
    "local_rank",
    "main_process_only",
    "metrics_result",
    "rank",
    "set_distribution",
    "shutdown",
    "world_size",
]

#: Collective timeout used by :func:`initialize` when none is given: long
#: enough for slow first steps, short enough that a dead peer ends the job.
DEFAULT_TIMEOUT = datetime.timedelta(minutes=10)

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _dist() -> Any:
    import torch.distributed as dist

    return dist


def _received(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} (type {type(value).__name__})"


# ----------------------------------------------------------------------------- process group
def is_initialized() -> bool:
    """Whether a ``torch.distributed`` process group is set up in this process."""
    dist = _dist()
    return bool(dist.is_available() and dist.is_initialized())


def world_size() -> int:
    """Processes in the default group (1 without a process group)."""
    return _dist().get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's rank in the default group (0 without a process group)."""
    return _dist().get_rank() if is_initialized() else 0


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``, set by torchrun; else 0)."""
    value = os.environ.get("LOCAL_RANK", "0")
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"Environment variable `LOCAL_RANK` must be an integer. Received: {value!r}."
        ) from None


def is_main_process() -> bool:
    """True on rank 0, and on a single process. Use it to log or save once."""
    return rank() == 0


def launched_by_torchrun() -> bool:
    """Whether the environment describes a multi-process launch (torchrun's ``env://``)."""
    if not all(name in os.environ for name in _TORCHRUN_VARIABLES):
        return False
    try:
        return int(os.environ["WORLD_SIZE"]) > 1
    except ValueError:
        return False


def is_distributed() -> bool:
    """Whether ``fit``/``evaluate``/``predict`` run their multi-process path.

    True when a process group of more than one process exists; under
    torchrun without one, the group is set up here (:func:`initialize`).
    """
    if is_initialized():
        return _dist().get_world_size() > 1
    if launched_by_torchrun():
        initialize()
        return _dist().get_world_size() > 1
    return False


def device() -> torch.device:
    """The device this process should put its model on: ``cuda:LOCAL_RANK`` when
    CUDA is available (the NCCL convention), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank() % max(torch.cuda.device_count(), 1))
    return torch.device("cpu")


def initialize(
    backend: Optional[str] = None,
    *,
    init_method: Optional[str] = None,
    timeout: Any = None,
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
) -> bool:
    """Set up the default process group; a convenience around ``init_process_group``.

    Args:
        backend: ``"nccl"`` when CUDA is available, else ``"gloo"`` (default).
        init_method: defaults to ``"env://"`` (what torchrun provides).
        timeout: collective timeout, a ``datetime.timedelta`` or seconds
            (default :data:`DEFAULT_TIMEOUT`); a peer that died ends the job
            after it instead of hanging.
        rank, world_size: for launchers that do not set ``RANK``/``WORLD_SIZE``.

    Returns True if a group was created, False if there was nothing to do: a
    group already exists, or this is a single process (no torchrun
    environment and no ``world_size``/``init_method`` given).
    """
    if backend is not None and not isinstance(backend, str):
        raise TypeError(
            'Argument `backend` must be a backend name such as "gloo" or "nccl", or '
            f"None. Received: {_received(backend)}."
        )
    if init_method is not None and not isinstance(init_method, str):
        raise TypeError(
            'Argument `init_method` must be a URL string such as "env://" or '
            f'"tcp://host:port", or None. Received: {_received(init_method)}.'
        )
    timeout = _check_timeout(timeout)
    for name, value, minimum in (("rank", rank, 0), ("world_size", world_size, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"Argument `{name}` must be an integer or None. Received: {_received(value)}.")
        if value is not None and value < minimum:
            raise ValueError(f"Argument `{name}` must be an integer >= {minimum}. Received: {value}.")
    if rank is not None and world_size is not None and rank >= world_size:
        raise ValueError(
            f"Argument `rank` must be smaller than `world_size` ({world_size}). Received: {rank}."
        )
    dist = _dist()
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this build of torch.")
    if dist.is_initialized():
        return False
    if init_method is None and world_size is None and not launched_by_torchrun():
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    if backend == "nccl" and torch.cuda.is_available():
        torch.cuda.set_device(device())
    dist.init_process_group(
        backend=backend, init_method=init_method or "env://", timeout=timeout,
        rank=-1 if rank is None else rank, world_size=-1 if world_size is None else world_size,
    )
    return True


def _check_timeout(timeout: Any) -> datetime.timedelta:
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, datetime.timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(
            "Argument `timeout` must be a datetime.timedelta or a number of seconds. "
            f"Received: {_received(timeout)}."
        )
    if not seconds > 0:
        raise ValueError(f"Argument `timeout` must be positive. Received: {timeout!r}.")
    return datetime.timedelta(seconds=seconds)


def shutdown() -> None:
    """Destroy the default process group, if any (the end of a script).

    Outside an exception, processes first wait for each other (a barrier), and
    objects that hold communication state (DDP wrappers of models that are
    gone) are collected while the group still exists: gloo can abort a process
    whose peer tears down while it still communicates (pytorch#190489).
    """
    if not is_initialized():
        return
    dist = _dist()
    if sys.exc_info()[0] is None and dist.get_world_size() > 1:
        dist.barrier()
    gc.collect()
    dist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (nothing on a single process)."""
    if is_initialized() and _dist().get_world_size() > 1:
        _dist().barrier()


def main_process_only(fn: Callable) -> Callable:
    """Decorator: run ``fn`` on rank 0 only (elsewhere it returns None).

    For callback hooks that write files or print, e.g.::

        class Saver(torchfit.Callback):
            @torchfit.distributed.main_process_only
            def on_epoch_end(self, epoch, logs=None): ...
    """
    if not callable(fn):
        raise TypeError(f"Argument `fn` must be callable. Received: {_received(fn)}.")

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if is_main_process():
            return fn(*args, **kwargs)
        return None

    return wrapper


# ----------------------------------------------------------------------------- distributions
_PREDICT_OUTPUTS = ("all", "main")


class Distribution:
    """How ``fit``/``evaluate``/``predict`` spread over processes (Keras's
    ``keras.distribution`` API). Set one with :func:`set_distribution` or
    ``with distribution.scope():``; without one, :class:`DataParallel` is used
    whenever several processes run.

    Args:
        seed: seed of the shared shuffling (same on every process); None draws
            one on rank 0 (from torch's global generator) and broadcasts it.
        reduce_batch_logs: combine the metric states across processes for
            batch-level callbacks too (one small all-reduce per
            ``steps_per_execution`` steps). With False, batch logs are the
            process's own; epoch logs are always global.
        predict_outputs: ``"all"`` (every process gets the whole prediction)
            or ``"main"`` (rank 0 gets it, the others None).
    """

    def __init__(self, *, seed: Optional[int] = None, reduce_batch_logs: bool = True,
                 predict_outputs: str = "all") -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise TypeError(
                f"Argument `seed` must be a non-negative integer or None. Received: {_received(seed)}."
            )
        if not isinstance(reduce_batch_logs, bool):
            raise TypeError(
                f"Argument `reduce_batch_logs` must be True or False. Received: {_received(reduce_batch_logs)}."
            )
        if predict_outputs not in _PREDICT_OUTPUTS:
            raise ValueError(
                f'Argument `predict_outputs` must be "all" or "main". Received: {_received(predict_outputs)}.'
            )
        self.seed = seed
        self.reduce_batch_logs = reduce_batch_logs
        self.predict_outputs = predict_outputs

    def prepare(self, model: nn.Module) -> None:
        """Called at the start of every fit/evaluate/predict on every process."""

    def train_forward(self, model: nn.Module) -> Callable:
        """The callable the train step's forward goes through."""
        return model

    @contextlib.contextmanager
    def scope(self) -> Iterator["Distribution"]:
        """Make this the distribution inside a ``with`` block."""
        global _DISTRIBUTION
        previous, _DISTRIBUTION = _DISTRIBUTION, self
        try:
            yield self
        finally:
            _DISTRIBUTION = previous

    def _options(self) -> str:
        return (f"seed={self.seed}, reduce_batch_logs={self.reduce_batch_logs}, "
                f"predict_outputs={self.predict_outputs!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._options()})"


def _ddp_class() -> type:
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel


def _ddp_parameters() -> List[str]:
    return [p for p in inspect.signature(_ddp_class().__init__).parameters
            if p not in ("self", "module")]


class DataParallel(Distribution):
    """Data parallelism with ``torch.nn.parallel.DistributedDataParallel``.

    Args:
        module: an existing ``DistributedDataParallel`` around the model to
            use as is (its ``.module`` must be the model that is fitted).
        seed, reduce_batch_logs, predict_outputs: see :class:`Distribution`.
        **ddp_kwargs: passed to ``DistributedDataParallel`` (for example
            ``find_unused_parameters=True``, ``broadcast_buffers=False``,
            ``gradient_as_bucket_view=True``). ``device_ids`` defaults to the
            model's CUDA device.
    """

    def __init__(self, module: Optional[nn.Module] = None, *, seed: Optional[int] = None,
                 reduce_batch_logs: bool = True, predict_outputs: str = "all",
                 **ddp_kwargs: Any) -> None:
        super().__init__(seed=seed, reduce_batch_logs=reduce_batch_logs,
                         predict_outputs=predict_outputs)
        if module is not None and not isinstance(module, _ddp_class()):
            raise TypeError(
                "Argument `module` must be a torch.nn.parallel.DistributedDataParallel "
                f"instance or None. Received: {_received(module)}."
            )
        allowed = _ddp_parameters()
        unknown = sorted(set(ddp_kwargs) - set(allowed))
        if unknown:
            raise TypeError(
                f"Unknown DistributedDataParallel arguments {unknown}. Expected some of "
                f"{allowed}."
            )
        if module is not None and ddp_kwargs:
            raise ValueError(
                "Arguments `module` and DistributedDataParallel options cannot be given "
                f"together: the given wrapper is used as is. Received options {sorted(ddp_kwargs)}."
            )
        self.module = module
        self.ddp_kwargs = ddp_kwargs

    def prepare(self, model: nn.Module) -> None:
        if self.module is not None and self.module.module is not model:
            raise ValueError(
                "Argument `module` of DataParallel must wrap the model being trained. "
                f"Expected a DistributedDataParallel whose .module is this "
                f"{type(model).__name__}; received one around a "
                f"{type(self.module.module).__name__}."
            )
        cache = _cache(model)
        if not cache.get("synced") and not isinstance(model, _ddp_class()) and not _is_fsdp_module(model):
            _broadcast_module(model)  # as DDP's constructor does: everyone starts from rank 0
            cache["synced"] = True

    def train_forward(self, model: nn.Module) -> Callable:
        if self.module is not None:
            return self.module
        ddp = _ddp_class()
        if isinstance(model, ddp):  # keras_style(DistributedDataParallel(net))
            return model
        if _is_fsdp_module(model):
            return model
        cache = _cache(model)
        key = (tuple(id(p) for p in model.parameters()), repr(sorted(self.ddp_kwargs.items())))
        entry = cache.get("ddp")
        if entry is None or entry[0] != key:
            kwargs = dict(self.ddp_kwargs)
            first = next(model.parameters(), None)
            if first is not None and first.device.type == "cuda" and "device_ids" not in kwargs:
                kwargs["device_ids"] = [first.device]
            entry = (key, ddp(model, **kwargs))
            cache["ddp"] = entry
        return entry[1]

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in sorted(self.ddp_kwargs.items()))
        wrapped = "module=<DistributedDataParallel>, " if self.module is not None else ""
        return f"DataParallel({wrapped}{self._options()}{extra})"


def _fsdp_api() -> Tuple[Any, Any]:
    try:
        from torch.distributed.fsdp import FSDPModule, fully_shard
    except ImportError:  # pragma: no cover - torch < 2.6
        from torch.distributed._composable.fsdp import FSDPModule, fully_shard  # type: ignore
    return FSDPModule, fully_shard


def _is_fsdp_module(model: nn.Module) -> bool:
    try:
        fsdp_module, _ = _fsdp_api()
    except ImportError:  # pragma: no cover
        return False
    if isinstance(model, fsdp_module):
        return True
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel
    except ImportError:  # pragma: no cover
        return False
    return isinstance(model, FullyShardedDataParallel)


class FSDP(Distribution):
    """Fully sharded data parallelism with ``torch.distributed.fsdp.fully_shard``.

    The model is sharded in place the first time it is used (parameters become
    ``DTensor`` shards, ``state_dict()`` keys stay the same) and the optimizer
    set by ``compile`` is re-pointed at the sharded parameters, so call
    ``compile`` before the first ``fit`` as usual. A model the user already
    sharded is used as is. Gather a full checkpoint with :func:`full_state_dict`.

    Args:
        modules: which submodules get their own ``fully_shard`` before the
            root: a module class, a tuple of classes, or a predicate
            ``fn(module) -> bool``; None shards the root only.
        seed, reduce_batch_logs, predict_outputs: see :class:`Distribution`.
        **fully_shard_kwargs: passed to ``fully_shard`` (``mesh``,
            ``reshard_after_forward``, ``mp_policy``, ``offload_policy``...).
    """

    def __init__(self, modules: Any = None, *, seed: Optional[int] = None,
                 reduce_batch_logs: bool = True, predict_outputs: str = "all",
                 **fully_shard_kwargs: Any) -> None:
        super().__init__(seed=seed, reduce_batch_logs=reduce_batch_logs,
                         predict_outputs=predict_outputs)
        classes = modules if isinstance(modules, tuple) else (modules,)
        ok = modules is None or (not isinstance(modules, type) and callable(modules)) or all(
            isinstance(c, type) and issubclass(c, nn.Module) for c in classes)
        if not ok:
            raise TypeError(
                "Argument `modules` must be None, an nn.Module subclass, a tuple of them, "
                f"or a predicate fn(module) -> bool. Received: {_received(modules)}."
            )
        _, fully_shard = _fsdp_api()
        allowed = [p for p in inspect.signature(fully_shard).parameters if p != "module"]
        unknown = sorted(set(fully_shard_kwargs) - set(allowed))
        if unknown:
            raise TypeError(f"Unknown fully_shard arguments {unknown}. Expected some of {allowed}.")
        self.modules = modules
        self.fully_shard_kwargs = fully_shard_kwargs

    def _selected(self, module: nn.Module) -> bool:
        if self.modules is None:
            return False
        if isinstance(self.modules, (type, tuple)):
            return isinstance(module, self.modules)
        return bool(self.modules(module))

    def prepare(self, model: nn.Module) -> None:
        if _is_fsdp_module(model):
            return
        _, fully_shard = _fsdp_api()
        names = {id(p): name for name, p in model.named_parameters()}
        _broadcast_module(model)  # shards of one model, not of one model per rank
        for name, sub in reversed(list(model.named_modules())):
            if sub is not model and self._selected(sub):
                fully_shard(sub, **self.fully_shard_kwargs)
        fully_shard(model, **self.fully_shard_kwargs)
        _repoint_optimizer(model, names)

    def train_forward(self, model: nn.Module) -> Callable:
        from .optimizers import Optimizer as KerasRuleOptimizer

        optimizer = getattr(model, "optimizer", None)
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        if isinstance(inner, KerasRuleOptimizer):
            raise TypeError(
                "Argument `optimizer` of compile() must be a torch.optim optimizer when "
                "training with FSDP: torchfit's Keras-rule optimizers update parameters "
                "with foreach kernels that FSDP's DTensor shards do not support. Received "
                f"torchfit.optimizers.{type(inner).__name__}; pass e.g. "
                "torch.optim.Adam(model.parameters()) instead."
            )
        return model

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in sorted(self.fully_shard_kwargs.items()))
        return f"FSDP(modules={self.modules!r}, {self._options()}{extra})"


def _repoint_optimizer(model: nn.Module, old_names: Dict[int, str]) -> None:
    """After in-place sharding, make the compiled optimizer hold the new parameters."""
    state = model.__dict__.get("_torchfit")
    optimizer = getattr(state, "optimizer", None)
    if optimizer is None:
        return
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    new = dict(model.named_parameters())
    if any(len(s) for s in inner.state.values()):
        raise ValueError(
            "FSDP must shard the model before its first training step: the optimizer "
            "already holds state for the unsharded parameters. Expected a freshly "
            "compiled model; call compile() again after set_distribution(FSDP())."
        )
    mapping: Dict[int, torch.Tensor] = {}
    for group in inner.param_groups:
        params = []
        for p in group["params"]:
            name = old_names.get(id(p))
            if name is None or name not in new:
                raise ValueError(
                    "FSDP could not match an optimizer parameter to the sharded model "
                    f"(a parameter of shape {tuple(p.shape)} is not one of the model's). "
                    "Expected an optimizer over the model's own parameters."
                )
            mapping[id(p)] = new[name]
            params.append(new[name])
        group["params"] = params
    inner.state.clear()
    excluded = getattr(inner, "_exclude_ids", None)
    if excluded:
        inner._exclude_ids = {id(mapping[i]) for i in excluded if i in mapping}


_DISTRIBUTION: Optional[Distribution] = None


def set_distribution(value: Optional[Distribution]) -> None:
    """Set the distribution used by every later ``fit``/``evaluate``/``predict``
    (``keras.distribution.set_distribution``); None restores the default."""
    global _DISTRIBUTION
    if value is not None and not isinstance(value, Distribution):
        raise TypeError(
            "Argument `value` must be a torchfit.distributed.Distribution "
            "(DataParallel(...) or FSDP(...)) or None. Received: "
            f"{_received(value)}."
        )
    _DISTRIBUTION = value


def distribution() -> Optional[Distribution]:
    """The distribution set with :func:`set_distribution` (or a ``scope``), else None."""
    return _DISTRIBUTION


def _cache(model: nn.Module) -> Dict[str, Any]:
    """torchfit's per-model cache (the DDP wrapper...), kept in the model's
    TrainingState: never registered on the module, dropped by ``compile``."""
    state = getattr(model, "_torchfit", None)
    if state is None:  # a plain module (not keras-style)
        return {}
    cache = getattr(state, "distributed", None)
    if cache is None:
        cache = {}
        state.distributed = cache
    return cache


def _comm_device() -> torch.device:
    dist = _dist()
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _broadcast_module(model: nn.Module) -> None:
    """Rank 0's parameters and buffers to every process (in place)."""
    dist = _dist()
    comm = _comm_device()
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.device == comm:
                dist.broadcast(tensor.data, src=0)
            else:
                moved = tensor.data.to(comm)
                dist.broadcast(moved, src=0)
                tensor.data.copy_(moved)


def full_state_dict(model: nn.Module) -> Dict[str, Any]:
    """A checkpoint that loads into the plain, unwrapped model.

    Without FSDP this is ``model.state_dict()`` (DDP keeps identical full
    weights on every process, and torchfit never adds a ``module.`` prefix).
    With FSDP the shards are gathered (a collective: call it on every process)
    into full CPU tensors, returned on rank 0 (other processes get ``{}``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Argument `model` must be a torch.nn.Module. Received: {_received(model)}.")
    if not (is_initialized() and _is_fsdp_module(model)):
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


# ----------------------------------------------------------------------------- routing
#: ``id(model) -> callable`` while a distributed train step runs: ``call_model``
#: (module.py) calls the model through it, so DDP's hooks see the forward.
ROUTES: Dict[int, Callable] = {}


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


def all_processes_agree(flag: bool) -> bool:
    """True only if ``flag`` is True on every process (a collective; ``flag`` on
    a single process). The train step uses it so that a loss that is not finite
    on one process makes every process skip the step (``nan_policy``)."""
    if not (is_initialized() and _dist().get_world_size() > 1):
        return bool(flag)
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_comm_device())
    _dist().all_reduce(value, op=_dist().ReduceOp.MIN)
    return bool(value.item())


# ----------------------------------------------------------------------------- sharding plan
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


def _data_classes() -> Dict[str, type]:
    from .data.adapter import DataAdapter
    from .data.arrays import ArrayDataAdapter
    from .data.torch_data import TorchDataLoaderAdapter

    return {"DataAdapter": DataAdapter, "ArrayDataAdapter": ArrayDataAdapter,
            "TorchDataLoaderAdapter": TorchDataLoaderAdapter}


def _make_sharded_arrays(source: Any, plan: ShardPlan, shuffle: Any, seed: Callable[[], int]) -> Any:
    base = _data_classes()["DataAdapter"]

    class ShardedArrays(base):  # type: ignore[misc, valid-type]
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
                leaves = [None if t is None else t.index_select(0, index) for t in leaves]
                offset, spans = 0, []
                for lo, hi, _ in pieces:
                    spans.append((offset, offset + hi - lo))
                    offset += hi - lo
            else:
                spans = [(lo, hi) for lo, hi, _ in pieces]
            for lo, hi in spans:
                sliced = [None if t is None else t[lo:hi] for t in leaves]
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
    from torch.utils.data import DataLoader

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
    base = _data_classes()["DataAdapter"]

    class MarkedBatches(base):  # type: ignore[misc, valid-type]
        """Wraps the outermost adapter: batches of marked steps become ``ShardBatch``es."""

        def __init__(self) -> None:
            self.inner, self.plan = top, plan

        @property
        def num_batches(self) -> Optional[int]:
            return self.inner.num_batches

        @property
        def num_samples(self) -> Optional[int]:
            return self.inner.num_samples

        @property
        def batch_size(self) -> Optional[int]:
            return self.inner.batch_size

        def on_epoch_begin(self) -> None:
            self.inner.on_epoch_begin()

        def on_epoch_end(self) -> None:
            self.inner.on_epoch_end()

        def get_iterator(self) -> Iterator[Any]:
            for step, batch in enumerate(self.inner.get_iterator()):
                if step < plan.steps and plan.marked(step):
                    _, _, real = plan.piece(step)
                    yield ShardBatch(batch, real, plan.total(step))
                else:
                    yield batch

    return MarkedBatches()


# ----------------------------------------------------------------------------- session
#: Callbacks that only write files: run on rank 0 only.
MAIN_PROCESS_CALLBACKS = ("CSVLogger", "TensorBoard", "ModelCheckpoint")


def loop_session(model: nn.Module) -> Optional["Session"]:
    """The distributed side of one ``Loop`` (fit/evaluate/predict), or None on a
    single process: then the loop runs exactly its single-process path."""
    if not is_distributed():
        return None
    chosen = _DISTRIBUTION
    if chosen is None:  # a model the user sharded with FSDP stays FSDP
        chosen = FSDP() if _is_fsdp_module(model) else DataParallel()
    return Session(model, chosen)


class Session:
    """Per-``Loop`` state: shards inputs, wraps step functions, reduces logs."""

    def __init__(self, model: nn.Module, distribution: Distribution) -> None:
        dist = _dist()
        self.model = model
        self.distribution = distribution
        self.world = dist.get_world_size()
        self.rank = dist.get_rank()
        self._seed: Optional[int] = distribution.seed
        self._plans: Dict[str, Optional[ShardPlan]] = {}
        self._equal_steps: Dict[str, bool] = {}
        self._epoch_targets: List[Any] = []
        self._mode = "train"
        self._placeholders: set = set()
        self._pending: Optional[ShardBatch] = None
        distribution.prepare(model)

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
        classes = _data_classes()
        parents, node = [], adapter
        while isinstance(getattr(node, "inner", None), classes["DataAdapter"]):
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
        classes = _data_classes()
        if isinstance(source, classes["ArrayDataAdapter"]):
            plan = ShardPlan(source.num_samples, source.batch_size, self.world, self.rank)
            sharded = _make_sharded_arrays(source, plan, shuffle, self.seed)
            if role == "train":
                self._epoch_targets.append(sharded)
            return sharded, plan, True
        if isinstance(source, classes["TorchDataLoaderAdapter"]):
            loader = getattr(source, "loader", None) or getattr(source, "_loader")
            return self._shard_loader(loader, role, classes["TorchDataLoaderAdapter"])
        _warn_unsharded(type(source).__name__)
        return None, None, False

    def _shard_loader(self, loader: Any, role: str,
                      adapter_class: type) -> Tuple[Any, Optional[ShardPlan], bool]:
        from torch.utils.data import (BatchSampler, DistributedSampler, IterableDataset, RandomSampler,
                                      SequentialSampler)

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

    # -- callbacks ----------------------------------------------------------------------
    def local_callbacks(self, callbacks: Any) -> Any:
        """The user's callbacks for this process: on ranks other than 0, the
        ones that only write files (CSVLogger, TensorBoard, ModelCheckpoint, and
        any callback with ``main_process_only = True``) are left out."""
        from . import callbacks as callbacks_module

        if self.rank == 0 or callbacks is None:
            return callbacks
        if isinstance(callbacks, callbacks_module.Callback):
            items = [callbacks]
        elif isinstance(callbacks, (list, tuple)):
            items = list(callbacks)
        else:
            return callbacks  # CallbackList reports the bad argument
        writers = tuple(getattr(callbacks_module, name) for name in MAIN_PROCESS_CALLBACKS
                        if isinstance(getattr(callbacks_module, name, None), type))
        return [c for c in items
                if not (isinstance(c, writers) or getattr(c, "main_process_only", False) is True)]

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
    def gather_outputs(self, outputs: List[Any]) -> Any:
        """Every process's predictions, concatenated in input order."""
        from .loop import concat_outputs

        real = [out for out in outputs if id(out) not in self._placeholders]
        local = concat_outputs(real) if real else tree.map_structure(_no_rows, concat_outputs(outputs[:1]))
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


class PeerProcessError(RuntimeError):
    """Raised on a process whose collective broke because another process failed."""

    def __init__(self, origin: int, message: str, own: BaseException) -> None:
        super().__init__(
            f"Process {origin} failed first: {message}\n(this process then stopped with "
            f"{type(own).__name__}: {str(own)[:300]})")
        self.origin = origin


_ERROR_KEY = "torchfit/first_error"


def _store() -> Any:
    try:
        from torch.distributed.distributed_c10d import _get_default_store

        return _get_default_store()
    except Exception:  # no store (e.g. a group without one): errors stay local
        return None


def _publish_error(origin: int, error: BaseException) -> None:
    store = _store()
    if store is None:
        return
    try:
        if store.add(_ERROR_KEY + "/count", 1) == 1:
            store.set(_ERROR_KEY, f"{origin}\n{type(error).__name__}: {error}")
    except Exception:
        pass


def _published_error() -> Optional[Tuple[int, str]]:
    store = _store()
    if store is None:
        return None
    try:
        if not store.check([_ERROR_KEY]):
            return None
        origin, message = store.get(_ERROR_KEY).decode("utf-8", "replace").split("\n", 1)
        return int(origin), message
    except Exception:
        return None


def _gather_rows(leaf: np.ndarray, counts: List[int], comm: torch.device) -> np.ndarray:
    """All-gather the rows of one output leaf (padded to the longest, then cut)."""
    dist = _dist()
    is_bool = leaf.dtype == np.bool_
    tensor = torch.from_numpy(np.ascontiguousarray(leaf.astype(np.uint8) if is_bool else leaf))
    longest = max(counts)
    if tensor.shape[0] < longest:
        pad = torch.zeros((longest - tensor.shape[0],) + tuple(tensor.shape[1:]), dtype=tensor.dtype)
        tensor = torch.cat([tensor, pad])
    tensor = tensor.to(comm)
    pieces = [torch.empty_like(tensor) for _ in counts]
    dist.all_gather(pieces, tensor)
    joined = torch.cat([p[:n] for p, n in zip(pieces, counts)]).cpu().numpy()
    return joined.astype(np.bool_) if is_bool else joined


def _no_rows(value: Any) -> Any:
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim:
        return value[:0]
    return value


_WARNED: set = set()


def _warn_unsharded(kind: str) -> None:
    if kind in _WARNED:
        return
    _WARNED.add(kind)
    warnings.warn(
        f"torchfit.distributed does not shard a {kind}: every process reads it as it "
        "is. Make each process read its own part (and, for training, the same number "
        "of batches on every process), e.g. with a DistributedSampler.",
        UserWarning, stacklevel=4,
    )


def _raise_unrouted(model: nn.Module) -> None:
    raise RuntimeError(
        f"{type(model).__name__}.train_step ran without calling the model through "
        "torchfit's `call_model`, so DistributedDataParallel saw no forward pass and "
        "the gradients would not be synchronized across processes. In an overridden "
        "train_step, compute predictions with `torchfit.module.call_model(self, x)` "
        "instead of `self(x)`."
    )


# ----------------------------------------------------------------------------- metric states
def _leaf_metrics(model: Any) -> List[Any]:
    """``model.metrics`` with containers (``compile_metrics``) expanded."""
    found: List[Any] = []
    for metric in getattr(model, "metrics", []):
        inner = getattr(metric, "metrics", None)
        found.extend(inner if isinstance(inner, list) else [metric])
    return found


def _state_metrics(model: Any) -> List[Any]:
    return [m for m in _leaf_metrics(model) if hasattr(m, "variables")
            and hasattr(m, "state_reduce_ops")]


_REDUCE_OPS = {"sum": "SUM", "mean": "SUM", "max": "MAX", "min": "MIN"}


def metrics_result(model: Any) -> Dict[str, Any]:
    """``model.get_metrics_result()`` computed from the states of every process.

    Each metric's ``variables`` are all-reduced (one collective per reduce op
    and dtype) with its ``state_reduce_ops``; the results are computed from
    the combined states, then every process's own states are put back, so
    accumulation goes on locally. A collective: call it on every process.
    On a single process it is ``model.get_metrics_result()``.
    """
    if not hasattr(model, "get_metrics_result"):
        raise TypeError(
            "Argument `model` must be a keras-style model (with get_metrics_result). "
            f"Received: {_received(model)}."
        )
    if not (is_initialized() and _dist().get_world_size() > 1):
        return model.get_metrics_result()
    dist = _dist()
    comm = _comm_device()
    world = dist.get_world_size()
    groups: Dict[Tuple[str, str], List[torch.Tensor]] = {}
    for metric in _state_metrics(model):
        for value, op in zip(metric.variables, metric.state_reduce_ops):
            if op in _REDUCE_OPS:
                groups.setdefault((op, str(value.dtype)), []).append(value)
    saved: List[Tuple[torch.Tensor, torch.Tensor]] = []
    with torch.no_grad():
        try:
            for (op, _), tensors in sorted(groups.items()):
                flat = torch.cat([t.detach().reshape(-1).to(comm) for t in tensors])
                wire = flat.to(torch.int64) if flat.dtype == torch.bool else flat
                dist.all_reduce(wire, op=getattr(dist.ReduceOp, _REDUCE_OPS[op]))
                if op == "mean":
                    wire = wire / world
                offset = 0
                for t in tensors:
                    saved.append((t, t.detach().clone()))
                    n = t.numel()
                    t.copy_(wire[offset:offset + n].view(t.shape).to(t.dtype))
                    offset += n
            results = model.get_metrics_result()
            results = {k: v.detach().clone() if isinstance(v, torch.Tensor) else v
                       for k, v in results.items()}
        finally:
            for t, local in saved:
                t.copy_(local)
    return results


def _save_metric_states(model: Any) -> Dict[int, Tuple[Any, Any]]:
    saved: Dict[int, Tuple[Any, Any]] = {}
    for metric in _leaf_metrics(model):
        if hasattr(metric, "variables"):
            saved[id(metric)] = (metric, [v.detach().clone() for v in metric.variables])
        elif hasattr(getattr(metric, "metric", None), "_defaults"):  # torchmetrics
            inner = metric.metric
            saved[id(metric)] = (metric, {k: _copy_state(getattr(inner, k)) for k in inner._defaults})
    return saved


def _copy_state(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, list):
        return [_copy_state(v) for v in value]
    return value


def _restore_metric_states(model: Any, saved: Dict[int, Tuple[Any, Any]]) -> None:
    """Undo a placeholder batch: states as saved; metrics built by it start empty."""
    with torch.no_grad():
        for metric in _leaf_metrics(model):
            entry = saved.get(id(metric))
            if entry is None:
                metric.reset_state()
            elif isinstance(entry[1], dict):
                inner = metric.metric
                for name, value in entry[1].items():
                    setattr(inner, name, value)
                if hasattr(inner, "_computed"):
                    inner._computed = None
            else:
                for value, local in zip(metric.variables, entry[1]):
                    value.copy_(local)
