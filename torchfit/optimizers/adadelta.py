r"""Adadelta, as in Keras 3 (the learning rate scales the delta)."""

import torch

from torchfit.optimizers._foreach import moving_average
from torchfit.optimizers._validation import non_negative, unit_interval
from torchfit.optimizers.base import Optimizer

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta, as ``keras.optimizers.Adadelta``.

    With accumulators ``E[g^2]`` and ``E[dx^2]`` starting at zero::

        E[g^2]  <- rho * E[g^2] + (1 - rho) * g**2
        dx       = -sqrt(E[dx^2] + epsilon) / sqrt(E[g^2] + epsilon) * g
        E[dx^2] <- rho * E[dx^2] + (1 - rho) * dx**2
        w <- w + lr * dx

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001.
        rho (float): decay rate, in ``[0, 1)``, default 0.95.
        epsilon (float): >= 0, default 1e-7.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = ("rho", "epsilon")
    _checks = {"rho": unit_interval(), "epsilon": non_negative}

    def __init__(
        self,
        params=None,
        learning_rate=0.001,
        rho=0.95,
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
        return {
            "accumulated_grad": torch.zeros_like(param),
            "accumulated_delta_var": torch.zeros_like(param),
        }

    def _compute_update(self, group, params, grads, states, lr, iteration):
        rho, epsilon = group["rho"], group["epsilon"]

        def rms(tensors):
            return torch._foreach_sqrt(torch._foreach_add(tensors, epsilon))

        accumulated_grads = moving_average(
            [s["accumulated_grad"] for s in states], torch._foreach_mul(grads, grads), rho
        )
        old_deltas = [s["accumulated_delta_var"] for s in states]
        deltas = torch._foreach_div(
            torch._foreach_mul(rms(old_deltas), grads), rms(accumulated_grads)
        )
        torch._foreach_neg_(deltas)
        accumulated_deltas = moving_average(old_deltas, torch._foreach_mul(deltas, deltas), rho)
        new_states = [
            {"accumulated_grad": a, "accumulated_delta_var": b}
            for a, b in zip(accumulated_grads, accumulated_deltas)
        ]
        return torch._foreach_add(params, deltas, alpha=lr), new_states
