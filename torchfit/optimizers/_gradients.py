"""What happens to the gradients before an update rule sees them: unscaling
by ``loss_scale_factor``, accumulation over ``gradient_accumulation_steps``
micro-steps, and clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``).

Everything here is out of place: ``.grad`` and the optimizer state are only
written by :func:`commit_accumulators`, once the whole step has been computed.
"""

import numbers

import torch

# State key of a parameter's gradient accumulator.
ACCUMULATOR_KEY = "gradient_accumulator"


def scale_loss(optimizer, loss):
    if optimizer.loss_scale_factor is None:
        return loss
    if isinstance(loss, bool) or not (
        isinstance(loss, (torch.Tensor, numbers.Real))
    ):
        raise TypeError(
            f"{type(optimizer).__name__}.scale_loss: argument `loss` must be a "
            f"tensor or a real number; received loss={loss!r} of type "
            f"{type(loss).__name__}."
        )
    return loss * optimizer.loss_scale_factor


def unscale_and_accumulate(optimizer, flat_params, flat_grads, is_update):
    """Return ``(grads, new_accumulators)``.

    ``grads`` are divided by ``loss_scale_factor``; with gradient
    accumulation they are added to the accumulators, and on the N-th
    micro-step (``is_update``) replaced by the mean of the accumulated ones.
    ``new_accumulators`` is the sum to store on the other micro-steps, else
    ``None``.
    """
    if optimizer.loss_scale_factor is not None:
        flat_grads = torch._foreach_div(flat_grads, optimizer.loss_scale_factor)
    accumulation = optimizer.gradient_accumulation_steps
    new_accumulators = None
    if accumulation:
        previous = [
            optimizer.state[p][ACCUMULATOR_KEY]
            if ACCUMULATOR_KEY in optimizer.state.get(p, ())
            else torch.zeros_like(p)
            for p in flat_params
        ]
        summed = torch._foreach_add(flat_grads, previous)
        if is_update:
            flat_grads = torch._foreach_div(summed, accumulation)
        else:
            new_accumulators = summed
    return flat_grads, new_accumulators


def commit_accumulators(optimizer, flat_params, new_accumulators):
    """Store ``new_accumulators``, or zero every accumulator after an update."""
    if not optimizer.gradient_accumulation_steps:
        return
    if new_accumulators is not None:
        for p, value in zip(flat_params, new_accumulators):
            optimizer.state[p][ACCUMULATOR_KEY] = value
    else:
        for group in optimizer.param_groups:
            for p in group["params"]:
                state = optimizer.state.get(p)
                if state and ACCUMULATOR_KEY in state:
                    state[ACCUMULATOR_KEY].zero_()


def clip_gradients(optimizer, grads):
    """Keras's clipping: clipnorm, else global_clipnorm, else clipvalue."""
    if optimizer.clipnorm:
        clipped = []
        for g in grads:
            norm = torch.sqrt(torch.sum(g * g))
            limit = torch.full_like(norm, optimizer.clipnorm)
            clipped.append((g * optimizer.clipnorm) / torch.maximum(norm, limit))
        return clipped
    if optimizer.global_clipnorm:
        squares = [torch.sum(g * g) for g in grads]
        dtype = squares[0].dtype
        for s in squares[1:]:
            dtype = torch.promote_types(dtype, s.dtype)
        device = squares[0].device
        total = torch.stack([s.to(device=device, dtype=dtype) for s in squares])
        norm = torch.sqrt(torch.sum(total))
        clip = optimizer.global_clipnorm
        limit = torch.full_like(norm, 1.0 / clip)
        # A non-finite norm makes the scale NaN, as in Keras.
        scale = clip * torch.minimum(1.0 / norm, limit) + (norm - norm)
        return [g * scale.to(device=g.device, dtype=g.dtype) for g in grads]
    if optimizer.clipvalue:
        return [torch.clamp(g, -optimizer.clipvalue, optimizer.clipvalue) for g in grads]
    return grads
