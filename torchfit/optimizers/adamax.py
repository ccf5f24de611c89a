r"""Adamax (Adam with the infinity norm), as in Keras 3."""

from typing import Any, Dict, List, Optional

import torch

from ._foreach import ema_, scratch_or_new
from ._validation import ADAM_CHECKS, _cast_scalar
from .base import Optimizer, Tensors

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
    _torch_betas = True

    def __init__(
        self,
        params: Any = None,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        *,
        weight_decay: Optional[float] = None,
        clipnorm: Optional[float] = None,
        clipvalue: Optional[float] = None,
        global_clipnorm: Optional[float] = None,
        name: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            params,
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            name=name,
            **kwargs,
        )

    def _init_state(self, param: torch.Tensor, group: Dict[str, Any]) -> Dict[str, Any]:
        return {"momentum": torch.zeros_like(param), "norm": torch.zeros_like(param)}

    def _update(
        self,
        group: Dict[str, Any],
        params: Tensors,
        grads: Tensors,
        states: List[Dict[str, Any]],
        lr: float,
        iteration: int,
        owned: bool,
    ) -> None:
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
        # The denominator (1 - beta_1**t) * (u + epsilon) reuses |g|'s memory.
        denominators = scratch_or_new(torch.add, magnitudes, u, [group["epsilon"]] * len(u))
        torch._foreach_mul_(denominators, 1 - beta_1_power)
        torch._foreach_addcdiv_(params, m, denominators, value=-lr)
