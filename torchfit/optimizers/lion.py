r"""Lion (evolved sign momentum), as in Keras 3."""

import torch

from torchfit.optimizers._foreach import moving_average
from torchfit.optimizers._validation import check_number, keras_worded, unit_interval
from torchfit.optimizers.base import Optimizer

__all__ = ["Lion"]


def _beta_1_range(owner, name, value):
    # Keras requires 0 < beta_1 <= 1 (beta_1 == 0 would be SignSGD).
    return check_number(
        owner, name, value, low=0.0, high=1.0, low_open=True, high_open=False
    )


_beta_1 = keras_worded(
    _beta_1_range,
    "Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer "
    "degenerates to SignSGD. Received: beta_1={value}.",
)


class Lion(Optimizer):
    r"""Lion, as ``keras.optimizers.Lion``.

    ::

        c = beta_1 * m + (1 - beta_1) * g
        w <- w - lr * sign(c)
        m <- beta_2 * m + (1 - beta_2) * g

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001.
        beta_1 (float): in ``(0, 1]``, default 0.9.
        beta_2 (float): in ``[0, 1)``, default 0.99.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = ("beta_1", "beta_2")
    _checks = {"beta_1": _beta_1, "beta_2": unit_interval()}

    def __init__(
        self,
        params=None,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.99,
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
        return {"momentum": torch.zeros_like(param)}

    def _compute_update(self, group, params, grads, states, lr, iteration):
        beta_1, beta_2 = group["beta_1"], group["beta_2"]
        old = [s["momentum"] for s in states]
        directions = torch._foreach_sign(moving_average(old, grads, beta_1))
        new_params = torch._foreach_sub(params, torch._foreach_mul(directions, lr))
        m = moving_average(old, grads, beta_2)
        return new_params, [{"momentum": t} for t in m]
