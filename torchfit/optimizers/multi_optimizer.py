"""Different optimizers for different parameters: ``MultiOptimizer`` and ``OptimizerMap``.

Keras 3.15's ``keras.optimizers.MultiOptimizer`` on torch. Keras maps each
variable by its *path* (``"encoder/dense/kernel"``); a torch parameter's
counterpart is its ``named_parameters()`` name (``"encoder.dense.weight"``).
An :class:`OptimizerMap` key is a regular expression that must
``re.fullmatch`` the name, either as torch writes it or with ``/`` for
``.`` (so Keras's ``"encoder/.*"`` and torch's ``r"encoder\\..*"`` both pick
every parameter of the submodule ``encoder``).

``MultiOptimizer`` is a :class:`torch.optim.Optimizer`: its
``param_groups`` are those of its sub-optimizers (the same dicts), so torch
LR schedulers, ``ReduceLROnPlateau`` and ``LearningRateScheduler`` reach
every sub-optimizer, each of which keeps its own learning-rate schedule;
its ``state_dict`` holds every sub-optimizer's state, for checkpoints and
exact resume.
"""

from __future__ import annotations

import collections
import re
from collections.abc import MutableMapping
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import torch

# The hook registries torch.optim.Optimizer's methods (hooks, schedulers) expect.
from torchfit.optimizers.base import _HOOK_REGISTRIES, Optimizer, Work, _Uninterrupted, named_entries
from torchfit.optimizers.loss_scale_optimizer import LossScaleOptimizer
from torchfit.optimizers._registry import deserialize, serialize

__all__ = ["MultiOptimizer", "OptimizerMap"]

NamedParameter = Tuple[str, torch.Tensor]

def _check_sub_optimizer(optimizer: Any, where: str) -> None:
    """Keras's refusals, plus torchfit's: a sub-optimizer is an unbound
    torchfit optimizer that this MultiOptimizer binds."""
    if isinstance(optimizer, LossScaleOptimizer):
        raise ValueError(f"{where}: optimizer cannot be LossScaleOptimizer.")
    if isinstance(optimizer, MultiOptimizer):
        raise ValueError(f"{where}: optimizer cannot be MultiOptimizer.")
    if not isinstance(optimizer, Optimizer):
        raise ValueError(
            f"{where}: optimizer must be a torchfit optimizer (e.g. "
            f"torchfit.optimizers.Adam()). Received: {optimizer!r} of type "
            f"{type(optimizer).__name__}."
        )


class OptimizerMap(MutableMapping):
    """Parameter-name patterns -> optimizers, with a default (Keras's API).

    ``map[name]`` is the optimizer of an exact key, else of the one key
    that ``re.fullmatch``-es ``name`` (or ``name`` with ``/`` for ``.``),
    else ``default_optimizer``; two matching keys raise ``ValueError``.

    Args:
        default_optimizer: the optimizer of every parameter no key matches.
        optimizer_map (dict, optional): initial ``{pattern: optimizer}``.
    """

    def __init__(self, default_optimizer: Optimizer,
                 optimizer_map: Optional[Dict[str, Optimizer]] = None) -> None:
        if not isinstance(default_optimizer, Optimizer):
            raise TypeError(
                "default_optimizer must be a torchfit Optimizer instance. "
                f"Received: {default_optimizer!r}"
            )
        if optimizer_map is not None and not isinstance(optimizer_map, dict):
            raise TypeError(f"optimizer_map must be a dictionary. Received: {optimizer_map!r}")
        self._default_optimizer = default_optimizer
        self._optimizer_map: Dict[str, Optimizer] = {}
        for key, optimizer in (optimizer_map or {}).items():
            self[key] = optimizer

    @property
    def default_optimizer(self) -> Optimizer:
        return self._default_optimizer

    def __getitem__(self, key: str) -> Optimizer:
        if key in self._optimizer_map:
            return self._optimizer_map[key]
        forms = (key, key.replace(".", "/"))
        matching = [p for p in self._optimizer_map if any(re.fullmatch(p, f) for f in forms)]
        if len(matching) > 1:
            raise ValueError(
                f"Multiple optimizers assigned to variable {key}: the patterns "
                f"{matching} all match it; expected at most one."
            )
        if matching:
            return self._optimizer_map[matching[0]]
        return self._default_optimizer

    def __setitem__(self, key: str, optimizer: Optimizer) -> None:
        if key in self._optimizer_map:
            raise ValueError(
                f"'{key}' already exists in the OptimizerMap with value "
                f"{self._optimizer_map[key]!r}. Please make sure to not use duplicated keys."
            )
        if not isinstance(key, str):
            raise ValueError(f"key must be a string. Received: {key!r}")
        try:
            re.compile(key)
        except re.error as error:
            raise ValueError(f"key must be a regular expression; {key!r} is not: {error}.") from None
        _check_sub_optimizer(optimizer, "OptimizerMap")
        self._optimizer_map[key] = optimizer

    def __delitem__(self, key: str) -> None:
        del self._optimizer_map[key]

    def __len__(self) -> int:
        return len(self._optimizer_map)

    def __iter__(self) -> Iterator[str]:
        return iter(self._optimizer_map)

    def __call__(self, name: str, param: Optional[torch.Tensor] = None) -> Optimizer:
        """The optimizer of the parameter named ``name``."""
        return self[name]

    def get_config(self) -> Dict[str, Any]:
        return {
            "default_optimizer": serialize(self._default_optimizer),
            "optimizer_map": {k: serialize(v) for k, v in self._optimizer_map.items()},
        }

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> "OptimizerMap":
        default = deserialize(config["default_optimizer"], custom_objects=custom_objects)
        entries = {k: deserialize(v, custom_objects=custom_objects)
                   for k, v in (config.get("optimizer_map") or {}).items()}
        return cls(default, entries)


