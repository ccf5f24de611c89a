"""Out-of-place ``torch._foreach_*`` building blocks shared by the update rules."""

import torch


def copy_into(targets, sources):
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
    torch._foreach_copy_(targets, sources)


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def moving_average(tensors, values, beta):
    """``beta * tensors + (1 - beta) * values``, elementwise over the lists
    (Keras's momentum/velocity updates), as new tensors."""
    averaged = torch._foreach_mul(tensors, beta)
    torch._foreach_add_(averaged, values, alpha=1 - beta)
    return averaged


def zero_moments(param):
    """Adam's first and second moment buffers of ``param``, zero."""
    return {
        "momentum": torch.zeros_like(param),
        "velocity": torch.zeros_like(param),
    }
