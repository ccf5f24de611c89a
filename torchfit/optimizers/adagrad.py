r"""Adagrad with Keras 3's accumulator initialisation and epsilon placement."""

from typing import Any, Dict

import torch

from ._foreach import divide_each_, sqrt_of_plus
from ._validation import non_negative
from .base import Group, Optimizer, States, Tensors

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad, as ``keras.optimizers.Adagrad``.

    The accumulator starts at ``initial_accumulator_value`` and::

        acc <- acc + g**2
        w <- w - lr * g / sqrt(acc + epsilon)

    (:class:`torch.optim.Adagrad` starts at 0 and uses ``sqrt(acc) + eps``.)

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001.
        initial_accumulator_value (float): >= 0, default 0.1.
        epsilon (float): >= 0, default 1e-7.
        **kwargs: Keras's common arguments (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``...): see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = ("initial_accumulator_value", "epsilon")
    _checks = {"initial_accumulator_value": non_negative, "epsilon": non_negative}

    def __init__(
        self,
        params: Any = None,
        learning_rate: Any = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate,
                         initial_accumulator_value=initial_accumulator_value, epsilon=epsilon, **kwargs)

    def _init_state(self, param: torch.Tensor, group: Group) -> Dict[str, Any]:
        return {
            "accumulator": torch.full_like(param, group["initial_accumulator_value"])
        }

    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
        epsilon = group["epsilon"]
        accumulators = [s["accumulator"] for s in states]
        torch._foreach_addcmul_(accumulators, grads, grads)
        if owned:
            divide_each_(grads, lambda i: torch.add(accumulators[i], epsilon).sqrt_())
            torch._foreach_add_(params, grads, alpha=-lr)
        else:
            denominators = sqrt_of_plus(accumulators, epsilon)
            torch._foreach_addcdiv_(params, grads, denominators, value=-lr)
