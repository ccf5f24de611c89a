r"""Muon: Newton–Schulz orthogonalised momentum for matrices, AdamW for the rest.

Keras 3.15's ``keras.optimizers.Muon`` on torch parameters. Keras decides per
variable, by its shape and its path, whether the Muon step or the AdamW step
updates it; a torch parameter has no path, so here the rule reads:

* a parameter that is not 2-D (biases, norms, convolution kernels) uses
  AdamW;
* with ``exclude_embeddings=True`` (default) the weights of
  :class:`torch.nn.Embedding`/:class:`torch.nn.EmbeddingBag` modules use
  AdamW — known when the optimizer is bound to a module (``compile`` does
  that, as does ``Muon(model)``) — and so does any parameter whose name
  contains ``"embedding"`` (Keras's rule, case-insensitive);
* a parameter whose ``named_parameters()`` name (``"head.weight"``) matches
  one of the ``exclude_layers`` regular expressions (``re.search``) uses
  AdamW;
* every other parameter uses the Muon step.

Names come from the module, from ``(name, tensor)`` pairs, or from param
groups that carry ``"param_names"``; a parameter without a name is judged by
its shape and module type only.

The two kinds go to separate param groups (``group["use_adamw"]``), so the
AdamW ones decay with ``adam_weight_decay`` and the Muon ones with
``weight_decay``, both times ``learning_rate``, as Keras does.
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Optional, Sequence

import torch

from ._foreach import ema_, ema_square_, sqrt_plus
from ._validation import (
    ADAM_CHECKS,
    any_float,
    boolean,
    check_number,
    non_negative,
    positive,
    unit_interval,
)
from .adam import _step_size
from .base import Optimizer

__all__ = ["Muon"]

Tensors = List[torch.Tensor]

_EMBEDDING_MODULES = (torch.nn.Embedding, torch.nn.EmbeddingBag)


def _ns_steps(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{owner}: argument `{name}` must be an int >= 1; received {name}={value!r}."
        )
    return value


def _exclude_layers(owner: str, name: str, value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise TypeError(
            f"{owner}: argument `{name}` must be a list of regular expressions "
            f"(str) or None; received {name}={value!r}."
        )
    return list(value)


def _optional_positive(owner: str, name: str, value: Any) -> Optional[float]:
    return check_number(owner, name, value, low=0.0, low_open=True, allow_none=True)


def _optional_non_negative(owner: str, name: str, value: Any) -> Optional[float]:
    return check_number(owner, name, value, low=0.0, allow_none=True)


def _transpose_last(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-2, -1)


def newton_schulz(x: torch.Tensor, steps: int, a: float, b: float, c: float) -> torch.Tensor:
    """Keras's quintic Newton–Schulz iteration: an approximate ``U V^T`` of ``x``.

    ``x`` (at least 2-D) is scaled to spectral norm <= 1 by its Frobenius
    norm, then ``x <- a x + (b A + c A^2) x`` with ``A = x x^T``, ``steps``
    times, on the wider orientation of ``x`` (batched over leading dimensions).
    """
    if x.ndim < 2:
        raise ValueError(
            "Expected gradient or momentum to have at least 2 dimensions. "
            f"Received: shape={tuple(x.shape)}"
        )
    tall = x.shape[-2] > x.shape[-1]
    if tall:
        x = _transpose_last(x)
    shape = x.shape
    # One batch of matrices; ``baddbmm`` fuses each scaled sum into its
    # product, so an iteration holds x, A, the polynomial and the new x only.
    x = x.reshape(-1, shape[-2], shape[-1])
    x = x / (torch.linalg.vector_norm(x, dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        gram = torch.bmm(x, _transpose_last(x))
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        del gram
        x = torch.baddbmm(x, poly, x, beta=a)
        del poly
    x = x.reshape(shape)
    return _transpose_last(x) if tall else x


def _adamw_update_(group: Dict[str, Any], params: Tensors, grads: Tensors,
                   states: List[Dict[str, Any]], lr: float, step: int, owned: bool) -> None:
    """Keras's Muon-internal AdamW step, in place: Adam's rule (epsilon outside
    the square root) with ``adam_beta_1``, ``adam_beta_2`` and learning rate
    ``lr * adam_lr_ratio``; one temporary (the denominator, in the gradients
    when they are ``owned``)."""
    beta_1, beta_2 = group["adam_beta_1"], group["adam_beta_2"]
    alpha = _step_size(lr * group["adam_lr_ratio"], beta_1, beta_2, step, params[0].dtype)
    momentums = [s["momentum"] for s in states]
    velocities = [s["velocity"] for s in states]
    ema_(momentums, grads, beta_1)
    ema_square_(velocities, grads, beta_2)
    denominators = sqrt_plus(velocities, group["epsilon"], grads if owned else None)
    torch._foreach_addcdiv_(params, momentums, denominators, value=-alpha)


def _direction(grad: torch.Tensor, momentum_buffer: torch.Tensor, momentum: float,
               nesterov: bool, owned: bool) -> torch.Tensor:
    """The Muon direction of one matrix: ``g + momentum * m`` (nesterov;
    already in ``grad`` when the gradients are ``owned``), else ``m``."""
    if not nesterov:
        return momentum_buffer
    return grad if owned else torch.add(grad, momentum_buffer, alpha=momentum)


def _scaled_(update: torch.Tensor, lr: float, rms_rate: Optional[float]) -> torch.Tensor:
    """``update * lr * sqrt(max(rows, cols)) * rms_rate`` in place (Keras's
    ``lr_adjust(lr * update)``, the same operations in the same order)."""
    update.mul_(lr)
    if rms_rate is not None:
        update.mul_(math.sqrt(max(update.shape[0], update.shape[1]))).mul_(rms_rate)
    return update


class Muon(Optimizer):
    r"""Muon, as ``keras.optimizers.Muon`` (see the module doc for which
    parameters take the Muon step and which the AdamW step).

    Muon step of a 2-D parameter ``w`` with gradient ``g``::

        m <- momentum * m + g
        u = g + momentum * m          (nesterov; else u = m)
        w <- w - lr * NS(u) * sqrt(max(rows, cols)) * rms_rate

    where ``NS`` is :func:`newton_schulz` (``ns_steps`` iterations with
    ``muon_a``, ``muon_b``, ``muon_c``); ``rms_rate=None`` drops the scaling.
    AdamW step: :class:`~torchfit.optimizers.Adam`'s rule with
    ``adam_beta_1``, ``adam_beta_2``, ``epsilon`` and learning rate
    ``lr * adam_lr_ratio``.

    Args:
        params: parameters, ``(name, tensor)`` pairs, param groups or a
            module; ``None`` for an unbound optimizer (``compile`` binds it to
            the model).
        learning_rate (float or callable): default 0.001.
        adam_beta_1, adam_beta_2 (float): AdamW's betas, default 0.9, 0.999.
        adam_weight_decay (float): decay of the AdamW parameters, default 0.004.
        epsilon (float): AdamW's epsilon, default 1e-7.
        weight_decay (float): decay of the Muon parameters, default 0.004.
        exclude_layers (list of str): regexes of parameter names that use AdamW.
        exclude_embeddings (bool): embedding weights use AdamW, default True.
        muon_a, muon_b, muon_c (float): Newton–Schulz coefficients.
        adam_lr_ratio (float): AdamW's share of the learning rate, default 1.
        momentum (float): in ``[0, 1)``, default 0.95.
        ns_steps (int): Newton–Schulz iterations, default 5.
        nesterov (bool): default True.
        rms_rate (float or None): update scaling of Liu et al. 2025, default 0.2.
        clipnorm, clipvalue, global_clipnorm, use_ema, ...: see
            :class:`torchfit.optimizers.Optimizer`.
    """

    hyperparameters = (
        "adam_beta_1", "adam_beta_2", "adam_weight_decay", "epsilon", "exclude_layers",
        "exclude_embeddings", "muon_a", "muon_b", "muon_c", "adam_lr_ratio", "momentum",
        "ns_steps", "nesterov", "rms_rate",
    )
    _checks = {
        "adam_beta_1": ADAM_CHECKS["beta_1"],
        "adam_beta_2": ADAM_CHECKS["beta_2"],
        "adam_weight_decay": _optional_non_negative,
        "epsilon": non_negative,
        "exclude_layers": _exclude_layers,
        "exclude_embeddings": boolean,
        "muon_a": any_float,
        "muon_b": any_float,
        "muon_c": any_float,
        "adam_lr_ratio": positive,
        "momentum": unit_interval(),
        "ns_steps": _ns_steps,
        "nesterov": boolean,
        "rms_rate": _optional_positive,
    }
    #: ``compile`` binds it to the model itself (names and module types).
    binds_module = True

    def __init__(
        self,
        params: Any = None,
        learning_rate: Any = 0.001,
        adam_beta_1: float = 0.9,
        adam_beta_2: float = 0.999,
        adam_weight_decay: Optional[float] = 0.004,
        epsilon: float = 1e-7,
        weight_decay: Optional[float] = 0.004,
        clipnorm: Optional[float] = None,
        clipvalue: Optional[float] = None,
        global_clipnorm: Optional[float] = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: Optional[int] = None,
        loss_scale_factor: Optional[float] = None,
        gradient_accumulation_steps: Optional[int] = None,
        name: Optional[str] = None,
        exclude_layers: Optional[Sequence[str]] = None,
        exclude_embeddings: bool = True,
        muon_a: float = 3.4445,
        muon_b: float = -4.7750,
        muon_c: float = 2.0315,
        adam_lr_ratio: float = 1,
        momentum: float = 0.95,
        ns_steps: int = 5,
        nesterov: bool = True,
        rms_rate: Optional[float] = 0.2,
        **kwargs: Any,
    ) -> None:
        self._embedding_ids: set = set()
        super().__init__(
            None,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            adam_beta_1=adam_beta_1,
            adam_beta_2=adam_beta_2,
            adam_weight_decay=adam_weight_decay,
            epsilon=epsilon,
            exclude_layers=exclude_layers,
            exclude_embeddings=exclude_embeddings,
            muon_a=muon_a,
            muon_b=muon_b,
            muon_c=muon_c,
            adam_lr_ratio=adam_lr_ratio,
            momentum=momentum,
            ns_steps=ns_steps,
            nesterov=nesterov,
            rms_rate=rms_rate,
            **kwargs,
        )
        if params is not None:
            self.build(params)

    # -- binding: which parameters take which step ---------------------------- #
    def build(self, params: Any) -> "Muon":
        """Bind to ``params`` (see the module doc), in two kinds of param groups."""
        if isinstance(params, torch.nn.Module):
            self._embedding_ids = {
                id(p) for module in params.modules() if isinstance(module, _EMBEDDING_MODULES)
                for p in module.parameters(recurse=False)
            }
            params = [(n, p) for n, p in params.named_parameters() if p.requires_grad]
        groups = [g for group in _as_groups(params) for g in self._split(group)]
        return super().build(groups)

    bind = build

    def _should_use_adamw(self, param: torch.Tensor, name: Optional[str] = None) -> bool:
        """Whether ``param`` (named ``name``) takes the AdamW step."""
        if param.ndim != 2:
            return True
        if self.exclude_embeddings and (
            id(param) in self._embedding_ids or (name and "embedding" in name.lower())
        ):
            return True
        return bool(name) and any(re.search(k, name) for k in self.exclude_layers)

    def _split(self, group: Dict[str, Any]) -> List[Dict[str, Any]]:
        params, names = group["params"], group.get("param_names")
        kinds = [self._should_use_adamw(p, names[i] if names else None)
                 for i, p in enumerate(params)]
        split = []
        for use_adamw in (False, True):
            chosen = [i for i, kind in enumerate(kinds) if kind is use_adamw]
            if not chosen:
                continue
            sub = {k: v for k, v in group.items() if k not in ("params", "param_names")}
            sub["params"] = [params[i] for i in chosen]
            if names:
                sub["param_names"] = [names[i] for i in chosen]
            sub["use_adamw"] = use_adamw
            if use_adamw and "weight_decay" not in group:
                sub["weight_decay"] = self.adam_weight_decay
            split.append(sub)
        return split

    def __setattr__(self, name: str, value: Any) -> None:
        # Each kind of group decays with its own rate: ``weight_decay`` is the
        # Muon groups' and ``adam_weight_decay`` the AdamW groups'.
        super().__setattr__(name, value)
        if name in ("weight_decay", "adam_weight_decay") and "param_groups" in self.__dict__:
            adamw_rate = self.defaults["adam_weight_decay"]
            for group in self.param_groups:
                if group.get("use_adamw"):
                    group["weight_decay"] = adamw_rate

    # -- the update ----------------------------------------------------------- #
    def _init_state(self, param: torch.Tensor, group: Dict[str, Any]) -> Dict[str, Any]:
        state = {"momentum": torch.zeros_like(param)}
        if group.get("use_adamw", param.ndim != 2):
            state["velocity"] = torch.zeros_like(param)
        return state

    def _group_steps(self, work: Any, params: Tensors, grads: Tensors,
                     lrs: List[float]) -> List[Any]:
        # Checked before any write: the Newton–Schulz step needs matrices (a
        # group added without ``use_adamw`` may hold other shapes).
        steps = super()._group_steps(work, params, grads, lrs)
        for step in steps:
            if step.group.get("use_adamw", False):
                continue
            for p in step.params:
                if p.ndim < 2:
                    raise ValueError(
                        "Expected gradient or momentum to have at least 2 dimensions. "
                        f"Received: shape={tuple(p.shape)}"
                    )
        return steps

    def _update(self, group: Dict[str, Any], params: Tensors, grads: Tensors,
                states: List[Dict[str, Any]], lr: float, iteration: int, owned: bool) -> None:
        """One step in place. The momenta update with foreach kernels; the
        Newton–Schulz iteration runs per matrix, so its temporaries are one
        matrix's at a time (the nesterov direction goes into the gradients
        when they are ``owned``). Everything that can fail (shapes included,
        see :meth:`_group_steps`) is checked before the first write."""
        if group.get("use_adamw", False):
            _adamw_update_(group, params, grads, states, lr, iteration + 1, owned)
            return
        momentum = group["momentum"]
        momentums = [s["momentum"] for s in states]
        torch._foreach_mul_(momentums, momentum)
        torch._foreach_add_(momentums, grads)
        nesterov = group["nesterov"]
        if nesterov and owned:
            torch._foreach_add_(grads, momentums, alpha=momentum)
        coefficients = group["muon_a"], group["muon_b"], group["muon_c"]
        for p, g, m in zip(params, grads, momentums):
            # No names for the direction and the update: each temporary is
            # freed once used, not kept through the next matrix's iteration.
            p.sub_(_scaled_(
                newton_schulz(_direction(g, m, momentum, nesterov, owned),
                              group["ns_steps"], *coefficients),
                lr, group["rms_rate"],
            ))

    def zeropower_via_newtonschulz5(self, x: Any, steps: int,
                                    group: Optional[Dict[str, Any]] = None) -> torch.Tensor:
        """:func:`newton_schulz` with this optimizer's coefficients (Keras's name)."""
        source = group if group is not None else self.defaults
        x = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
        return newton_schulz(x, steps, source["muon_a"], source["muon_b"], source["muon_c"])

    def lr_adjust(self, x: Any, rms_rate: Any = "default") -> torch.Tensor:
        """``x * sqrt(max(rows, cols)) * rms_rate`` (``x`` itself if it is None)."""
        rms_rate = self.rms_rate if rms_rate == "default" else rms_rate
        x = x if isinstance(x, torch.Tensor) else torch.as_tensor(x)
        if rms_rate is None:
            return x
        return x * math.sqrt(max(x.shape[0], x.shape[1])) * rms_rate

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        config["exclude_layers"] = list(self.exclude_layers)
        return config


def _as_groups(params: Any) -> List[Dict[str, Any]]:
    """``params`` (tensors, ``(name, tensor)`` pairs or group dicts) as group dicts."""
    params = list(params) if not isinstance(params, torch.Tensor) else [params]
    if params and all(isinstance(g, dict) for g in params):
        return [_named_group(dict(g)) for g in params]
    return [_named_group({"params": params})]


def _named_group(group: Dict[str, Any]) -> Dict[str, Any]:
    entries = group["params"]
    entries = [entries] if isinstance(entries, torch.Tensor) else list(entries)
    if entries and all(isinstance(e, tuple) and len(e) == 2 for e in entries):
        group["param_names"] = [name for name, _ in entries]
        entries = [p for _, p in entries]
    group["params"] = entries
    return group
