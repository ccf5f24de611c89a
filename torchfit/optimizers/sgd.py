r"""Stochastic gradient descent with Keras 3's momentum formulation."""

import torch

from torchfit.optimizers._validation import boolean, keras_worded, unit_interval
from torchfit.optimizers.base import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Gradient descent (with optional momentum), as ``keras.optimizers.SGD``.

    With ``momentum == 0``::

        w <- w - lr * g

    Otherwise Keras keeps a velocity ``m`` (initially zero) that already
    includes the learning rate, unlike :class:`torch.optim.SGD`::

        m <- momentum * m - lr * g
        w <- w + m                           (nesterov=False)
        w <- w + momentum * m - lr * g       (nesterov=True)

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.01.
        momentum (float): in ``[0, 1]``, default 0.0.
        nesterov (bool): use Nesterov momentum, default False.
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = ("momentum", "nesterov")
    _checks = {
        "momentum": keras_worded(
            unit_interval(high_open=False),
            "SGD: `momentum` must be a float between [0, 1]. "
            "Received: momentum={value!r}.",
        ),
        "nesterov": boolean,
    }

    def __init__(
        self,
        params=None,
        learning_rate=0.01,
        momentum=0.0,
        nesterov=False,
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
        if group["momentum"] != 0:
            return {"momentum": torch.zeros_like(param)}
        return {}

    def _compute_update(self, group, params, grads, states, lr, iteration):
        momentum = group["momentum"]
        if momentum == 0:
            return torch._foreach_add(params, grads, alpha=-lr), [{} for _ in params]
        buffers = [
            state["momentum"] if "momentum" in state else torch.zeros_like(p)
            for p, state in zip(params, states)
        ]
        buffers = torch._foreach_mul(buffers, momentum)
        torch._foreach_add_(buffers, grads, alpha=-lr)
        if group["nesterov"]:
            new_params = torch._foreach_add(params, grads, alpha=-lr)
            torch._foreach_add_(new_params, buffers, alpha=momentum)
        else:
            new_params = torch._foreach_add(params, buffers)
        return new_params, [{"momentum": b} for b in buffers]
