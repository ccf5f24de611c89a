r"""Adagrad with Keras 3's accumulator initialisation and epsilon placement."""

import torch

from torchfit.optimizers._validation import non_negative
from torchfit.optimizers.base import Optimizer

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
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = ("initial_accumulator_value", "epsilon")
    _checks = {"initial_accumulator_value": non_negative, "epsilon": non_negative}

    def __init__(
        self,
        params=None,
        learning_rate=0.001,
        initial_accumulator_value=0.1,
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
            "accumulator": torch.full_like(param, group["initial_accumulator_value"])
        }

    def _compute_update(self, group, params, grads, states, lr, iteration):
        accumulators = torch._foreach_add(
            [s["accumulator"] for s in states], torch._foreach_mul(grads, grads)
        )
        denominators = torch._foreach_sqrt(
            torch._foreach_add(accumulators, group["epsilon"])
        )
        steps = torch._foreach_div(torch._foreach_mul(grads, lr), denominators)
        new_states = [{"accumulator": a} for a in accumulators]
        return torch._foreach_sub(params, steps), new_states
