"""Out-of-place ``torch._foreach_*`` building blocks shared by the update rules."""

import torch


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
