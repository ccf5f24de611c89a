r"""RMSprop with Keras 3's epsilon placement."""

import torch

from torchfit.optimizers._foreach import moving_average
from torchfit.optimizers._validation import boolean, non_negative, unit_interval
from torchfit.optimizers.base import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, as ``keras.optimizers.RMSprop``.

    Per parameter, with the velocity ``v`` (and ``a``, ``m``) starting at zero::

        v <- rho * v + (1 - rho) * g**2
        a <- rho * a + (1 - rho) * g                 (centered only)
        d <- sqrt(v + epsilon)                       (not centered)
        d <- sqrt(v - a**2 + epsilon)                (centered)
        m <- momentum * m + lr * g / d               (momentum > 0)
        w <- w - m          or       w <- w - lr * g / d

    Note that epsilon is added *inside* the square root, unlike
    :class:`torch.optim.RMSprop` (``sqrt(v) + eps``), and that the momentum
    buffer holds the learning-rate-scaled increment.

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001.
        rho (float): discount of the squared-gradient average, in ``[0, 1)``,
            default 0.9.
        momentum (float): in ``[0, 1)``, default 0.0.
        epsilon (float): >= 0, default 1e-7.
        centered (bool): normalize by the estimated gradient variance,
            default False.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = ("rho", "momentum", "epsilon", "centered")
    _checks = {
        "rho": unit_interval(),
        "momentum": unit_interval(),
        "epsilon": non_negative,
        "centered": boolean,
    }

    def __init__(
        self,
        params=None,
        learning_rate=0.001,
        rho=0.9,
        momentum=0.0,
        epsilon=1e-7,
        centered=False,
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
        if group["momentum"] > 0:
            state["momentum"] = torch.zeros_like(param)
        if group["centered"]:
            state["average_gradient"] = torch.zeros_like(param)
        return state

    @staticmethod
    def _get(states, params, key):
        return [
            state[key] if key in state else torch.zeros_like(p)
            for p, state in zip(params, states)
        ]

    def _compute_update(self, group, params, grads, states, lr, iteration):
        rho, momentum = group["rho"], group["momentum"]
        new_states = [{} for _ in params]

        velocities = moving_average(
            self._get(states, params, "velocity"), torch._foreach_mul(grads, grads), rho
        )
        for new, v in zip(new_states, velocities):
            new["velocity"] = v

        denominators = torch._foreach_add(velocities, group["epsilon"])
        if group["centered"]:
            averages = moving_average(
                self._get(states, params, "average_gradient"), grads, rho
            )
            torch._foreach_add_(
                denominators, torch._foreach_mul(averages, averages), alpha=-1
            )
            for new, a in zip(new_states, averages):
                new["average_gradient"] = a
        torch._foreach_sqrt_(denominators)
        increments = torch._foreach_div(torch._foreach_mul(grads, lr), denominators)

        if momentum > 0:
            buffers = torch._foreach_mul(self._get(states, params, "momentum"), momentum)
            torch._foreach_add_(buffers, increments)
            new_params = torch._foreach_sub(params, buffers)
            for new, m in zip(new_states, buffers):
                new["momentum"] = m
        else:
            new_params = torch._foreach_sub(params, increments)
        return new_params, new_states
