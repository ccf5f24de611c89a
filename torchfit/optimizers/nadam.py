r"""Nadam (Adam with Nesterov momentum) with Keras 3's momentum cache."""

from typing import Any, Dict, Optional

import torch

from ._adam_family import AdamFamily
from ._foreach import divide_each_, ema_, ema_square_
from ._validation import _cast_scalar
from .base import Group, States, Tensors

__all__ = ["Nadam"]

_MOMENTUM_DECAY = 0.96


class Nadam(AdamFamily):
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
        **kwargs: Keras's common arguments (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``...): see
            :class:`torchfit.optimizers.Optimizer`.
    """

    _group_counters = {"u_product": 1.0}

    @staticmethod
    def _mu(beta_1: float, step: int, dtype: Optional[torch.dtype]) -> float:
        decay = _cast_scalar(_MOMENTUM_DECAY, dtype)
        return _cast_scalar(beta_1, dtype) * (1.0 - 0.5 * decay**step)

    def _next_group_values(self, group: Dict[str, Any], iteration: int) -> Dict[str, Any]:
        dtype = self._scalar_dtype(group["params"])
        mu_t = self._mu(group["beta_1"], iteration + 1, dtype)
        return {"u_product": _cast_scalar(group["u_product"] * mu_t, dtype)}

    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
        beta_1, beta_2 = group["beta_1"], group["beta_2"]
        dtype = self._scalar_dtype(params)
        step = iteration + 1
        mu_t = self._mu(beta_1, step, dtype)
        mu_next = self._mu(beta_1, step + 1, dtype)
        product_t = _cast_scalar(group["u_product"] * mu_t, dtype)
        product_next = product_t * mu_next
        bias_correction_2 = 1 - _cast_scalar(beta_2, dtype) ** step
        # m_hat = a * m + b * g
        a = mu_next / (1 - product_next)
        b = (1 - mu_t) / (1 - product_t)
        m = [s["momentum"] for s in states]
        v = [s["velocity"] for s in states]
        ema_(m, grads, beta_1)
        ema_square_(v, grads, beta_2)
        epsilon = group["epsilon"]
        if owned:
            torch._foreach_mul_(grads, b)
            torch._foreach_add_(grads, m, alpha=a)
            divide_each_(
                grads, lambda i: torch.div(v[i], bias_correction_2).sqrt_().add_(epsilon)
            )
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        denominators = torch._foreach_div(v, bias_correction_2)
        torch._foreach_sqrt_(denominators)
        torch._foreach_add_(denominators, epsilon)
        torch._foreach_addcdiv_(params, m, denominators, value=-lr * a)
        torch._foreach_addcdiv_(params, grads, denominators, value=-lr * b)
