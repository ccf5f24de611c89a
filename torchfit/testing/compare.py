"""Exact snapshots and comparisons of weights, outputs and optimizer states
(NaN equals NaN), behind the assertion helpers."""

from __future__ import annotations

import collections.abc
import functools
import math
import numbers
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from .. import tree


def _snapshot(value: Any, argument: str) -> Any:
    """A detached copy of weights / outputs, for exact comparison later."""
    return tree.map_structure(functools.partial(_snapshot_leaf, argument), value)


def _snapshot_leaf(argument: str, value: Any) -> Any:
    if isinstance(value, (nn.Module, torch.optim.Optimizer)):
        return _snapshot(value.state_dict(), argument)
    if isinstance(value, collections.abc.Mapping):  # not a dict (those are walked): one as a dict
        return _snapshot(dict(value), argument)
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if value is None or isinstance(value, (numbers.Number, str, bytes, np.generic)):
        return value
    raise TypeError(
        f"{argument} must be a module, an optimizer, a tensor, a NumPy array, a number, or "
        f"a dict/list/tuple of these. Received a value of type {type(value).__name__}."
    )


def _tensor_difference(a: torch.Tensor, b: torch.Tensor) -> Optional[str]:
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} != {b.dtype}"
    if a.shape != b.shape:
        return f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    a, b = a.detach().cpu(), b.detach().cpu()
    if a.is_floating_point() or a.is_complex():
        same = (a == b) | (torch.isnan(a) & torch.isnan(b))
    else:
        same = a == b
    if bool(same.all()):
        return None
    count = int((~same).sum())
    detail = f"{count} of {a.numel()} values differ"
    if a.is_floating_point():
        diff = (a.double() - b.double()).abs()
        finite = diff[torch.isfinite(diff)]
        if finite.numel():
            detail += f", max abs difference {float(finite.max()):.3g}"
    return detail


def _first_difference(a: Any, b: Any, path: str = "") -> Optional[str]:
    """Where and how two snapshots differ (exactly; NaN equals NaN), or None."""
    where = path or "<root>"
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return f"{where}: {type(a).__name__} != {type(b).__name__}"
        detail = _tensor_difference(a, b)
        return None if detail is None else f"{where}: {detail}"
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return f"{where}: {type(a).__name__} != {type(b).__name__}"
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{where}: dtype/shape {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        if a.dtype.kind in "fc":
            equal = bool(np.array_equal(a, b, equal_nan=True))
        else:
            equal = bool(np.array_equal(a, b))
        if equal:
            return None
        detail = _tensor_difference(torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))) \
            if a.dtype.kind in "biufc" else "values differ"
        return f"{where}: {detail}"
    if isinstance(a, collections.abc.Mapping) and isinstance(b, collections.abc.Mapping):
        keys_a, keys_b = list(a), list(b)
        if keys_a != keys_b:
            missing = [k for k in keys_a if k not in b]
            extra = [k for k in keys_b if k not in a]
            if missing or extra:
                return f"{where}: keys differ (only in the first: {missing}; only in the second: {extra})"
            return f"{where}: key order differs ({keys_a} != {keys_b})"
        for key in keys_a:
            found = _first_difference(a[key], b[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return f"{where}: {type(a).__name__} of length {len(a)} != {type(b).__name__} of length {len(b)}"
        for index, (item_a, item_b) in enumerate(zip(a, b)):
            found = _first_difference(item_a, item_b, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return None
    if type(a) is not type(b) or a != b:
        return f"{where}: {a!r} != {b!r}"
    return None
