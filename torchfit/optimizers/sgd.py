r"""Stochastic gradient descent with Keras 3's momentum formulation."""

from typing import Any, Dict

import torch

from ._validation import boolean, keras_worded, unit_interval
from .base import Group, Optimizer, States, Tensors

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

    Everything is updated in place, without a temporary. The velocity is
    created the first time ``momentum`` is non-zero, so a torch scheduler
    that cycles ``param_groups[i]["momentum"]`` (``OneCycleLR``) drives it.

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.01.
        momentum (float): in ``[0, 1]``, default 0.0.
        nesterov (bool): use Nesterov momentum, default False.
        **kwargs: Keras's common arguments (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``...): see
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
        params: Any = None,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate, momentum=momentum,
                         nesterov=nesterov, **kwargs)

    def _init_state(self, param: torch.Tensor, group: Group) -> Dict[str, Any]:
        if group["momentum"] != 0:
            return {"momentum": torch.zeros_like(param)}
        return {}

    def _missing_state(self, param: torch.Tensor, group: Group, state: Dict[str, Any]) -> Dict[str, Any]:
        return {} if "momentum" in state else self._init_state(param, group)

    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
        momentum = group["momentum"]
        if momentum == 0:
            torch._foreach_add_(params, grads, alpha=-lr)
            return
        buffers = [s["momentum"] for s in states]
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_add_(buffers, grads, alpha=-lr)
        if group["nesterov"]:
            torch._foreach_add_(params, grads, alpha=-lr)
            torch._foreach_add_(params, buffers, alpha=momentum)
        else:
            torch._foreach_add_(params, buffers)
