"""Exponential moving averages of the weights (Keras's ``use_ema``).

The averages live in each parameter's optimizer state under ``"average"``.
:class:`~torchfit.optimizers.Optimizer` exposes these functions as its
methods (``swap_ema_weights``, ``finalize_variable_values``...).
"""

import collections

import torch

from torchfit.optimizers._foreach import copy_into
from torchfit.optimizers._validation import _cast_scalar

# State key of a parameter's moving average.
EMA_KEY = "average"


def require_ema(optimizer, what):
    if not optimizer.use_ema:
        raise ValueError(
            f"{type(optimizer).__name__} '{optimizer.name}' cannot {what}: it was "
            "created with use_ema=False (expected use_ema=True)."
        )
    optimizer._require_bound(what)


def ema_params(optimizer):
    """The bound floating-point parameters, which get moving averages."""
    return [
        p
        for group in optimizer.param_groups
        for p in group["params"]
        if p.is_floating_point()
    ]


def ema_pairs(optimizer):
    """``[(param, average)]`` for the parameters that have an average yet."""
    pairs = []
    for p in ema_params(optimizer):
        state = optimizer.state.get(p)
        if state and EMA_KEY in state:
            pairs.append((p, state[EMA_KEY]))
    return pairs


@torch.no_grad()
def swap_ema_weights(optimizer):
    require_ema(optimizer, "swap EMA weights")
    pairs = ema_pairs(optimizer)
    if not pairs:
        return
    params = [p for p, _ in pairs]
    averages = [a for _, a in pairs]
    saved = [p.detach().clone() for p in params]
    copy_into(params, averages)
    copy_into(averages, saved)


@torch.no_grad()
def copy_weights_to_ema(optimizer):
    require_ema(optimizer, "copy weights to the EMA")
    pairs = ema_pairs(optimizer)
    if pairs:
        copy_into([a for _, a in pairs], [p for p, _ in pairs])


@torch.no_grad()
def finalize_variable_values(optimizer, var_list=None):
    if not optimizer.use_ema:
        return
    owner = type(optimizer).__name__
    optimizer._require_bound("finalize variable values")
    known = {id(p): a for p, a in ema_pairs(optimizer)}
    bound = {id(p) for p in ema_params(optimizer)}
    if var_list is None:
        targets = [p for p in ema_params(optimizer) if id(p) in known]
    else:
        if isinstance(var_list, torch.Tensor) or not hasattr(var_list, "__iter__"):
            raise TypeError(
                f"{owner}.finalize_variable_values: argument "
                "`var_list` must be a list of parameters or None; received "
                f"var_list={var_list!r} of type {type(var_list).__name__}."
            )
        var_list = list(var_list)
        for p in var_list:
            if not isinstance(p, torch.Tensor) or id(p) not in bound:
                raise ValueError(
                    f"{owner}.finalize_variable_values: every "
                    "entry of `var_list` must be a floating-point parameter "
                    "this optimizer is bound to; received "
                    f"{type(p).__name__} of shape "
                    f"{tuple(getattr(p, 'shape', ()))}."
                )
        targets = [p for p in var_list if id(p) in known]
    if targets:
        copy_into(targets, [known[id(p)] for p in targets])


def compute_ema(optimizer, commits, iteration):
    """Return ``(params, new_averages, overwrite)``; nothing is written.

    ``average <- m * average + (1 - m) * weight`` with ``m =
    ema_momentum``, except on the first step (``iterations == 0``) where
    ``m = 0`` so that the average starts at the weights.
    """
    updated = {}
    for params, new_params, _ in commits:
        for p, value in zip(params, new_params):
            updated[id(p)] = value
    params = ema_params(optimizer)
    if not params:
        return None
    current = [updated.get(id(p), p) for p in params]
    previous = [
        optimizer.state[p][EMA_KEY] if EMA_KEY in optimizer.state.get(p, ()) else p
        for p in params
    ]
    momentum = optimizer.ema_momentum if iteration != 0 else 0.0
    # Keras evaluates the coefficients in each weight's dtype.
    by_dtype = collections.defaultdict(list)
    for i, p in enumerate(params):
        by_dtype[p.dtype].append(i)
    averages = [None] * len(params)
    for dtype, indices in by_dtype.items():
        m = _cast_scalar(momentum, dtype)
        one_minus = _cast_scalar(1.0 - m, dtype)
        mixed = torch._foreach_mul([previous[i] for i in indices], m)
        torch._foreach_add_(
            mixed, torch._foreach_mul([current[i] for i in indices], one_minus)
        )
        for i, value in zip(indices, mixed):
            averages[i] = value
    frequency = optimizer.ema_overwrite_frequency
    overwrite = bool(frequency) and (iteration + 1) % frequency == 0
    return params, averages, overwrite
