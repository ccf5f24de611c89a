r"""Adafactor (factored second moments), as in Keras 3."""

import math

import torch

from torchfit.optimizers._validation import any_float, boolean, non_negative, positive
from torchfit.optimizers.base import Optimizer

__all__ = ["Adafactor"]


def _rms(x):
    return torch.sqrt(torch.mean(x * x))


class Adafactor(Optimizer):
    r"""Adafactor, as ``keras.optimizers.Adafactor``.

    With ``t = iterations + 1``, ``beta_2_t = 1 - t**beta_2_decay`` and
    ``G = g**2 + epsilon_1``. Parameters with two or more dimensions keep
    factored statistics over their last two axes::

        r <- beta_2_t * r + (1 - beta_2_t) * mean(G, axis=-1)
        c <- beta_2_t * c + (1 - beta_2_t) * mean(G, axis=-2)
        v  = (r / mean(r, axis=-1))[..., None] * c[..., None, :]

    others a plain average ``v <- beta_2_t * v + (1 - beta_2_t) * G``. Then::

        rho_t = min(lr, 1 / sqrt(t))
        alpha = max(epsilon_2, rms(w)) * rho_t
        u = g / sqrt(v)
        w <- w - alpha * u / max(1, rms(u) / clip_threshold)

    With ``relative_step`` and a float learning rate, ``lr`` is first
    replaced by ``min(lr, 1 / sqrt(t))`` (as in Keras, where this has no
    further effect since ``rho_t`` takes the same minimum).

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001.
        beta_2_decay (float): default -0.8.
        epsilon_1 (float): >= 0, default 1e-30.
        epsilon_2 (float): >= 0, default 1e-3.
        clip_threshold (float): > 0, default 1.0.
        relative_step (bool): default True.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = (
        "beta_2_decay",
        "epsilon_1",
        "epsilon_2",
        "clip_threshold",
        "relative_step",
    )
    _checks = {
        "beta_2_decay": any_float,
        "epsilon_1": non_negative,
        "epsilon_2": non_negative,
        "clip_threshold": positive,
        "relative_step": boolean,
    }

    def __init__(
        self,
        params=None,
        learning_rate=0.001,
        beta_2_decay=-0.8,
        epsilon_1=1e-30,
        epsilon_2=1e-3,
        clip_threshold=1.0,
        relative_step=True,
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
        state = {"velocity": torch.zeros_like(param)}
        if param.dim() >= 2:
            state["row"] = param.new_zeros(param.shape[:-1])
            state["column"] = param.new_zeros(param.shape[:-2] + param.shape[-1:])
        return state

    def _compute_update(self, group, params, grads, states, lr, iteration):
        step = iteration + 1
        if self._lr_schedule is None and group["relative_step"]:
            lr = min(lr, 1.0 / math.sqrt(step))
        rho_t = min(lr, 1.0 / math.sqrt(step))
        beta_2_t = 1.0 - step ** group["beta_2_decay"]
        epsilon_1, epsilon_2 = group["epsilon_1"], group["epsilon_2"]
        clip_threshold = group["clip_threshold"]
        new_params, new_states = [], []
        for w, g, state in zip(params, grads, states):
            alpha = torch.clamp(_rms(w), min=epsilon_2) * rho_t
            squared = g * g + epsilon_1
            new_state = {}
            if w.dim() >= 2:
                row = beta_2_t * state["row"] + (1 - beta_2_t) * squared.mean(dim=-1)
                column = beta_2_t * state["column"] + (1 - beta_2_t) * squared.mean(
                    dim=-2
                )
                v = (row / row.mean(dim=-1, keepdim=True)).unsqueeze(
                    -1
                ) * column.unsqueeze(-2)
                new_state["row"] = row
                new_state["column"] = column
            else:
                v = beta_2_t * state["velocity"] + (1 - beta_2_t) * squared
            new_state["velocity"] = v
            u = g / torch.sqrt(v)
            u_hat = u / torch.clamp(_rms(u) / clip_threshold, min=1.0)
            new_params.append(w - alpha * u_hat)
            new_states.append(new_state)
        return new_params, new_states
