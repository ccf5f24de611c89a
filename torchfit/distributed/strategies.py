"""Distributions: how ``fit``/``evaluate``/``predict`` spread over processes.

:class:`DataParallel` (DDP) and :class:`FSDP`, the current distribution
(:func:`set_distribution`, ``Distribution.scope``) and the model-side helpers
they need (rank 0's weights broadcast, the per-model cache, full checkpoints).
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn

from .. import state as training_state
from ..optimizers._unwrap import unwrap_loss_scale
from .errors import _received
from .process_group import _comm_device, _dist, is_initialized


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

    Subclasses must pass the keyword arguments above on to
    ``super().__init__``. They may provide ``prepare(model)`` (called at the
    start of every fit/evaluate/predict on every process: wrap or shard the
    model there) and ``train_forward(model)`` (the callable the train step's
    forward goes through; default: the model itself).
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

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in sorted(self.fully_shard_kwargs.items()))
        return f"FSDP(modules={self.modules!r}, {self._options()}{extra})"


def _repoint_optimizer(model: nn.Module, old_names: Dict[int, str]) -> None:
    """After in-place sharding, make the compiled optimizer hold the new parameters."""
    state = training_state.of(model)
    optimizer = state.compiled.optimizer if state is not None else None
    if optimizer is None:
        return
    inner = unwrap_loss_scale(optimizer)
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
    state = training_state.of(model)
    if state is None:  # a plain module (not keras-style)
        return {}
    return state.compiled.distributed


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


def _gathers_checkpoints(model: nn.Module) -> bool:
    """Whether a checkpoint of ``model`` must be gathered by every process: an
    FSDP-sharded model over several processes (each holds a shard only)."""
    return is_initialized() and _dist().get_world_size() > 1 and _is_fsdp_module(model)


def _full_optimizer_state_dict(model: nn.Module, optimizer: Any) -> Dict[str, Any]:
    """The FSDP optimizer's state with full CPU tensors, in torch's own layout
    (parameters numbered in ``param_groups`` order, as ``Optimizer.state_dict``
    does), so it loads into the same optimizer over the plain model. A
    collective like :func:`full_state_dict`: rank 0 gets it, the others ``{}``.
    A loss-scale wrapper keeps its own layout (``{"inner", "scaler"}``)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    inner = unwrap_loss_scale(optimizer)
    full = get_optimizer_state_dict(
        model, inner, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    if _dist().get_rank() != 0:
        return {}
    ids: Dict[Any, int] = {}
    groups = []
    start = 0
    for group in full["param_groups"]:
        for index, name in enumerate(group["params"], start):
            ids.setdefault(name, index)
        groups.append({**group, "params": [ids[name] for name in group["params"]]})
        start += len(group["params"])
    state = {"state": {ids[name]: value for name, value in full["state"].items()},
             "param_groups": groups}
    if inner is optimizer:
        return state
    wrapped = optimizer.state_dict()
    wrapped["inner"] = state
    return wrapped
