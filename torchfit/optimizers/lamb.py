r"""LAMB (layer-wise adaptive moments), as in Keras 3."""

import torch

from torchfit.optimizers._foreach import zero_moments
from torchfit.optimizers._validation import ADAM_CHECKS, _cast_scalar
from torchfit.optimizers.base import Optimizer

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

    def _compute_update(self, group, params, grads, states, lr, iteration):
        beta_1, beta_2, epsilon = group["beta_1"], group["beta_2"], group["epsilon"]
        dtype = self._scalar_dtype(params)
        step = iteration + 1
        beta_1_power = _cast_scalar(beta_1, dtype) ** step
        beta_2_power = _cast_scalar(beta_2, dtype) ** step
        new_params, new_states = [], []
        for w, g, state in zip(params, grads, states):
            m = state["momentum"] + (g - state["momentum"]) * (1 - beta_1)
            v = state["velocity"] + (g * g - state["velocity"]) * (1 - beta_2)
            update = (m / (1.0 - beta_1_power)) / (
                torch.sqrt(v / (1.0 - beta_2_power)) + epsilon
            )
            w_norm = torch.sqrt(torch.sum(w * w))
            u_norm = torch.sqrt(torch.sum(update * update))
            ones = torch.ones_like(w_norm)
            ratio = torch.where(
                w_norm > 0, torch.where(u_norm > 0, w_norm / u_norm, ones), ones
            )
            new_params.append(w - ratio * lr * update)
            new_states.append({"momentum": m, "velocity": v})
        return new_params, new_states
