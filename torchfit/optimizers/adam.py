r"""Adam with Keras 3's bias correction and epsilon placement."""

import math

import torch

from torchfit.optimizers._foreach import moving_average, zero_moments
from torchfit.optimizers._validation import ADAM_CHECKS, _cast_scalar, boolean
from torchfit.optimizers.base import Optimizer

__all__ = ["Adam"]


class Adam(Optimizer):
    r"""Adam, as ``keras.optimizers.Adam``.

    With ``t = iterations + 1`` (global, not per parameter)::

        m <- m + (1 - beta_1) * (g - m)
        v <- v + (1 - beta_2) * (g**2 - v)
        v_hat <- max(v_hat, v)                       (amsgrad only; used as v)
        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        w <- w - alpha * m / (sqrt(v) + epsilon)

    This is the "epsilon hat" form of the Adam paper, which is what Keras
    computes; :class:`torch.optim.Adam` instead divides by
    ``sqrt(v / (1 - beta_2**t)) + eps``, so the two differ once epsilon
    matters.

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001.
        beta_1 (float): in ``[0, 1)``, default 0.9.
        beta_2 (float): in ``[0, 1)``, default 0.999.
        epsilon (float): >= 0, default 1e-7.
        amsgrad (bool): use the AMSGrad variant, default False.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = ("beta_1", "beta_2", "epsilon", "amsgrad")
    _checks = {**ADAM_CHECKS, "amsgrad": boolean}

    def __init__(
        self,
        params=None,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
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
        state = zero_moments(param)
        if group["amsgrad"]:
            state["velocity_hat"] = torch.zeros_like(param)
        return state

    def _compute_update(self, group, params, grads, states, lr, iteration):
        beta_1, beta_2 = group["beta_1"], group["beta_2"]
        # Keras evaluates these scalars in the variables' dtype.
        dtype = self._scalar_dtype(params)
        step = iteration + 1
        beta_1_power = _cast_scalar(beta_1, dtype) ** step
        beta_2_power = _cast_scalar(beta_2, dtype) ** step
        alpha = _cast_scalar(lr, dtype) * math.sqrt(1 - beta_2_power) / (1 - beta_1_power)

        m = moving_average([s["momentum"] for s in states], grads, beta_1)
        v = moving_average(
            [s["velocity"] for s in states], torch._foreach_mul(grads, grads), beta_2
        )
        new_states = [{"momentum": a, "velocity": b} for a, b in zip(m, v)]

        if group["amsgrad"]:
            previous = [
                s["velocity_hat"] if "velocity_hat" in s else torch.zeros_like(p)
                for p, s in zip(params, states)
            ]
            v = torch._foreach_maximum(previous, v)
            for new, v_hat in zip(new_states, v):
                new["velocity_hat"] = v_hat

        denominators = torch._foreach_sqrt(v)
        torch._foreach_add_(denominators, group["epsilon"])
        steps = torch._foreach_div(torch._foreach_mul(m, alpha), denominators)
        return torch._foreach_sub(params, steps), new_states
