"""What happens to the gradients before an update rule sees them: unscaling
by ``loss_scale_factor``, accumulation over ``gradient_accumulation_steps``
micro-steps, and clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``).

``.grad`` is never written. A function that has to change the gradients
makes one copy of them (one parameter-sized temporary) and works on that
copy in place from then on; it returns ``(grads, owned)`` where ``owned``
says whether ``grads`` is such a copy, which the update rule may then reuse
as its scratch space.
"""

import numbers
from typing import Any, List, Optional, Sequence, Tuple

import torch

from ._foreach import is_plain

# State key of a parameter's gradient accumulator.
ACCUMULATOR_KEY = "gradient_accumulator"

Tensors = List[torch.Tensor]


def scale_loss(owner: str, loss_scale_factor: Optional[float], loss: Any) -> Any:
    """``loss * loss_scale_factor`` (``loss`` unchanged without a factor)."""
    if loss_scale_factor is None:
        return loss
    if isinstance(loss, bool) or not isinstance(loss, (torch.Tensor, numbers.Real)):
        raise TypeError(
            f"{owner}.scale_loss: argument `loss` must be a tensor or a real "
            f"number; received loss={loss!r} of type {type(loss).__name__}."
        )
    return loss * loss_scale_factor


def _own(grads: Tensors, owned: bool) -> Tensors:
    """``grads`` if they are already a private copy, else a copy of them."""
    return grads if owned else torch._foreach_mul(grads, 1.0)


def unscale(
    grads: Tensors, loss_scale_factor: Optional[float], owned: bool
) -> Tuple[Tensors, bool]:
    """Divide the gradients by ``loss_scale_factor`` (a copy; ``.grad`` stays)."""
    if loss_scale_factor is None:
        return grads, owned
    if owned:
        torch._foreach_div_(grads, loss_scale_factor)
        return grads, True
    return torch._foreach_div(grads, loss_scale_factor), True


def accumulated_mean(
    grads: Tensors, accumulators: Tensors, steps: int, owned: bool
) -> Tuple[Tensors, bool]:
    """``(grads + accumulators) / steps``, Keras's gradient of the N-th
    micro-step, as one new tensor per gradient (the accumulators are
    zeroed by the caller once the update is written)."""
    if owned:
        torch._foreach_add_(grads, accumulators)
    else:
        grads = torch._foreach_add(grads, accumulators)
    torch._foreach_div_(grads, steps)
    return grads, True


def _same_kind(grads: Tensors) -> bool:
    """Whether a foreach op with one scalar tensor can serve all ``grads``."""
    first = grads[0]
    return is_plain(grads) and all(
        g.dtype == first.dtype and g.device == first.device for g in grads
    )


def _norms(grads: Tensors) -> Tensors:
    """The L2 norm of every gradient, as 0-dim tensors."""
    if is_plain(grads):
        return list(torch._foreach_norm(grads))
    return [torch.linalg.vector_norm(g) for g in grads]


def clip_by_norm(grads: Tensors, clipnorm: float, owned: bool) -> Tuple[Tensors, bool]:
    """Keras's ``clipnorm``: ``g * clipnorm / max(||g||, clipnorm)`` per tensor."""
    divisors = [torch.clamp_min(norm, clipnorm) for norm in _norms(grads)]
    grads = _own(grads, owned)
    torch._foreach_mul_(grads, clipnorm)
    if _same_kind(grads):
        torch._foreach_div_(grads, divisors)
    else:
        for g, divisor in zip(grads, divisors):
            g.div_(divisor.to(g.device, g.dtype))
    return grads, True


def global_norm_scale(grads: Tensors, global_clipnorm: float) -> torch.Tensor:
    """Keras's ``global_clipnorm`` factor ``clip * min(1 / norm, 1 / clip)``
    over all gradients together (NaN when the norm is not finite, as Keras)."""
    norms = _norms(grads)
    dtype = norms[0].dtype
    for norm in norms[1:]:
        dtype = torch.promote_types(dtype, norm.dtype)
    device = norms[0].device
    total = torch.linalg.vector_norm(
        torch.stack([n.to(device=device, dtype=dtype) for n in norms])
    )
    limit = torch.full_like(total, 1.0 / global_clipnorm)
    return global_clipnorm * torch.minimum(1.0 / total, limit) + (total - total)


def scale(grads: Tensors, factor: torch.Tensor, owned: bool) -> Tuple[Tensors, bool]:
    """``grads * factor`` (a 0-dim tensor), as a copy unless ``owned``."""
    if _same_kind(grads):
        factor = factor.to(device=grads[0].device, dtype=grads[0].dtype)
        if owned:
            torch._foreach_mul_(grads, factor)
            return grads, True
        return list(torch._foreach_mul(grads, factor)), True
    grads = _own(grads, owned)
    for g in grads:
        g.mul_(factor.to(device=g.device, dtype=g.dtype))
    return grads, True


def clip_by_value(grads: Tensors, clipvalue: float, owned: bool) -> Tuple[Tensors, bool]:
    """Keras's ``clipvalue``: clamp every element to ``[-clipvalue, clipvalue]``."""
    if owned:
        torch._foreach_clamp_min_(grads, -clipvalue)
    else:
        grads = list(torch._foreach_clamp_min(grads, -clipvalue))
    torch._foreach_clamp_max_(grads, clipvalue)
    return grads, True


def clip(
    grads: Tensors,
    owned: bool,
    clipnorm: Optional[float],
    global_clipnorm: Optional[float],
    clipvalue: Optional[float],
) -> Tuple[Tensors, bool]:
    """Keras's clipping: clipnorm, else global_clipnorm, else clipvalue."""
    if clipnorm:
        return clip_by_norm(grads, clipnorm, owned)
    if global_clipnorm:
        return scale(grads, global_norm_scale(grads, global_clipnorm), owned)
    if clipvalue:
        return clip_by_value(grads, clipvalue, owned)
    return grads, owned


def zero_(tensors: Sequence[torch.Tensor]) -> None:
    """Zero every tensor in place (the accumulators after an update)."""
    if tensors:
        torch._foreach_zero_(list(tensors))
