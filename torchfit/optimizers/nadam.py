r"""Nadam (Adam with Nesterov momentum) with Keras 3's momentum cache."""

import torch

from torchfit.optimizers._foreach import moving_average, zero_moments
from torchfit.optimizers._validation import ADAM_CHECKS, _cast_scalar
from torchfit.optimizers.base import Optimizer

__all__ = ["Nadam"]

_MOMENTUM_DECAY = 0.96


class Nadam(Optimizer):
    r"""Nadam, as ``keras.optimizers.Nadam``.

    Keras (following Dozat) uses a warming-up momentum schedule
    ``mu_t = beta_1 * (1 - 0.5 * 0.96**t)`` and its running product
    ``P_t = mu_1 * ... * mu_t`` (the "momentum cache", stored in every param
    group as ``"u_product"`` and advanced once per step). With
    ``t = iterations + 1``::

        m <- beta_1 * m + (1 - beta_1) * g
        v <- beta_2 * v + (1 - beta_2) * g**2
        m_hat = mu_{t+1} * m / (1 - P_t * mu_{t+1}) + (1 - mu_t) * g / (1 - P_t)
        v_hat = v / (1 - beta_2**t)
        w <- w - lr * m_hat / (sqrt(v_hat) + epsilon)

    :class:`torch.optim.NAdam` uses the same schedule but a per-parameter
    step count and cache, and a different epsilon placement.

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
    _group_counters = {"u_product": 1.0}

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
        return zero_moments(param)

    @staticmethod
    def _mu(beta_1, step, dtype):
        decay = _cast_scalar(_MOMENTUM_DECAY, dtype)
        return _cast_scalar(beta_1, dtype) * (1.0 - 0.5 * decay**step)

    def _next_group_values(self, group, iteration):
        dtype = self._scalar_dtype(group["params"])
        mu_t = self._mu(group["beta_1"], iteration + 1, dtype)
        return {"u_product": _cast_scalar(group["u_product"] * mu_t, dtype)}

    def _compute_update(self, group, params, grads, states, lr, iteration):
        beta_1, beta_2 = group["beta_1"], group["beta_2"]
        dtype = self._scalar_dtype(params)
        step = iteration + 1
        mu_t = self._mu(beta_1, step, dtype)
        mu_next = self._mu(beta_1, step + 1, dtype)
        product_t = _cast_scalar(group["u_product"] * mu_t, dtype)
        product_next = product_t * mu_next
        beta_2_power = _cast_scalar(beta_2, dtype) ** step

        m = moving_average([s["momentum"] for s in states], grads, beta_1)
        v = moving_average(
            [s["velocity"] for s in states], torch._foreach_mul(grads, grads), beta_2
        )

        m_hat = torch._foreach_div(torch._foreach_mul(m, mu_next), 1 - product_next)
        torch._foreach_add_(
            m_hat, torch._foreach_div(torch._foreach_mul(grads, 1 - mu_t), 1 - product_t)
        )
        denominators = torch._foreach_sqrt(torch._foreach_div(v, 1 - beta_2_power))
        torch._foreach_add_(denominators, group["epsilon"])
        steps = torch._foreach_div(torch._foreach_mul(m_hat, lr), denominators)
        new_states = [{"momentum": a, "velocity": b} for a, b in zip(m, v)]
        return torch._foreach_sub(params, steps), new_states
