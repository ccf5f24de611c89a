r"""Adamax (Adam with the infinity norm), as in Keras 3."""

import torch

from torchfit.optimizers._foreach import moving_average
from torchfit.optimizers._validation import ADAM_CHECKS, _cast_scalar
from torchfit.optimizers.base import Optimizer

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax, as ``keras.optimizers.Adamax``.

    With ``t = iterations + 1``::

        m <- beta_1 * m + (1 - beta_1) * g
        u <- max(beta_2 * u, |g|)
        w <- w - lr * m / ((1 - beta_1**t) * (u + epsilon))

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001.
        beta_1 (float): in ``[0, 1)``, default 0.9.
        beta_2 (float): in ``[0, 1)``, default 0.999.
        epsilon (float): >= 0, default 1e-7.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = ("beta_1", "beta_2", "epsilon")
    _checks = dict(ADAM_CHECKS)

    def __init__(
        self,
        params=None,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        *,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        name=None,
        **kwargs,
    ):
        super().__init__(params, **self._forward_arguments(locals()))

    def _init_state(self, param, group):
        return {"momentum": torch.zeros_like(param), "norm": torch.zeros_like(param)}

    def _compute_update(self, group, params, grads, states, lr, iteration):
        beta_1, beta_2 = group["beta_1"], group["beta_2"]
        dtype = self._scalar_dtype(params)
        beta_1_power = _cast_scalar(beta_1, dtype) ** (iteration + 1)

        m = moving_average([s["momentum"] for s in states], grads, beta_1)
        u = torch._foreach_mul([s["norm"] for s in states], beta_2)
        torch._foreach_maximum_(u, torch._foreach_abs(grads))

        denominators = torch._foreach_add(u, group["epsilon"])
        torch._foreach_mul_(denominators, 1 - beta_1_power)
        steps = torch._foreach_div(torch._foreach_mul(m, lr), denominators)
        new_states = [{"momentum": a, "norm": b} for a, b in zip(m, u)]
        return torch._foreach_sub(params, steps), new_states
