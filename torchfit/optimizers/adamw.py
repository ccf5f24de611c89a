r"""AdamW: Adam with decoupled weight decay on by default (Keras 3)."""

from typing import Any

from .adam import Adam

__all__ = ["AdamW"]


class AdamW(Adam):
    r"""AdamW, as ``keras.optimizers.AdamW``.

    Identical to :class:`Adam` except that ``weight_decay`` defaults to 0.004
    and may not be ``None``. As everywhere in torchfit (and Keras) the decay
    is decoupled: before the Adam update each parameter with a gradient is
    multiplied by ``1 - weight_decay * lr`` (in place).

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.001.
        weight_decay (float): >= 0, default 0.004.
        beta_1, beta_2, epsilon, amsgrad: as in :class:`Adam`.
        clipnorm, clipvalue, global_clipnorm, name: see
            :class:`torchfit.optimizers.Optimizer`.
    """

    def __init__(
        self,
        params: Any = None,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        if weight_decay is None:
            raise ValueError(
                "AdamW: Argument `weight_decay` must be a float. "
                "Received: weight_decay=None (expected a float >= 0)."
            )
        super().__init__(params, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, weight_decay=weight_decay, **kwargs)
