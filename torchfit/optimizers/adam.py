r"""Adam with Keras 3's bias correction and epsilon placement."""

import math
from typing import Any, Dict, Optional

import torch

from ._adam_family import AdamFamily
from ._foreach import ema_, ema_square_, sqrt_plus
from ._validation import _cast_scalar, boolean
from .base import Group, States, Tensors

__all__ = ["Adam"]


def _step_size(
    lr: float, beta_1: float, beta_2: float, step: int, dtype: Optional[torch.dtype]
) -> float:
    """Keras's ``alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)``, the
    scalars evaluated in the variables' dtype as Keras does."""
    beta_1_power = _cast_scalar(beta_1, dtype) ** step
    beta_2_power = _cast_scalar(beta_2, dtype) ** step
    return _cast_scalar(lr, dtype) * math.sqrt(1 - beta_2_power) / (1 - beta_1_power)


class Adam(AdamFamily):
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
    matters. Parameters and moments are updated in place with torch's
    foreach kernels (one temporary, the denominator), as torch's foreach
    Adam; param groups also hold ``betas = (beta_1, beta_2)`` for torch's
    schedulers.

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001.
        beta_1 (float): in ``[0, 1)``, default 0.9.
        beta_2 (float): in ``[0, 1)``, default 0.999.
        epsilon (float): >= 0, default 1e-7.
        amsgrad (bool): use the AMSGrad variant, default False.
        **kwargs: Keras's common arguments (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``...): see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = AdamFamily.hyperparameters + ("amsgrad",)
    _checks = {**AdamFamily._checks, "amsgrad": boolean}

    def __init__(
        self,
        params: Any = None,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, **kwargs)

    def _init_state(self, param: torch.Tensor, group: Group) -> Dict[str, Any]:
        state = super()._init_state(param, group)
        if group["amsgrad"]:
            state["velocity_hat"] = torch.zeros_like(param)
        return state

    def _missing_state(self, param: torch.Tensor, group: Group, state: Dict[str, Any]) -> Dict[str, Any]:
        if "momentum" not in state:
            return self._init_state(param, group)
        if group["amsgrad"] and "velocity_hat" not in state:
            return {"velocity_hat": torch.zeros_like(param)}
        return {}

    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
        beta_1, beta_2 = group["beta_1"], group["beta_2"]
        alpha = _step_size(lr, beta_1, beta_2, iteration + 1, self._scalar_dtype(params))
        m = [s["momentum"] for s in states]
        v = [s["velocity"] for s in states]
        ema_(m, grads, beta_1)
        ema_square_(v, grads, beta_2)
        if group["amsgrad"]:
            v_hat = [s["velocity_hat"] for s in states]
            torch._foreach_maximum_(v_hat, v)
            v = v_hat
        denominators = sqrt_plus(v, group["epsilon"], grads if owned else None)
        torch._foreach_addcdiv_(params, m, denominators, value=-alpha)
