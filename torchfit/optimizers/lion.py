r"""Lion (evolved sign momentum), as in Keras 3."""

from typing import Any, Dict

import torch

from ._foreach import ema_
from ._validation import check_number, keras_worded, unit_interval
from .base import Group, Optimizer, States, Tensors

__all__ = ["Lion"]


def _beta_1_range(owner: str, name: str, value: Any) -> float:
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
        **kwargs: Keras's common arguments (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``...): see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = ("beta_1", "beta_2")
    _checks = {"beta_1": _beta_1, "beta_2": unit_interval()}
    _torch_betas = True

    def __init__(
        self,
        params: Any = None,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         **kwargs)

    def _init_state(self, param: torch.Tensor, group: Group) -> Dict[str, Any]:
        return {"momentum": torch.zeros_like(param)}

    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
        beta_1, beta_2 = group["beta_1"], group["beta_2"]
        m = [s["momentum"] for s in states]
        # c = beta_1 * m + (1 - beta_1) * g, as torch's lerp (one kernel).
        if owned:
            # The gradient copy already is this step's parameter-sized
            # temporary: the directions go tensor by tensor.
            for w, m_i, g in zip(params, m, grads):
                w.add_(torch.lerp(m_i, g, 1 - beta_1).sign_(), alpha=-lr)
        else:
            directions = torch._foreach_lerp(m, grads, 1 - beta_1)
            torch._foreach_sign_(directions)
            torch._foreach_add_(params, directions, alpha=-lr)
            del directions
        ema_(m, grads, beta_2)
