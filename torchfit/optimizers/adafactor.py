r"""Adafactor (factored second moments), as in Keras 3."""

import math

from typing import Any, Dict

import torch

from ._validation import any_float, boolean, non_negative, positive
from .base import Group, Optimizer, States, Tensors

__all__ = ["Adafactor"]


def _rms(x: torch.Tensor) -> torch.Tensor:
    """Root mean square of ``x``, without an ``x * x`` temporary."""
    return torch.linalg.vector_norm(x) / math.sqrt(max(x.numel(), 1))


class Adafactor(Optimizer):
    r"""Adafactor, as ``keras.optimizers.Adafactor``.

    With ``t = iterations + 1``, ``beta_2_t = 1 - t**beta_2_decay`` and
    ``G = g**2 + epsilon_1``. Parameters with two or more dimensions keep
    factored statistics over their last two axes::

        r <- beta_2_t * r + (1 - beta_2_t) * mean(G, axis=-1)
        c <- beta_2_t * c + (1 - beta_2_t) * mean(G, axis=-2)
        v  = (r / mean(r, axis=-1))[..., None] * c[..., None, :]

    others a plain average ``v <- beta_2_t * v + (1 - beta_2_t) * G``. Then::

        rho_t = min(lr, 1 / sqrt(t))
        alpha = max(epsilon_2, rms(w)) * rho_t
        u = g / sqrt(v)
        w <- w - alpha * u / max(1, rms(u) / clip_threshold)

    With ``relative_step`` and a float learning rate, ``lr`` is first
    replaced by ``min(lr, 1 / sqrt(t))`` (as in Keras, where this has no
    further effect since ``rho_t`` takes the same minimum).

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001.
        beta_2_decay (float): default -0.8.
        epsilon_1 (float): >= 0, default 1e-30.
        epsilon_2 (float): >= 0, default 1e-3.
        clip_threshold (float): > 0, default 1.0.
        relative_step (bool): default True.
        **kwargs: Keras's common arguments (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``...): see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = (
        "beta_2_decay",
        "epsilon_1",
        "epsilon_2",
        "clip_threshold",
        "relative_step",
    )
    _checks = {
        "beta_2_decay": any_float,
        "epsilon_1": non_negative,
        "epsilon_2": non_negative,
        "clip_threshold": positive,
        "relative_step": boolean,
    }

    def __init__(
        self,
        params: Any = None,
        learning_rate: Any = 0.001,
        beta_2_decay: float = -0.8,
        epsilon_1: float = 1e-30,
        epsilon_2: float = 1e-3,
        clip_threshold: float = 1.0,
        relative_step: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate, beta_2_decay=beta_2_decay,
                         epsilon_1=epsilon_1, epsilon_2=epsilon_2, clip_threshold=clip_threshold,
                         relative_step=relative_step, **kwargs)

    def _init_state(self, param: torch.Tensor, group: Group) -> Dict[str, Any]:
        state = {"velocity": torch.zeros_like(param)}
        if param.dim() >= 2:
            state["row"] = param.new_zeros(param.shape[:-1])
            state["column"] = param.new_zeros(param.shape[:-2] + param.shape[-1:])
        return state

    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
        step = iteration + 1
        if self._lr_schedule is None and group["relative_step"]:
            lr = min(lr, 1.0 / math.sqrt(step))
        rho_t = min(lr, 1.0 / math.sqrt(step))
        beta_2_t = 1.0 - step ** group["beta_2_decay"]
        epsilon_1, epsilon_2 = group["epsilon_1"], group["epsilon_2"]
        clip_threshold = group["clip_threshold"]
        # Tensor by tensor: one temporary of one tensor's size at a time.
        for w, g, state in zip(params, grads, states):
            alpha = torch.clamp(_rms(w), min=epsilon_2) * rho_t
            squared = torch.mul(g, g).add_(epsilon_1)
            v = state["velocity"]
            if w.dim() >= 2:
                row, column = state["row"], state["column"]
                row.mul_(beta_2_t).add_(squared.mean(dim=-1), alpha=1 - beta_2_t)
                column.mul_(beta_2_t).add_(squared.mean(dim=-2), alpha=1 - beta_2_t)
                torch.mul(
                    (row / row.mean(dim=-1, keepdim=True)).unsqueeze(-1),
                    column.unsqueeze(-2),
                    out=v,
                )
            else:
                v.mul_(beta_2_t).add_(squared, alpha=1 - beta_2_t)
            u = torch.div(g, torch.sqrt(v, out=squared), out=squared)
            u.div_(torch.clamp(_rms(u) / clip_threshold, min=1.0))
            w.sub_(u.mul_(alpha))
            del squared, u  # before the next tensor's
