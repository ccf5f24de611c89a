"""Errors and warnings of the distributed path, and how a failure is shared.

The first process that fails records its error in the process group's store;
a process whose collective then breaks reports that error instead of its own
broken connection (:class:`PeerProcessError`).
"""

from __future__ import annotations

import warnings
from typing import Any, Optional, Tuple

from torch import nn


def _received(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} (type {type(value).__name__})"


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
