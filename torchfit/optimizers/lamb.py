r"""LAMB (layer-wise adaptive moments), as in Keras 3."""

from typing import Any, Dict, List, Optional

import torch

from ._foreach import ema_, ema_square_, scratch_or_new
from ._validation import ADAM_CHECKS, _cast_scalar
from .base import Optimizer, Tensors

__all__ = ["Lamb"]


class Lamb(Optimizer):
    r"""LAMB, as ``keras.optimizers.Lamb``.

    With ``t = iterations + 1``::

        m <- m + (1 - beta_1) * (g - m)
        v <- v + (1 - beta_2) * (g**2 - v)
        r = (m / (1 - beta_1**t)) / (sqrt(v / (1 - beta_2**t)) + epsilon)
        ratio = ||w|| / ||r||   if both norms are > 0, else 1
        w <- w - ratio * lr * r

    Weight decay, when set, is Keras's decoupled decay applied before the
    step (it is not part of ``r``).

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
        return {"momentum": torch.zeros_like(param), "velocity": torch.zeros_like(param)}

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
        beta_1, beta_2, epsilon = group["beta_1"], group["beta_2"], group["epsilon"]
        dtype = self._scalar_dtype(params)
        step = iteration + 1
        bias_correction_1 = 1.0 - _cast_scalar(beta_1, dtype) ** step
        bias_correction_2 = 1.0 - _cast_scalar(beta_2, dtype) ** step
        m = [s["momentum"] for s in states]
        v = [s["velocity"] for s in states]
        ema_(m, grads, beta_1)
        ema_square_(v, grads, beta_2)
        # r = (m / c1) / (sqrt(v / c2) + epsilon), in the one temporary.
        updates = scratch_or_new(torch.div, grads if owned else None, v, [bias_correction_2] * len(v))
        torch._foreach_sqrt_(updates)
        torch._foreach_add_(updates, epsilon)
        for m_i, r_i in zip(m, updates):
            r_i.reciprocal_().mul_(m_i)  # m / denominator, in place
        torch._foreach_div_(updates, bias_correction_1)
        w_norms = torch._foreach_norm(params)
        u_norms = torch._foreach_norm(updates)
        for w, r, w_norm, u_norm in zip(params, updates, w_norms, u_norms):
            ones = torch.ones_like(w_norm)
            ratio = torch.where(
                w_norm > 0, torch.where(u_norm > 0, w_norm / u_norm, ones), ones
            )
            w.sub_(r.mul_(ratio * lr))
