"""The base of the optimizers that keep Adam's two moments and take Keras's
``(learning_rate, beta_1, beta_2, epsilon)`` (Adam, Adamax, Nadam, Lamb)."""

from typing import Any, Dict

import torch

from ._validation import ADAM_CHECKS
from .base import Group, Optimizer

__all__ = ["AdamFamily"]


class AdamFamily(Optimizer):
    """Keras's ``beta_1``/``beta_2``/``epsilon`` (validated, and exposed to torch
    schedulers as ``betas``) and zero ``momentum``/``velocity`` state."""

    hyperparameters = ("beta_1", "beta_2", "epsilon")
    _checks = dict(ADAM_CHECKS)
    _torch_betas = True

    def __init__(
        self,
        params: Any = None,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, **kwargs)

    def _init_state(self, param: torch.Tensor, group: Group) -> Dict[str, Any]:
        return {"momentum": torch.zeros_like(param), "velocity": torch.zeros_like(param)}
