r"""FTRL-Proximal, as in Keras 3."""

import torch

from torchfit.optimizers._validation import check_number, keras_worded, non_negative

# Keras's wording of a refused value (Keras code matches on it).
_NEGATIVE = "`{name}` needs to be positive or zero. Received: {name}={value}."
from torchfit.optimizers.base import Optimizer

__all__ = ["Ftrl"]


def _non_positive(owner, name, value):
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
        weight_decay, clipnorm, clipvalue, global_clipnorm, name: see
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
        params=None,
        learning_rate=0.001,
        learning_rate_power=-0.5,
        initial_accumulator_value=0.1,
        l1_regularization_strength=0.0,
        l2_regularization_strength=0.0,
        l2_shrinkage_regularization_strength=0.0,
        beta=0.0,
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
            "accumulator": torch.full_like(param, group["initial_accumulator_value"]),
            "linear": torch.zeros_like(param),
        }

    def _compute_update(self, group, params, grads, states, lr, iteration):
        power = -group["learning_rate_power"]
        l1 = group["l1_regularization_strength"]
        l2 = group["l2_regularization_strength"] + group["beta"] / (2.0 * lr)
        shrinkage = group["l2_shrinkage_regularization_strength"]
        new_params, new_states = [], []
        for w, g, state in zip(params, grads, states):
            accumulator, linear = state["accumulator"], state["linear"]
            grad_to_use = g + (2 * shrinkage) * w
            new_accumulator = accumulator + g * g
            new_accumulator_power = torch.pow(new_accumulator, power)
            new_linear = linear + (
                grad_to_use
                - ((new_accumulator_power - torch.pow(accumulator, power)) / lr) * w
            )
            quadratic = new_accumulator_power / lr + 2 * l2
            clipped = torch.clamp(new_linear, -l1, l1)
            new_params.append((clipped - new_linear) / quadratic)
            new_states.append({"accumulator": new_accumulator, "linear": new_linear})
        return new_params, new_states