Selector = Union[OptimizerMap, Callable[[str, torch.Tensor], Optimizer]]


def _named(params: Any) -> List[NamedParameter]:
    """``params`` (a module, ``(name, tensor)`` pairs or tensors) as named pairs."""
    if isinstance(params, torch.nn.Module):
        return [(n, p) for n, p in params.named_parameters() if p.requires_grad]
    named = []
    for index, entry in enumerate(params):
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
            named.append(entry)
        elif isinstance(entry, torch.Tensor):
            named.append((str(index), entry))
        else:
            raise TypeError(
                "MultiOptimizer.build: argument `params` must be a torch.nn.Module, "
                "(name, tensor) pairs or tensors. Received an entry of type "
                f"{type(entry).__name__}."
            )
    return named


class MultiOptimizer(torch.optim.Optimizer):
    """Route each parameter to its own optimizer (Keras's ``MultiOptimizer``).

    Args:
        optimizer_map: an :class:`OptimizerMap`, or a callable
            ``selector(name, param) -> optimizer`` called once per parameter
            at binding time (with the ``named_parameters()`` name).
        loss_scale_factor (float, optional): overrides the sub-optimizers'
            ``loss_scale_factor``; :meth:`scale_loss` multiplies by it.
        name (str, optional): default ``"multi_optimizer"``.

    Sub-optimizers are unbound torchfit optimizers; ``compile`` (or
    :meth:`build` with the model) binds each to its parameters, by name.
    ``step()`` steps every sub-optimizer that has gradients; ``iterations``
    counts the steps of the MultiOptimizer itself. As in Keras, it has no
    single ``learning_rate``: read and set it on ``.optimizers``.
    """

    #: ``compile`` binds it to the model itself (parameter names).
    binds_module = True
    #: Whether a sub-optimizer keeps evaluation weights (see ScheduleFreeAdamW).
    has_eval_weights = False

    def __init__(self, optimizer_map: Selector, loss_scale_factor: Optional[float] = None,
                 name: Optional[str] = None) -> None:
        if not (isinstance(optimizer_map, OptimizerMap) or callable(optimizer_map)):
            raise TypeError(
                "MultiOptimizer: argument `optimizer_map` must be an OptimizerMap or a "
                "callable selector(name, param) -> optimizer. Received: "
                f"{type(optimizer_map).__name__}."
            )
        self._optimizer_map = optimizer_map
        self.name = name or "multi_optimizer"
        self._inner_optimizers: List[Optimizer] = []
        self._loss_scale_factor = loss_scale_factor
        self._iterations = 0
        self._names: Dict[int, str] = {}
        self.defaults: Dict[str, Any] = {}
        for registry in _HOOK_REGISTRIES:
            setattr(self, registry, collections.OrderedDict())
        if isinstance(optimizer_map, OptimizerMap):
            for optimizer in list(optimizer_map.values()) + [optimizer_map.default_optimizer]:
                self._adopt(optimizer)

    def _adopt(self, optimizer: Optimizer) -> None:
        if all(optimizer is not known for known in self._inner_optimizers):
            _check_sub_optimizer(optimizer, "MultiOptimizer")
            if self._loss_scale_factor is not None:
                optimizer.loss_scale_factor = self._loss_scale_factor
            self._inner_optimizers.append(optimizer)

    # -- binding -------------------------------------------------------------- #
    @property
    def is_bound(self) -> bool:
        return bool(self._names)

    @property
    def optimizers(self) -> List[Optimizer]:
        """The sub-optimizers, in the order Keras lists them."""
        return list(self._inner_optimizers)

    def build(self, params: Any) -> "MultiOptimizer":
        """Bind every sub-optimizer to the parameters routed to it.

        ``params``: the model (``compile`` passes it), ``(name, tensor)``
        pairs, or tensors (named by position). Nothing is bound if a
        parameter's optimizer is refused.
        """
        if self.is_bound:
            raise RuntimeError(f"MultiOptimizer '{self.name}' is already bound to parameters.")
        named = _named(params)
        routes: List[Tuple[Optimizer, NamedParameter]] = []
        for name, param in named:
            optimizer = self._optimizer_map(name, param)
            if isinstance(optimizer, LossScaleOptimizer):
                raise ValueError("LossScaleOptimizer cannot be used inside an MultiOptimizer.")
            if isinstance(optimizer, MultiOptimizer):
                raise ValueError("MultiOptimizer cannot be used inside an MultiOptimizer.")
            _check_sub_optimizer(optimizer, f"MultiOptimizer (parameter '{name}')")
            routes.append((optimizer, (name, param)))
        for optimizer, _ in routes:
            self._adopt(optimizer)
        for optimizer in self._inner_optimizers:
            mine = [pair for chosen, pair in routes if chosen is optimizer]
            if mine:
                optimizer.build(mine)
        self._names = {id(p): n for n, p in named}
        self.has_eval_weights = any(o.has_eval_weights for o in self._inner_optimizers)
        return self

    bind = build

    def optimizer_of(self, param: torch.Tensor) -> Optional[Optimizer]:
        """The sub-optimizer bound to ``param`` (None if none is)."""
        for optimizer in self._bound_optimizers():
            if any(p is param for g in optimizer.param_groups for p in g["params"]):
                return optimizer
        return None

    def _bound_optimizers(self) -> List[Optimizer]:
        return [o for o in self._inner_optimizers if o.is_bound]

    # -- torch's surface -------------------------------------------------------- #
    @property
    def param_groups(self) -> List[Dict[str, Any]]:
        """Every sub-optimizer's param groups (the same dicts)."""
        return [g for o in self._bound_optimizers() for g in o.param_groups]

    @property
    def state(self) -> Dict[torch.Tensor, Dict[str, Any]]:
        """Every sub-optimizer's per-parameter state (the same dicts)."""
        return {p: s for o in self._bound_optimizers() for p, s in o.state.items()}

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        raise RuntimeError(
            "MultiOptimizer routes parameters by name at binding; add a param group to "
            "one of `.optimizers` instead."
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self._bound_optimizers():
            optimizer.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Step every sub-optimizer (those without gradients do nothing).

        Every sub-optimizer's step is checked (gradients, learning rates and
        schedules, hyper-parameters, the state it creates) before the first
        one writes, so a step that fails changes no parameter or state.
        """
        self._require_bound("step")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check_gradients({id(p): p.grad for g in self.param_groups for p in g["params"]})
        works = [(o, o._collect_work(lambda p: p.grad)) for o in self._bound_optimizers()]
        self._step_all(works, through_step=True)
        return loss

    def _step_all(self, works: List[Tuple[Optimizer, Work]], through_step: bool) -> None:
        """Plan every sub-optimizer's step, then write them all, with Ctrl-C
        held back until the last write: a failing plan writes nothing. After
        the plans only an update rule's temporaries are allocated (one
        tensor's at a time), as in a single optimizer's step.

        ``through_step``: write each plan through the sub-optimizer's
        ``step()`` (its step hooks run, before and after its write, and its
        LR schedulers see it step), as :meth:`step` does; ``apply``, like
        Keras's ``apply`` on one optimizer, writes them directly."""
        plans = [(optimizer, optimizer._plan_step(work)) for optimizer, work in works]
        with _Uninterrupted():
            for optimizer, plan in plans:
                if through_step:
                    optimizer._step_planned(plan)
                elif plan is not None:
                    optimizer._write_step(plan)
            self._iterations += 1

    def _check_gradients(self, grads: Dict[int, Any]) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                g = grads.get(id(p))
                if g is None:
                    continue
                if g.is_sparse or g.shape != p.shape or not p.is_floating_point():
                    raise ValueError(
                        f"MultiOptimizer: parameter '{self._names.get(id(p), '?')}' of shape "
                        f"{tuple(p.shape)} and dtype {p.dtype} cannot take a "
                        f"{'sparse ' if g.is_sparse else ''}gradient of shape "
                        f"{tuple(g.shape)}; expected a dense floating-point gradient of "
                        "the parameter's shape. No parameter was updated."
                    )

    def _require_bound(self, what: str) -> None:
        if not self.is_bound:
            raise RuntimeError(
                f"MultiOptimizer '{self.name}' is not bound to any parameters yet, so it "
                f"cannot {what}; call `.build(model)` (compile does) first."
            )

    # -- Keras's surface -------------------------------------------------------- #
    @property
    def iterations(self) -> int:
        return self._iterations

    @property
    def learning_rate(self) -> float:
        raise AttributeError(
            "Learning rate cannot be accessed on a MultiOptimizer. "
            "Access the learning rate on the individual sub-optimizers instead."
        )

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        raise AttributeError(
            "Learning rate cannot be set on a MultiOptimizer. "
            "Set the learning rate on the individual sub-optimizers instead."
        )

    @property
    def loss_scale_factor(self) -> Optional[float]:
        return self._loss_scale_factor

    @loss_scale_factor.setter
    def loss_scale_factor(self, value: Optional[float]) -> None:
        self._loss_scale_factor = value
        for optimizer in self._inner_optimizers:
            optimizer.loss_scale_factor = value

    def scale_loss(self, loss: Any) -> Any:
        """``loss * loss_scale_factor`` (unchanged when it is None)."""
        return loss if self._loss_scale_factor is None else loss * self._loss_scale_factor

    @torch.no_grad()
    def apply(self, grads: Any, trainable_variables: Any = None) -> None:
        """Keras's ``apply(grads, params)``: each sub-optimizer gets its share
        (every share is checked before the first is written, see :meth:`step`).
        ``trainable_variables`` holds tensors or ``(name, tensor)`` pairs; an
        unbound ``MultiOptimizer`` routes pairs by their names."""
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            self._require_bound("apply gradients without `trainable_variables`")
            trainable_variables = [p for g in self.param_groups for p in g["params"]]
        entries, params = named_entries("MultiOptimizer", trainable_variables)
        if not self.is_bound:
            self.build(entries)  # (name, tensor) pairs route by their names
        if len(grads) != len(params):
            raise ValueError(
                "Gradients must match trainable variables one-to-one. "
                f"Received {len(grads)} gradients and {len(params)} variables."
            )
        shares: Dict[int, Tuple[list, list]] = {}
        for g, p in zip(grads, params):
            optimizer = self.optimizer_of(p)
            if optimizer is None:
                raise ValueError(
                    f"MultiOptimizer: unknown parameter of shape {tuple(p.shape)}; expected "
                    "one of the parameters it was bound to."
                )
            share = shares.setdefault(id(optimizer), ([], []))
            share[0].append(g)
            share[1].append(p)
        checked = {id(p): g if g is None or isinstance(g, torch.Tensor) else torch.as_tensor(g)
                   for g, p in zip(grads, params)}
        self._check_gradients(checked)
        works = []
        for optimizer in self._bound_optimizers():
            if id(optimizer) in shares:
                lookup = optimizer._gradient_lookup(*shares[id(optimizer)])
                work = optimizer._collect_work(lambda p, share=lookup: share.get(id(p)))
                works.append((optimizer, work))
        self._step_all(works, through_step=False)

    def apply_gradients(self, grads_and_vars: Any) -> int:
        pairs = list(grads_and_vars)
        if pairs:
            grads, params = zip(*pairs)
            self.apply(grads, params)
        return self.iterations

    def swap_ema_weights(self) -> None:
        """Swap weights and moving averages in every sub-optimizer with ``use_ema``."""
        for optimizer in self._bound_optimizers():
            if optimizer.use_ema:
                optimizer.swap_ema_weights()

    def finalize_variable_values(self, var_list: Any = None) -> None:
        for optimizer in self._bound_optimizers():
            mine = None
            if var_list is not None:
                mine = [p for p in var_list if self.optimizer_of(p) is optimizer]
            optimizer.finalize_variable_values(mine)

    @property
    def use_ema(self) -> bool:
        return any(o.use_ema for o in self._inner_optimizers)

    @property
    def holds_eval_weights(self) -> bool:
        return any(o.has_eval_weights and o.holds_eval_weights for o in self._bound_optimizers())

    def eval(self) -> None:
        """Evaluation weights in for every sub-optimizer that has some."""
        for optimizer in self._bound_optimizers():
            if optimizer.has_eval_weights:
                optimizer.eval()

    def train(self) -> None:
        """Training weights back for every sub-optimizer that has evaluation ones."""
        for optimizer in self._bound_optimizers():
            if optimizer.has_eval_weights:
                optimizer.train()

    def rebase_train_weights(self) -> None:
        """:meth:`ScheduleFreeAdamW.rebase_train_weights` for every
        sub-optimizer that holds evaluation weights."""
        for optimizer in self._bound_optimizers():
            if optimizer.has_eval_weights and optimizer.holds_eval_weights:
                optimizer.rebase_train_weights()

    # -- state and config --------------------------------------------------------- #
    def state_dict(self) -> Dict[str, Any]:
        """``{"iterations", "optimizers": [state_dict of each bound sub-optimizer]}``."""
        self._require_bound("produce a state_dict")
        return {"iterations": self._iterations,
                "optimizers": [o.state_dict() for o in self._bound_optimizers()]}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Load :meth:`state_dict`'s output; nothing changes if it does not fit."""
        self._require_bound("load a state_dict")
        bound = self._bound_optimizers()
        states = state_dict.get("optimizers") if isinstance(state_dict, dict) else None
        if not isinstance(states, list) or len(states) != len(bound):
            raise ValueError(
                "MultiOptimizer.load_state_dict: expected the state of "
                f"{len(bound)} sub-optimizers; received "
                f"{len(states) if isinstance(states, list) else type(state_dict).__name__}."
            )
        saved = [o.state_dict() for o in bound]
        try:
            for optimizer, state in zip(bound, states):
                optimizer.load_state_dict(state)
        except BaseException:
            for optimizer, state in zip(bound, saved):
                optimizer.load_state_dict(state)
            raise
        self._iterations = int(state_dict.get("iterations", 0))

    def get_config(self) -> Dict[str, Any]:
        if not isinstance(self._optimizer_map, OptimizerMap):
            raise TypeError(
                "MultiOptimizer.get_config: a callable selector cannot be serialized; "
                "expected an OptimizerMap."
            )
        return {"optimizer_map": self._optimizer_map.get_config(),
                "loss_scale_factor": self._loss_scale_factor, "name": self.name}

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> "MultiOptimizer":
        config = dict(config)
        mapping = config.pop("optimizer_map")
        if isinstance(mapping, dict) and "config" in mapping and "default_optimizer" not in mapping:
            mapping = mapping["config"]  # a serialized OptimizerMap
        return cls(OptimizerMap.from_config(mapping, custom_objects), **config)

    def __getstate__(self) -> Dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _HOOK_REGISTRIES}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        for registry in _HOOK_REGISTRIES:
            setattr(self, registry, collections.OrderedDict())

    def __repr__(self) -> str:
        inner = ", ".join(type(o).__name__ for o in self._inner_optimizers)
        return f"MultiOptimizer({self.name!r}, optimizers=[{inner}])"
