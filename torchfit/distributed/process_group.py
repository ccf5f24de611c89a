"""The process group: set-up, detection, rank helpers and tear-down.

Everything here works without a process group too: a single process is rank 0
of a world of one, and the collectives are skipped.
"""

from __future__ import annotations

import datetime
import functools
import gc
import os
import sys
from typing import Any, Callable, Optional

import torch

from .errors import _received


#: Collective timeout used by :func:`initialize` when none is given: long
#: enough for slow first steps, short enough that a dead peer ends the job.
DEFAULT_TIMEOUT = datetime.timedelta(minutes=10)

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _dist() -> Any:
    import torch.distributed as dist

    return dist


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


def _comm_device() -> torch.device:
    dist = _dist()
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
