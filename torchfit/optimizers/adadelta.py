r"""Adadelta, as in Keras 3 (the learning rate scales the delta)."""

from typing import Any, Dict

import torch

from ._foreach import ema_square_, sqrt_of_plus
from ._validation import non_negative, unit_interval
from .base import Group, Optimizer, States, Tensors

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
        **kwargs: Keras's common arguments (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``...): see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = ("rho", "epsilon")
    _checks = {"rho": unit_interval(), "epsilon": non_negative}

    def __init__(
        self,
        params: Any = None,
        learning_rate: Any = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate, rho=rho, epsilon=epsilon, **kwargs)

    def _init_state(self, param: torch.Tensor, group: Group) -> Dict[str, Any]:
        return {
            "accumulated_grad": torch.zeros_like(param),
            "accumulated_delta_var": torch.zeros_like(param),
        }

    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
        rho, epsilon = group["rho"], group["epsilon"]
        accumulated_grads = [s["accumulated_grad"] for s in states]
        accumulated_deltas = [s["accumulated_delta_var"] for s in states]
        ema_square_(accumulated_grads, grads, rho)
        # |delta| = rms(E[dx^2]) * g / rms(E[g^2]): the denominators are the
        # step's one temporary and receive the deltas, tensor by tensor.
        deltas = sqrt_of_plus(accumulated_grads, epsilon)
        for old, g, delta in zip(accumulated_deltas, grads, deltas):
            delta.copy_(torch.add(old, epsilon).sqrt_().mul_(g).div_(delta))
        ema_square_(accumulated_deltas, deltas, rho)
        torch._foreach_add_(params, deltas, alpha=-lr)
