"""Training logs: batch logs computed only when read, and their conversion to Python.

A built-in step returns :class:`LazyLogs` instead of a dict of metric results:
computing every metric's ``result()`` costs a few kernels per metric, and most
batches' logs are never read (no callback looks at them, or only a progress
bar refreshed a few times a second). The values are computed on first access,
from the metric states as they are *then*; so the loop hands a ``LazyLogs`` on
only to readers that use it before the next step (see
:attr:`torchfit.callbacks.Callback.reads_batch_logs_immediately`) and gives
everyone else a plain dict.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Callable, Dict, Iterator, Optional

import numbers

import numpy as np
import torch

__all__ = ["LazyLogs", "materialize", "flatten_logs", "to_python", "tensor_to_numpy"]


class LazyLogs(MutableMapping):
    """A mapping of log name to value whose values come from ``compute()`` on first use.

    It behaves as the dict ``compute()`` returns: reading, iterating or
    changing it computes the values once and works on them from then on.
    """

    __slots__ = ("_compute", "_values")

    def __init__(self, compute: Callable[[], Mapping]) -> None:
        self._compute: Optional[Callable[[], Mapping]] = compute
        self._values: Optional[Dict[str, Any]] = None

    @property
    def pending(self) -> bool:
        """True until the values have been computed."""
        return self._values is None

    def values_dict(self) -> Dict[str, Any]:
        """The values (computed now if still pending), as the dict that backs this mapping."""
        if self._values is None:
            compute, self._compute = self._compute, None
            self._values = dict(compute())
        return self._values

    def __getitem__(self, key: str) -> Any:
        return self.values_dict()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.values_dict()[key] = value

    def __delitem__(self, key: str) -> None:
        del self.values_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values_dict())

    def __len__(self) -> int:
        return len(self.values_dict())

    def __repr__(self) -> str:
        return "LazyLogs(<pending>)" if self.pending else f"LazyLogs({self._values!r})"


def materialize(logs: Any) -> Any:
    """A plain dict for ``LazyLogs`` (computed now, a copy); anything else unchanged."""
    return dict(logs.values_dict()) if isinstance(logs, LazyLogs) else logs


def flatten_logs(logs: Mapping) -> Dict[str, Any]:
    """Dict values are merged into the top level (e.g. ``{"compile_metrics": {...}}``
    returned by a custom step), as Keras does before logs reach callbacks."""
    flat: Dict[str, Any] = {}
    for key, value in logs.items():
        if isinstance(value, Mapping):
            flat.update(flatten_logs(value))
        else:
            flat[key] = value
    return flat


def tensor_to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """NumPy has no bfloat16: those outputs come back as float32."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


def to_python(logs: Mapping) -> Dict[str, Any]:
    """Epoch-level logs as floats (the one host sync per epoch), sorted by name
    as Keras hands them to callbacks."""
    out = {}
    for key, value in sorted(flatten_logs(logs).items()):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            out[key] = float(value.detach().cpu())
        elif isinstance(value, torch.Tensor):
            out[key] = tensor_to_numpy(value)
        else:
            out[key] = value
    return out


def as_float(value: Any) -> Any:
    """A log value as a Python float when it is a scalar (0-d tensors, NumPy
    scalars, 1-element arrays); anything else is returned unchanged."""
    if isinstance(value, float):
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Real):
        return float(value)
    numel = getattr(value, "numel", None)
    if callable(numel) and numel() == 1:
        return float(value.detach().cpu()) if hasattr(value, "detach") else float(value)
    size = getattr(value, "size", None)
    if isinstance(size, int) and size == 1:
        return float(value)
    return value
