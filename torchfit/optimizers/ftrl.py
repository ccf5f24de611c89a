r"""FTRL-Proximal, as in Keras 3."""

from typing import Any, Dict

import torch

from ._validation import check_number, keras_worded, non_negative
from .base import Group, Optimizer, States, Tensors

# Keras's wording of a refused value (Keras code matches on it).
_NEGATIVE = "`{name}` needs to be positive or zero. Received: {name}={value}."

__all__ = ["Ftrl"]


def _non_positive(owner: str, name: str, value: Any) -> float:
    return check_number(owner, name, value, high=0.0)


class Ftrl(Optimizer):
    r"""Follow The Regularized Leader, as ``keras.optimizers.Ftrl``.

    With ``p = -learning_rate_power``, an accumulator ``n`` (starting at
    ``initial_accumulator_value``) and a linear term ``z`` (starting at 0)::

        l2 = l2_regularization_strength + beta / (2 * lr)
        g' = g + 2 * l2_shrinkage_regularization_strength * w
        n_new = n + g**2
        z <- z + g' - (n_new**p - n**p) / lr * w
        q = n_new**p / lr + 2 * l2
        w <- (clip(z, -l1, l1) - z) / q
        n <- n_new

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001 (must stay > 0).
        learning_rate_power (float): <= 0, default -0.5.
        initial_accumulator_value (float): >= 0, default 0.1.
        l1_regularization_strength (float): >= 0, default 0.0.
        l2_regularization_strength (float): >= 0, default 0.0.
        l2_shrinkage_regularization_strength (float): >= 0, default 0.0.
        beta (float): >= 0, default 0.0.
        **kwargs: Keras's common arguments (``weight_decay``, ``clipnorm``,
            ``clipvalue``, ``global_clipnorm``, ``use_ema``...): see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = (
        "learning_rate_power",
        "initial_accumulator_value",
        "l1_regularization_strength",
        "l2_regularization_strength",
        "l2_shrinkage_regularization_strength",
        "beta",
    )
    _checks = {
        "learning_rate_power": keras_worded(
            _non_positive,
            "`{name}` needs to be negative or zero. Received: {name}={value}.",
        ),
        "initial_accumulator_value": keras_worded(non_negative, _NEGATIVE),
        "l1_regularization_strength": keras_worded(non_negative, _NEGATIVE),
        "l2_regularization_strength": keras_worded(non_negative, _NEGATIVE),
        "l2_shrinkage_regularization_strength": keras_worded(non_negative, _NEGATIVE),
        "beta": non_negative,
    }

    def __init__(
        self,
        params: Any = None,
        learning_rate: Any = 0.001,
        learning_rate_power: float = -0.5,
        initial_accumulator_value: float = 0.1,
        l1_regularization_strength: float = 0.0,
        l2_regularization_strength: float = 0.0,
        l2_shrinkage_regularization_strength: float = 0.0,
        beta: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, learning_rate=learning_rate,
                         learning_rate_power=learning_rate_power,
                         initial_accumulator_value=initial_accumulator_value,
                         l1_regularization_strength=l1_regularization_strength,
                         l2_regularization_strength=l2_regularization_strength,
                         l2_shrinkage_regularization_strength=l2_shrinkage_regularization_strength, beta=beta,
                         **kwargs)

    def _init_state(self, param: torch.Tensor, group: Group) -> Dict[str, Any]:
        return {
            "accumulator": torch.full_like(param, group["initial_accumulator_value"]),
            "linear": torch.zeros_like(param),
        }

    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
        power = -group["learning_rate_power"]
        l1 = group["l1_regularization_strength"]
        l2 = group["l2_regularization_strength"] + group["beta"] / (2.0 * lr)
        shrinkage = group["l2_shrinkage_regularization_strength"]
        # Tensor by tensor: two temporaries of one tensor's size at a time,
        # one when the gradients are the step's own copy (then reused).
        for w, g, state in zip(params, grads, states):
            accumulator, linear = state["accumulator"], state["linear"]
            old_power = torch.pow(accumulator, power)
            accumulator.addcmul_(g, g)
            # linear += g + 2 * shrinkage * w - (n_new**p - n**p) / lr * w
            linear.add_(g)
            if shrinkage:
                linear.add_(w, alpha=2 * shrinkage)
            new_power = torch.pow(accumulator, power, out=g) if owned else torch.pow(accumulator, power)
            # (n_new**p - n**p), written as -n**p + n_new**p: the same float, no
            # aliased out= (which would allocate)
            linear.sub_(old_power.neg_().add_(new_power).div_(lr).mul_(w))
            quadratic = new_power.div_(lr).add_(2 * l2)
            torch.clamp(linear, -l1, l1, out=old_power)
            w.copy_(old_power.sub_(linear).div_(quadratic))
            del old_power, new_power, quadratic  # before the next tensor's
