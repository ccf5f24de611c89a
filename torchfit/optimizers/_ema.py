"""Exponential moving averages of the weights (Keras's ``use_ema``).

The averages live in each parameter's optimizer state under ``"average"``;
:class:`~torchfit.optimizers.Optimizer` exposes these operations as its
methods (``swap_ema_weights``, ``finalize_variable_values``...). Every
function takes the tensors it works on and writes them in place.
"""

import collections
from typing import List, Optional, Sequence

import torch

from ._foreach import copy_into
from ._validation import _cast_scalar

# State key of a parameter's moving average.
EMA_KEY = "average"


def swap(params: Sequence[torch.Tensor], averages: Sequence[torch.Tensor]) -> None:
    """Exchange the values of ``params`` and ``averages`` in place."""
    if not params:
        return
    saved = [p.detach().clone() for p in params]
    copy_into(params, averages)
    copy_into(averages, saved)


def update_(
    averages: List[torch.Tensor],
    params: List[torch.Tensor],
    momentum: float,
) -> None:
    """``average <- m * average + (1 - m) * weight`` in place, ``m`` cast to
    each weight's dtype as Keras evaluates it (``m = 0`` on the first step,
    so that the average starts at the weights)."""
    by_dtype = collections.defaultdict(list)
    for index, p in enumerate(params):
        by_dtype[p.dtype].append(index)
    for dtype, indices in by_dtype.items():
        weight = _cast_scalar(1.0 - _cast_scalar(momentum, dtype), dtype)
        selected = [averages[i] for i in indices]
        values = [params[i] for i in indices]
        if all(type(a) is torch.Tensor for a in selected):
            torch._foreach_lerp_(selected, values, weight)
        else:  # tensor subclasses (FSDP's DTensor): one tensor at a time
            for average, value in zip(selected, values):
                average.lerp_(value, weight)


def overwrite_due(iteration: int, frequency: Optional[int]) -> bool:
    """Whether step ``iteration`` (0-based) overwrites the weights with their
    averages (every ``ema_overwrite_frequency`` steps)."""
    return bool(frequency) and (iteration + 1) % frequency == 0
