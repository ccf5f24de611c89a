r"""RMSprop with Keras 3's epsilon placement."""

from typing import Any, Dict, Optional

import torch

from ._foreach import divide_each_, ema_, ema_square_
from ._validation import boolean, non_negative, unit_interval
from .base import Group, Optimizer, States, Tensors

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
    buffer holds the learning-rate-scaled increment. Updated in place, with
    one temporary (``d``); ``momentum`` may be cycled by torch schedulers.

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001.
        rho (float): discount of the squared-gradient average, in ``[0, 1)``,
            default 0.9.
        momentum (float): in ``[0, 1)``, default 0.0.
        epsilon (float): >= 0, default 1e-7.
        centered (bool): normalize by the estimated gradient variance,
            default False.
        **kwargs: Keras's common arguments (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``...): see
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
        params: Any = None,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate, rho=rho, momentum=momentum,
                         epsilon=epsilon, centered=centered, **kwargs)

    def _init_state(self, param: torch.Tensor, group: Group) -> Dict[str, Any]:
        state = {"velocity": torch.zeros_like(param)}
        if group["momentum"] > 0:
            state["momentum"] = torch.zeros_like(param)
        if group["centered"]:
            state["average_gradient"] = torch.zeros_like(param)
        return state

    def _missing_state(self, param: torch.Tensor, group: Group, state: Dict[str, Any]) -> Dict[str, Any]:
        needed = self._init_state(param, group) if "velocity" not in state else {
            key: torch.zeros_like(param)
            for key, wanted in (
                ("momentum", group["momentum"] > 0),
                ("average_gradient", group["centered"]),
            )
            if wanted and key not in state
        }
        return needed

    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
        rho, momentum, epsilon = group["rho"], group["momentum"], group["epsilon"]
        velocities = [s["velocity"] for s in states]
        ema_square_(velocities, grads, rho)
        averages = None
        if group["centered"]:
            averages = [s["average_gradient"] for s in states]
            ema_(averages, grads, rho)
        buffers = [s["momentum"] for s in states] if momentum > 0 else None
        if owned:
            # g / d goes into the gradient copy, one tensor's d at a time.
            divide_each_(
                grads,
                lambda i: _root(velocities[i], None if averages is None else averages[i], epsilon),
            )
            _descend(params, buffers, momentum, lr, grads, None)
            return
        denominators = torch._foreach_add(velocities, epsilon)
        if averages is not None:
            torch._foreach_addcmul_(denominators, averages, averages, value=-1)
        torch._foreach_sqrt_(denominators)
        _descend(params, buffers, momentum, lr, grads, denominators)


def _descend(
    params: Tensors,
    buffers: Optional[Tensors],
    momentum: float,
    lr: float,
    numerators: Tensors,
    denominators: Optional[Tensors],
) -> None:
    """``w -= lr * n / d`` (``n`` alone when ``denominators`` is None), through
    Keras's buffer ``m <- momentum * m + lr * n / d; w -= m`` when momentum > 0."""
    target, sign = params, -1.0
    if buffers is not None:
        torch._foreach_mul_(buffers, momentum)
        target, sign = buffers, 1.0
    if denominators is None:
        torch._foreach_add_(target, numerators, alpha=sign * lr)
    else:
        torch._foreach_addcdiv_(target, numerators, denominators, value=sign * lr)
    if buffers is not None:
        torch._foreach_sub_(params, buffers)


def _root(
    velocity: torch.Tensor, average: Optional[torch.Tensor], epsilon: float
) -> torch.Tensor:
    """RMSprop's denominator of one tensor: ``sqrt(v - a**2 + epsilon)``
    (``sqrt(v + epsilon)`` when not centered)."""
    if average is None:
        return torch.add(velocity, epsilon).sqrt_()
    return torch.addcmul(velocity, average, average, value=-1).add_(epsilon).sqrt_()
