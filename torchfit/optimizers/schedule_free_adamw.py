r"""Schedule-Free AdamW (Defazio et al., 2024), as Keras 3.15's.

Schedule-free training keeps two sequences: ``z`` (state ``"momentum"``),
where the gradient steps land, and their running average ``x``. The model's
parameters hold the interpolation ``y = (1 - beta_1) z + beta_1 x``: the
point where gradients are taken, and what Keras's optimizer leaves in the
variables. The weights to *evaluate* are ``x``.

So the optimizer has two sets of weights, and torchfit swaps them:
:meth:`ScheduleFreeAdamW.eval` puts ``x`` into the parameters (keeping ``y``
to put back exactly) and :meth:`ScheduleFreeAdamW.train` restores ``y``.
``evaluate``, ``predict``, ``test_on_batch``, ``predict_on_batch`` and the
validation inside ``fit`` run under :func:`evaluation_weights`, which does
both; training always runs on ``y``. Every param group records which weights
the parameters hold (``group["weights"]``: ``"train"`` or ``"eval"``), and so
does every optimizer ``state_dict`` saved with a checkpoint. Weights-only
files say it in their metadata, and loading them puts them back where they
belong (see :mod:`torchfit.saving.weights` and :meth:`rebase_train_weights`).
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List

import torch

from ._foreach import divide_each_, ema_square_
from ._validation import ADAM_CHECKS, _cast_scalar, non_negative
from .base import Optimizer
from ._unwrap import eval_weight_optimizer

__all__ = ["ScheduleFreeAdamW", "evaluation_weights"]

Tensors = List[torch.Tensor]

_TRAIN, _EVAL = "train", "eval"
_TRAIN_WEIGHTS = "train_weights"  # y, kept while the parameters hold x


def _warmup_steps(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"{owner}: argument `{name}` must be an int >= 0; received {name}={value!r}."
        )
    return value


class ScheduleFreeAdamW(Optimizer):
    r"""Schedule-Free AdamW, as ``keras.optimizers.ScheduleFreeAdamW``.

    With ``t = iterations + 1`` and ``lr`` scaled by ``min(t / warmup_steps, 1)``
    during warmup, for parameters ``y`` (after decoupled weight decay)::

        v <- beta_2 * v + (1 - beta_2) * g**2
        z_new = z - lr * g / (sqrt(v / (1 - beta_2**t)) + epsilon)
        x = (y - (1 - beta_1) * z) / beta_1
        x_new = (1 - 1/t) * x + (1/t) * z_new
        y <- (1 - beta_1) * z_new + beta_1 * x_new

    ``z`` starts at the parameters' values. See the module doc for the
    train/eval weight swap.

    Args:
        params: parameters to optimize, or ``None`` for an unbound optimizer.
        learning_rate (float or callable): default 0.0025.
        beta_1 (float): in ``[0, 1)``, first-moment decay and ``y``'s
            interpolation, default 0.9.
        beta_2 (float): in ``[0, 1)``, default 0.999.
        epsilon (float): >= 0, default 1e-8.
        warmup_steps (int): linear warmup of the learning rate, default 0.
        weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema, ...: see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = ("beta_1", "beta_2", "epsilon", "warmup_steps")
    _checks = {
        "beta_1": ADAM_CHECKS["beta_1"],
        "beta_2": ADAM_CHECKS["beta_2"],
        "epsilon": non_negative,
        "warmup_steps": _warmup_steps,
    }
    #: The parameters can hold either of two sets of weights (see module doc).
    has_eval_weights = True

    def __init__(
        self,
        params: Any = None,
        learning_rate: Any = 0.0025,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        warmup_steps: int = 0,
        **kwargs: Any,
    ) -> None:
        # weight_decay, clipnorm, ... name: the base class's keywords.
        super().__init__(
            params,
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            warmup_steps=warmup_steps,
            **kwargs,
        )

    def build(self, params: Any) -> "ScheduleFreeAdamW":
        super().build(params)
        for group in self.__dict__.get("param_groups", ()):
            group.setdefault("weights", _TRAIN)
        return self

    bind = build

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        if self.param_groups and self.param_groups[0].get("weights") == _EVAL:
            raise RuntimeError(
                f"{type(self).__name__}: cannot add a param group while the parameters "
                "hold the evaluation weights; call `.train()` first."
            )
        param_group["weights"] = _TRAIN
        super().add_param_group(param_group)

    # -- the train/eval swap --------------------------------------------------- #
    @property
    def holds_eval_weights(self) -> bool:
        """Whether the parameters hold the evaluation weights ``x`` now."""
        return self.is_bound and any(g.get("weights") == _EVAL for g in self.param_groups)

    @torch.no_grad()
    def eval(self) -> None:
        """Put the evaluation weights ``x`` into the parameters (``y`` is kept)."""
        self._require_bound("swap in the evaluation weights")
        if self.holds_eval_weights:
            return
        for group in self.param_groups:
            beta_1 = group["beta_1"]
            for p in group["params"]:
                state = self.state[p]
                if "momentum" not in state:
                    continue  # never stepped: x = y = z
                state[_TRAIN_WEIGHTS] = p.detach().clone()
                p.sub_(state["momentum"], alpha=1 - beta_1).div_(beta_1)
            group["weights"] = _EVAL

    @torch.no_grad()
    def train(self) -> None:
        """Put the training weights ``y`` back into the parameters, exactly."""
        self._require_bound("swap in the training weights")
        for group in self.param_groups:
            for p in group["params"]:
                kept = self.state[p].pop(_TRAIN_WEIGHTS, None) if p in self.state else None
                if kept is not None:
                    p.copy_(kept)
            group["weights"] = _TRAIN

    @torch.no_grad()
    def rebase_train_weights(self) -> None:
        """The parameters hold evaluation weights ``x`` put there from elsewhere
        (a weights file): keep the training weights they imply with this
        optimizer's state, ``y = (1 - beta_1) z + beta_1 x``, for :meth:`train`."""
        self._require_bound("rebase the training weights")
        if not self.holds_eval_weights:
            raise RuntimeError(f"{type(self).__name__}: the parameters hold the training "
                               "weights; call `.eval()` first.")
        for group in self.param_groups:
            beta_1 = group["beta_1"]
            for p in group["params"]:
                state = self.state[p]
                if "momentum" in state:  # never stepped: x = y, nothing kept
                    state[_TRAIN_WEIGHTS] = torch.lerp(state["momentum"], p.detach(), beta_1)

    def _plan_step(self, work: Any) -> Any:
        if self.holds_eval_weights:
            raise RuntimeError(
                f"{type(self).__name__}: the parameters hold the evaluation weights; "
                "call `.train()` before stepping."
            )
        return super()._plan_step(work)

    # -- the update ------------------------------------------------------------ #
    def _init_state(self, param: torch.Tensor, group: Dict[str, Any]) -> Dict[str, Any]:
        return {"momentum": param.detach().clone(), "velocity": torch.zeros_like(param)}

    def _update(self, group: Dict[str, Any], params: Tensors, grads: Tensors,
                states: List[Dict[str, Any]], lr: float, iteration: int, owned: bool) -> None:
        """One step in place: ``v`` and ``z`` in their state tensors, ``y``
        through ``x`` in the parameters themselves; one temporary (the
        denominator, or each tensor's in turn when the gradients are an
        ``owned`` copy). Nothing here can fail on the inputs the base class has
        checked, so a failing step never leaves anything half-updated."""
        dtype = params[0].dtype
        step = iteration + 1
        beta_1, beta_2 = _cast_scalar(group["beta_1"], dtype), _cast_scalar(group["beta_2"], dtype)
        lr = _cast_scalar(lr, dtype)
        if group["warmup_steps"] > 0:
            lr = lr * min(step / group["warmup_steps"], 1.0)
        z = [s["momentum"] for s in states]
        velocities = [s["velocity"] for s in states]
        ema_square_(velocities, grads, beta_2)
        bias_correction_2 = 1 - beta_2**step
        epsilon = group["epsilon"]
        # x = (y - (1 - beta_1) z_old) / beta_1, written over y before z moves.
        torch._foreach_add_(params, z, alpha=-(1 - beta_1))
        torch._foreach_div_(params, beta_1)
        if owned:
            # The gradient copy is the step's temporary: g / denominator in
            # it, each denominator one tensor's size at a time.
            divide_each_(grads, lambda i: velocities[i].div(bias_correction_2).sqrt_().add_(epsilon))
            torch._foreach_add_(z, grads, alpha=-lr)
        else:
            denominators = torch._foreach_div(velocities, bias_correction_2)
            torch._foreach_sqrt_(denominators)
            torch._foreach_add_(denominators, epsilon)
            torch._foreach_addcdiv_(z, grads, denominators, value=-lr)
            del denominators
        # x_new = lerp(x, z_new, 1/t), then y_new = beta_1 x_new + (1 - beta_1) z_new.
        torch._foreach_lerp_(params, z, 1.0 / step)
        torch._foreach_mul_(params, beta_1)
        torch._foreach_add_(params, z, alpha=1 - beta_1)


@contextlib.contextmanager
def evaluation_weights(optimizer: Any) -> Iterator[None]:
    """Run the block on ``optimizer``'s evaluation weights, if it has some.

    For an optimizer with ``has_eval_weights`` (:class:`ScheduleFreeAdamW`,
    also inside a loss-scale or multi-optimizer) the parameters hold the
    evaluation weights in the block and the training weights again after it,
    also on errors; for any other optimizer (or none) nothing happens.
    """
    inner = eval_weight_optimizer(optimizer)
    if inner is None or inner.holds_eval_weights:
        yield
        return
    inner.eval()
    try:
        yield
    finally:
        inner.train()

