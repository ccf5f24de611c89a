r"""LAMB (layer-wise adaptive moments), as in Keras 3."""

import torch

from ._adam_family import AdamFamily
from ._foreach import ema_, ema_square_, scratch_or_new
from ._validation import _cast_scalar
from .base import Group, States, Tensors

__all__ = ["Lamb"]


class Lamb(AdamFamily):
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
        **kwargs: Keras's common arguments (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``...): see
            :class:`torchfit.optimizers.Optimizer`.
    """


    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
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
