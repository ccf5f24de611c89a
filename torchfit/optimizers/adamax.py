r"""Adamax (Adam with the infinity norm), as in Keras 3."""

from typing import Any, Dict

import torch

from ._adam_family import AdamFamily
from ._foreach import ema_, scratch_or_new
from ._validation import _cast_scalar
from .base import Group, States, Tensors

__all__ = ["Adamax"]


class Adamax(AdamFamily):
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
        **kwargs: Keras's common arguments (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``...): see
            :class:`torchfit.optimizers.Optimizer`.
    """


    def _init_state(self, param: torch.Tensor, group: Group) -> Dict[str, Any]:
        return {"momentum": torch.zeros_like(param), "norm": torch.zeros_like(param)}

    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
        beta_1, beta_2 = group["beta_1"], group["beta_2"]
        dtype = self._scalar_dtype(params)
        beta_1_power = _cast_scalar(beta_1, dtype) ** (iteration + 1)
        m = [s["momentum"] for s in states]
        u = [s["norm"] for s in states]
        ema_(m, grads, beta_1)
        torch._foreach_mul_(u, beta_2)
        if owned:
            torch._foreach_abs_(grads)
            magnitudes = grads
        else:
            magnitudes = torch._foreach_abs(grads)
        torch._foreach_maximum_(u, magnitudes)
        # w -= lr / (1 - beta_1**t) * m / (u + epsilon); u + epsilon reuses
        # |g|'s memory.
        denominators = scratch_or_new(torch.add, magnitudes, u, [group["epsilon"]] * len(u))
        torch._foreach_addcdiv_(params, m, denominators, value=-lr / (1 - beta_1_power))
