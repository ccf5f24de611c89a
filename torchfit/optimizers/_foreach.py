"""``torch._foreach_*`` building blocks shared by the in-place update rules.

Each update rule may need one parameter-sized temporary (a denominator, a
sign...). When the gradients it receives are its own copies (made by
unscaling, accumulation or clipping), :func:`scratch_or_new` lets it reuse
them for that temporary once it has read them for the last time, so a step
never holds more than one parameter-sized temporary.
"""

from typing import Callable, List, Optional, Sequence

import torch

Tensors = List[torch.Tensor]

_PLAIN = (torch.Tensor, torch.nn.Parameter)


def copy_into(targets: Sequence[torch.Tensor], sources: Sequence[torch.Tensor]) -> None:
    """``targets[i].copy_(sources[i])`` for every i: one foreach kernel for plain
    tensors; a copy per tensor when a target is a tensor subclass, such as
    FSDP's DTensor shards (DTensor has no sharding rule for ``_foreach_copy_``;
    a shard copies into a shard locally)."""
    if not targets:
        return
    if any(type(t) not in _PLAIN for t in targets):
        for target, source in zip(targets, sources):
            target.copy_(source)
        return
    torch._foreach_copy_(list(targets), list(sources))


def is_plain(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether every tensor is a plain tensor/parameter (not a subclass such as
    DTensor, whose foreach support is partial)."""
    return all(type(t) in _PLAIN for t in tensors)


def scratch_or_new(
    op: Callable[..., torch.Tensor],
    scratch: Optional[Tensors],
    *inputs: Sequence[torch.Tensor],
) -> Tensors:
    """``[op(*items) for items in zip(*inputs)]``, written into ``scratch``
    (``out=``, overwriting it) when given, else into new tensors.

    ``op`` is an out-variant-capable torch function such as ``torch.sqrt``,
    ``torch.add`` or ``torch.div``; a scalar second operand is passed as a
    one-element list repeated by the caller.
    """
    if scratch is None:
        return [op(*items) for items in zip(*inputs)]
    for out, items in zip(scratch, zip(*inputs)):
        op(*items, out=out)
    return scratch


def sqrt_plus(
    tensors: Tensors, epsilon: float, scratch: Optional[Tensors] = None
) -> Tensors:
    """``sqrt(tensors) + epsilon`` (Adam's denominator), in ``scratch`` if given."""
    if scratch is None:
        out = torch._foreach_sqrt(tensors)
    else:
        out = scratch_or_new(torch.sqrt, scratch, tensors)
    torch._foreach_add_(out, epsilon)
    return out


def sqrt_of_plus(
    tensors: Tensors, epsilon: float, scratch: Optional[Tensors] = None
) -> Tensors:
    """``sqrt(tensors + epsilon)`` (epsilon inside the root, as RMSprop,
    Adagrad and Adadelta), in ``scratch`` if given."""
    if scratch is None:
        out = torch._foreach_add(tensors, epsilon)
    else:
        out = scratch_or_new(torch.add, scratch, tensors, [epsilon] * len(tensors))
    torch._foreach_sqrt_(out)
    return out


def ema_(averages: Tensors, values: Tensors, beta: float) -> None:
    """``averages <- beta * averages + (1 - beta) * values``, in place.

    Written as torch's ``lerp`` (``a + (1 - beta) * (v - a)``), one kernel.
    """
    torch._foreach_lerp_(averages, values, 1.0 - beta)


def ema_square_(averages: Tensors, values: Tensors, beta: float) -> None:
    """``averages <- beta * averages + (1 - beta) * values**2``, in place."""
    torch._foreach_mul_(averages, beta)
    torch._foreach_addcmul_(averages, values, values, value=1.0 - beta)


def divide_each_(
    numerators: Tensors, denominator: Callable[[int], torch.Tensor]
) -> None:
    """``numerators[i] /= denominator(i)`` in place, tensor by tensor, so that
    only one tensor's denominator exists at a time (used when the numerators
    are the rule's own gradient copy, which already is the step's one
    parameter-sized temporary)."""
    for index, numerator in enumerate(numerators):
        numerator.div_(denominator(index))
