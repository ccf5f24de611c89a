r"""Base class shared by torchfit's Keras-style optimizers.

:class:`Optimizer` is a real :class:`torch.optim.Optimizer`: it has
``param_groups``, ``state``, ``state_dict()``/``load_state_dict()``, step
hooks, and works with every scheduler in :mod:`torch.optim.lr_scheduler`.
On top of that it speaks Keras 3's optimizer vocabulary:

* Keras argument names and defaults (``learning_rate``, ``weight_decay``,
  ``clipnorm``, ``clipvalue``, ``global_clipnorm``, ``name``) and Keras's
  update rules, including their order within one step:

  1. gradient clipping (``clipnorm`` per tensor, ``clipvalue`` element-wise,
     or ``global_clipnorm`` over all gradients together),
  2. decoupled weight decay ``w <- w - w * weight_decay * lr`` applied to
     every parameter that has a gradient,
  3. the optimizer's own update rule.

* Keras's positional form: ``Adam(1e-3)`` or ``Adam(schedule)`` takes the
  first positional argument as ``learning_rate`` (a number or a schedule is
  never a parameter list); ``Adam(model.parameters(), 1e-3)`` and
  ``params=`` keep torch's form.

* An *unbound* state: constructed without parameters, the optimizer only
  holds its configuration. :meth:`Optimizer.build` (alias
  :meth:`Optimizer.bind`) attaches parameters later, which is when
  ``param_groups`` and ``state`` come into existence.

* ``iterations``, the number of applied steps. It is global to the optimizer
  (Keras's bias corrections use it, not a per-parameter step count) and is
  stored in every param group under ``"iterations"`` so that it travels
  through ``state_dict()``.

* ``learning_rate`` may be a float or a callable schedule (e.g. from
  :mod:`torchfit.optimizers.schedules`). A schedule is called with the
  current ``iterations`` before each step (a callable that takes no argument
  is called without one, as Keras does) and the value is written to every
  param group's ``"lr"`` before the update.

* Keras's common arguments ``use_ema``/``ema_momentum``/
  ``ema_overwrite_frequency`` (weight averages stored in ``state`` under
  ``"average"``), ``gradient_accumulation_steps`` (accumulators under
  ``"gradient_accumulator"``) and ``loss_scale_factor``, with Keras's order
  of operations (see :meth:`Optimizer._apply`).

Hyper-parameters (``lr``, ``weight_decay`` and the rule-specific ones such as
``momentum``) live in the param groups, exactly as in :mod:`torch.optim`, so
they can differ between groups; the corresponding attributes
(``opt.momentum``) read the first group and writing them updates every group.
The Adam family's groups also hold torch's ``betas`` next to Keras's
``beta_1``/``beta_2``, kept in sync, so that torch's ``OneCycleLR`` and
``CyclicLR`` cycle the momentum the update actually uses.

**How a step writes.** Parameters and optimizer state are updated in place
with ``torch._foreach_*`` kernels, holding at most one parameter-sized
temporary, as torch's foreach optimizers do. A step still never leaves
weights or state half-updated: everything that can fail (learning rates and
schedules, gradient shapes, dtypes and sparsity, hyper-parameters set by
torch schedulers, missing state) is checked before the first in-place write,
and a ``KeyboardInterrupt`` (Ctrl-C) that arrives during the writes is
raised once they are complete.

Writing a new optimizer means subclassing :class:`Optimizer`, listing the
rule's hyper-parameters in ``hyperparameters``, giving validators in
``_checks`` and implementing ``_init_state`` and either

* ``_update`` (in place, what the built-in optimizers do): it receives the
  parameters (already decayed), their gradients and state dicts and writes
  them; it must not raise on valid inputs; or
* ``_compute_update`` (pure): it returns new parameters and state values,
  which the base class computes for every group before writing any, so any
  exception it raises leaves everything untouched (at the cost of a full
  copy of the parameters).

This module holds the class; its machinery lives next to it:
``_validation`` (argument checks, the validators used in ``_checks``),
``_schedule_utils`` (calling and (de)serialising learning-rate schedules),
``_gradients`` (loss-scale unscaling, gradient accumulation, clipping),
``_ema`` (moving averages of the weights) and ``_foreach`` (the in-place
building blocks of the update rules).
"""

import _signal
import collections
import functools
import inspect
import math
import numbers
import re
import threading
import warnings
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch

from ..validation import _received, argument_error
from . import _ema, _foreach, _gradients
from ._schedule_utils import (
    _deserialize_schedule,
    _schedule_takes_iterations,
    _serialize_schedule,
    evaluate_schedule,
)

# The validators are importable from here too (``_checks`` of optimizers
# written against this module); ``_cast_scalar`` serves the update rules.
from ._validation import (  # noqa: F401
    _cast_scalar,
    _check_learning_rate,
    _to_float,
    any_float,
    boolean,
    check_bool,
    check_clipping,
    check_common_arguments,
    check_hyperparameter_names,
    check_name,
    check_number,
    non_negative,
    pop_keras_only_arguments,
    positive,
    unit_interval,
)

__all__ = ["Optimizer"]

Tensors = List[torch.Tensor]
#: A param group, and the state dicts of its parameters.
Group = Dict[str, Any]
States = List[Dict[str, Any]]
#: ``[[(index in group, param, grad), ...] per param group]``.
Work = List[List[Tuple[int, torch.Tensor, torch.Tensor]]]

# State keys the base class keeps next to each update rule's own state.
_EMA_KEY = _ema.EMA_KEY
_ACCUMULATOR_KEY = _gradients.ACCUMULATOR_KEY
_BASE_STATE_KEYS = (_EMA_KEY, _ACCUMULATOR_KEY)

# Keys of a param group that hold a value shared by the whole optimizer rather
# than a hyper-parameter; they are advanced by ``step()`` and not validated.
_COUNTER_KEYS = ("iterations",)

# Hook registries that torch.optim.Optimizer.__init__ creates; an unbound
# optimizer needs them too, and hooks registered before binding are kept.
_HOOK_REGISTRIES = (
    "_optimizer_step_pre_hooks",
    "_optimizer_step_post_hooks",
    "_optimizer_state_dict_pre_hooks",
    "_optimizer_state_dict_post_hooks",
    "_optimizer_load_state_dict_pre_hooks",
    "_optimizer_load_state_dict_post_hooks",
)


def _is_learning_rate(value: Any) -> bool:
    """Whether a first positional argument is Keras's ``learning_rate`` (a
    number or a schedule) rather than torch's ``params``."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return True
    return callable(value) and not isinstance(value, (torch.nn.Module, torch.Tensor))


def _keras_positional(init: Callable[..., None]) -> Callable[..., None]:
    """Wrap an optimizer ``__init__`` so that ``X(1e-3, ...)`` binds its
    positional arguments in Keras's order (``learning_rate`` first)."""
    if getattr(init, "_keras_positional", False):
        return init
    parameters = list(inspect.signature(init).parameters.values())[1:]
    names = [
        p.name
        for p in parameters
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.name != "params"
    ]
    if "learning_rate" not in names:
        names.insert(0, "learning_rate")

    @functools.wraps(init)
    def wrapper(self: "Optimizer", *args: Any, **kwargs: Any) -> None:
        if args and _is_learning_rate(args[0]):
            owner = type(self).__name__
            if len(args) > len(names):
                raise TypeError(
                    f"{owner}: in Keras's positional form (learning_rate "
                    f"first) at most {len(names)} positional arguments are "
                    f"expected ({', '.join(names)}); received {len(args)}."
                )
            for name, value in zip(names, args):
                if name in kwargs:
                    raise TypeError(
                        f"{owner}: argument `{name}` was given both "
                        f"positionally (Keras's form) and by keyword; "
                        f"received {name}={value!r} and {name}={kwargs[name]!r}."
                    )
                kwargs[name] = value
            args = ()
        init(self, *args, **kwargs)

    wrapper._keras_positional = True  # type: ignore[attr-defined]
    return wrapper


class _GroupStep(NamedTuple):
    """One param group's share of a step (see ``Optimizer._group_steps``)."""

    group: Group
    params: Tensors
    grads: Tensors
    lr: float
    decayed: Tensors
    decay_factor: float


class _StepPlan(NamedTuple):
    """A checked step, ready to write (see ``Optimizer._plan_step``)."""

    micro: int
    iteration: int
    is_update: bool
    params: Tensors
    grads: Tensors
    owned: bool
    new_state: Dict[torch.Tensor, Dict[str, Any]]
    steps: List[_GroupStep]
    pure: Optional[List[Tuple[Tensors, States]]]


class _Uninterrupted:
    """Hold back Ctrl-C (SIGINT) while a step writes, re-raising it after.

    Only possible in the main thread, and only when Python's default handler
    is installed (a custom handler is left alone). Uses ``_signal`` directly:
    ``signal.signal`` wraps every handler in an enum, which costs more than a
    small model's whole step."""

    __slots__ = ("received", "armed")

    def __init__(self) -> None:
        self.received = False
        self.armed = False

    def _hold(self, signum: int, frame: Any) -> None:
        self.received = True

    def __enter__(self) -> None:
        self.armed = (
            threading.get_ident() == _MAIN_THREAD_ID
            and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler
        )
        if self.armed:
            _signal.signal(_signal.SIGINT, self._hold)

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        if not self.armed:
            return
        _signal.signal(_signal.SIGINT, _signal.default_int_handler)
        if self.received and kind is None:
            raise KeyboardInterrupt


_MAIN_THREAD_ID = threading.main_thread().ident


def _tensor_of(owner: str, entry: Any) -> torch.Tensor:
    """The tensor of a ``trainable_variables`` entry: a tensor, or a
    ``(name, tensor)`` pair as ``named_parameters()`` yields."""
    if isinstance(entry, torch.Tensor):
        return entry
    if (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)
            and isinstance(entry[1], torch.Tensor)):
        return entry[1]
    raise argument_error(
        TypeError, "trainable_variables",
        "an iterable of tensors or of (name, tensor) pairs", f"an entry {_received(entry)}",
        owner=owner)


def named_entries(owner: str, trainable_variables: Any) -> Tuple[List[Any], List[torch.Tensor]]:
    """``trainable_variables`` as given (to bind an unbound optimizer with the
    names of ``(name, tensor)`` pairs) and as tensors, checked entry by entry."""
    entries = list(trainable_variables)
    return entries, [_tensor_of(owner, entry) for entry in entries]


class Optimizer(torch.optim.Optimizer):
    r"""Base class of the Keras-style optimizers.

    Subclasses must provide one update rule: ``_update`` (in place, one param
    group at a time) or ``_compute_update`` (pure, returns new values and
    states). They may provide: ``_init_state`` (per-parameter state tensors),
    ``hyperparameters`` and ``_checks`` (their own arguments and validators),
    ``_group_counters``, ``binds_module``, ``has_eval_weights`` and
    ``get_config`` (for arguments that are not hyper-parameters).

    Args:
        params (iterable, optional): the parameters to optimize, as accepted by
            :class:`torch.optim.Optimizer` (tensors, ``(name, tensor)`` pairs
            or param-group dicts), or a :class:`torch.nn.Module` whose
            ``parameters()`` are taken. ``None`` (default) creates an unbound
            optimizer; call :meth:`build`/:meth:`bind` later. A number or a
            schedule in this place is taken as ``learning_rate`` (Keras's
            positional form).
        learning_rate (float or callable): a float >= 0, or a schedule called
            as ``learning_rate(iterations)`` before every step.
        weight_decay (float, optional): decoupled weight decay; each step
            first multiplies every parameter that has a gradient by
            ``1 - weight_decay * lr``. ``None`` (default) disables it.
        clipnorm (float, optional): clip each gradient tensor to this L2 norm.
        clipvalue (float, optional): clip gradient elements to
            ``[-clipvalue, clipvalue]``.
        global_clipnorm (float, optional): rescale all gradients together so
            that their joint L2 norm is at most this value. At most one of the
            three clipping arguments may be set.
        use_ema (bool): keep an exponential moving average of every bound
            weight, ``avg <- ema_momentum * avg + (1 - ema_momentum) * w``
            after each step (``avg = w`` after the first one). See
            :meth:`swap_ema_weights` and :meth:`finalize_variable_values`.
        ema_momentum (float): in ``[0, 1]``, default 0.99.
        ema_overwrite_frequency (int, optional): with ``use_ema``, overwrite
            the weights with their averages every this many steps.
        loss_scale_factor (float, optional): a constant loss scale:
            :meth:`scale_loss` multiplies the loss by it and each step
            divides the gradients by it first.
        gradient_accumulation_steps (int, optional): >= 2. Gradients of N
            consecutive calls to :meth:`step` are summed and only every N-th
            call applies an update, with their mean. ``iterations`` counts
            applied updates (micro-steps // N); a learning-rate schedule is
            evaluated at the micro-step count, as in Keras.
        name (str, optional): a name, as in Keras (default: snake-cased class
            name, made unique).
        **hyper: the rule-specific hyper-parameters of the subclass.
    """

    #: Names of the rule-specific hyper-parameters accepted in ``**hyper``.
    #: ``None`` accepts any keyword (useful for quick custom subclasses).
    hyperparameters: Optional[Tuple[str, ...]] = None
    #: ``{name: validator(owner, name, value) -> value}``.
    _checks: Dict[str, Callable[[str, str, Any], Any]] = {}
    #: Extra per-group counters ``{key: initial value}`` shared by all groups
    #: and advanced once per step by ``_next_group_values``.
    _group_counters: Dict[str, Any] = {}
    #: Whether param groups also carry torch's ``betas`` (Adam family), kept
    #: in sync with ``beta_1``/``beta_2``.
    _torch_betas: bool = False
    #: Whether ``compile`` binds the optimizer to the model itself rather
    #: than to its trainable parameters (for rules that read parameter names
    #: or module types, e.g. :class:`~torchfit.optimizers.Muon`).
    binds_module: bool = False
    #: Whether the parameters can hold a second set of weights meant for
    #: evaluation, swapped in by ``eval()`` and out by ``train()`` (e.g.
    #: :class:`~torchfit.optimizers.ScheduleFreeAdamW`).
    has_eval_weights: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _keras_positional(cls.__dict__["__init__"])

    @_keras_positional
    def __init__(
        self,
        params: Any = None,
        *,
        learning_rate: Any = 0.001,
        weight_decay: Optional[float] = None,
        clipnorm: Optional[float] = None,
        clipvalue: Optional[float] = None,
        global_clipnorm: Optional[float] = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: Optional[int] = None,
        loss_scale_factor: Optional[float] = None,
        gradient_accumulation_steps: Optional[int] = None,
        name: Optional[str] = None,
        **hyper: Any,
    ) -> None:
        owner = type(self).__name__
        hyper = pop_keras_only_arguments(hyper)
        common = check_common_arguments(owner, use_ema, ema_momentum, ema_overwrite_frequency,
                                        loss_scale_factor, gradient_accumulation_steps)
        check_hyperparameter_names(owner, self.hyperparameters, hyper)
        lr, schedule = _check_learning_rate(owner, learning_rate)
        schedule_takes_iterations = True
        if schedule is not None:
            schedule_takes_iterations = _schedule_takes_iterations(owner, schedule)
        weight_decay = check_number(
            owner, "weight_decay", weight_decay, low=0.0, allow_none=True
        )
        clip = check_clipping(owner, clipnorm, clipvalue, global_clipnorm)
        hyper = {key: self._check_hyper(key, value) for key, value in hyper.items()}
        name = check_name(owner, name)

        self.name = name
        self.clipnorm = clip["clipnorm"]
        self.clipvalue = clip["clipvalue"]
        self.global_clipnorm = clip["global_clipnorm"]
        (
            self.use_ema,
            self.ema_momentum,
            self.ema_overwrite_frequency,
            self.loss_scale_factor,
            self.gradient_accumulation_steps,
        ) = common
        self._lr_schedule = schedule
        self._schedule_takes_iterations = schedule_takes_iterations
        self._unbound_iterations = 0
        self._exclude_ids = set()
        self._exclude_pattern = None
        # ``betas`` last seen in sync with ``beta_1``/``beta_2``, per group.
        self._synced_betas: Dict[int, Tuple[float, float]] = {}
        self._set_defaults(lr, weight_decay, hyper)
        for registry in _HOOK_REGISTRIES:
            setattr(self, registry, collections.OrderedDict())
        self._patch_step_function()
        if params is not None:
            self.build(params)

    def _set_defaults(self, lr: Optional[float], weight_decay: Optional[float],
                      hyper: Dict[str, Any]) -> None:
        """Hyper-parameters become param-group defaults, as in torch.optim (a
        schedule's first value is filled in when the optimizer is bound)."""
        self.defaults = {"lr": lr, "weight_decay": weight_decay, **hyper}
        if self._torch_betas:
            self.defaults["betas"] = (hyper["beta_1"], hyper["beta_2"])
        self._group_keys = ("weight_decay",) + tuple(hyper)

    # ------------------------------------------------------------------
    # Construction helpers
    # ------------------------------------------------------------------

    def _check_hyper(self, key: str, value: Any) -> Any:
        check = self._checks.get(key)
        if check is None:
            return value
        return check(type(self).__name__, key, value)

    # ------------------------------------------------------------------
    # Binding
    # ------------------------------------------------------------------

    @property
    def is_bound(self) -> bool:
        """Whether the optimizer has parameters (``build``/``bind`` was run)."""
        return "param_groups" in self.__dict__

    def build(self, params: Any) -> "Optimizer":
        """Attach ``params`` to an unbound optimizer and return ``self``.

        ``params`` is anything :class:`torch.optim.Optimizer` accepts (an
        iterable of tensors, of ``(name, tensor)`` pairs or of param-group
        dicts) or a :class:`torch.nn.Module`. This runs
        ``torch.optim.Optimizer.__init__``, creating ``param_groups`` (with
        the configured hyper-parameters and the current ``iterations``) and
        an empty ``state``. An empty ``params`` (Keras's ``build([])``)
        changes nothing: the optimizer stays unbound.
        """
        owner = type(self).__name__
        if self.is_bound:
            raise RuntimeError(
                f"{owner} '{self.name}' is already bound to parameters; create "
                "a new optimizer (or use add_param_group) to optimize others."
            )
        if isinstance(params, torch.nn.Module):
            params = params.parameters()
        elif params is None or isinstance(params, (numbers.Number, str)):
            hint = ""
            if isinstance(params, numbers.Real) and not isinstance(params, bool):
                hint = (
                    f" (to set the learning rate pass it by keyword: "
                    f"learning_rate={params!r})"
                )
            raise TypeError(
                f"{owner}: argument `params` must be an iterable of tensors or "
                f"of param-group dicts, or a torch.nn.Module; received "
                f"params={params!r} of type {type(params).__name__}{hint}."
            )
        defaults = dict(self.defaults)
        if self._lr_schedule is not None:
            defaults["lr"] = self._evaluate_schedule(self._unbound_iterations)
        defaults["iterations"] = self._unbound_iterations
        for key, initial in self._group_counters.items():
            defaults.setdefault(key, initial)
        hooks = {key: self.__dict__[key] for key in _HOOK_REGISTRIES}
        config = self.defaults
        params = list(params)
        if not params:
            # Keras's ``build([])``: nothing to bind; later ``build`` calls bind.
            return self
        try:
            torch.optim.Optimizer.__init__(self, params, defaults)
        except BaseException:
            # Leave the optimizer unbound, as it was, if binding fails.
            self.__dict__.pop("param_groups", None)
            self.__dict__.pop("state", None)
            self.defaults = config
            raise
        finally:
            self.__dict__.update(hooks)
        return self

    #: Keras calls it ``build``; ``bind`` reads better next to torch code.
    bind = build

    def _require_bound(self, what: str) -> None:
        if not self.is_bound:
            raise RuntimeError(
                f"{type(self).__name__} '{self.name}' is not bound to any "
                f"parameters yet, so it cannot {what}; call "
                "`.bind(params)` (alias `.build(params)`) first."
            )

    def __getattr__(self, name: str) -> Any:
        # Only called when normal attribute lookup fails.
        state = self.__dict__
        if name in ("param_groups", "state") and "defaults" in state:
            raise AttributeError(
                f"{type(self).__name__} '{state.get('name')}' is not bound to "
                f"any parameters yet, so it has no `{name}`; call "
                "`.bind(params)` first."
            )
        if name in state.get("_group_keys", ()):
            if "param_groups" in state and state["param_groups"]:
                self._sync_torch_names()
                return state["param_groups"][0][name]
            return state["defaults"][name]
        raise AttributeError(
            f"'{type(self).__name__}' object has no attribute '{name}'"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__.get("_group_keys", ()):
            value = self._check_group_value(name, value)
            self._sync_torch_names()
            self.defaults[name] = value
            for group in self.__dict__.get("param_groups", ()):
                group[name] = value
            if self._torch_betas:
                self.defaults["betas"] = (self.defaults["beta_1"], self.defaults["beta_2"])
                self._sync_torch_names()
            return
        super().__setattr__(name, value)

    def _check_group_value(self, key: str, value: Any) -> Any:
        owner = type(self).__name__
        if key == "lr":
            lr, _ = _check_learning_rate(owner, value)
            if lr is None:
                raise TypeError(
                    f"{owner}: a param group's `lr` must be a float >= 0; "
                    f"received lr={value!r}."
                )
            return lr
        if key == "weight_decay":
            return check_number(owner, key, value, low=0.0, allow_none=True)
        return self._check_hyper(key, value)

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a param group, as :meth:`torch.optim.Optimizer.add_param_group`.

        Group-specific hyper-parameters are validated; a Keras-style
        ``"learning_rate"`` key is accepted as an alias of ``"lr"``, and for
        the Adam family torch's ``"betas"`` as ``(beta_1, beta_2)``. The new
        group shares the optimizer's current ``iterations``.
        """
        self._require_bound("add a param group")
        if not isinstance(param_group, dict):
            raise TypeError(
                f"param_group must be a dict, but got {type(param_group)}"
            )
        if "learning_rate" in param_group:
            if "lr" in param_group:
                raise ValueError(
                    "A param group may set `lr` or `learning_rate`, not both; "
                    f"received lr={param_group['lr']!r}, "
                    f"learning_rate={param_group['learning_rate']!r}."
                )
            param_group["lr"] = param_group.pop("learning_rate")
        if self._torch_betas:
            self._betas_of_new_group(param_group)
        for key in ("lr",) + tuple(self._group_keys):
            if key in param_group:
                param_group[key] = self._check_group_value(key, param_group[key])
        if self._torch_betas:
            param_group["betas"] = (
                param_group.get("beta_1", self.defaults["beta_1"]),
                param_group.get("beta_2", self.defaults["beta_2"]),
            )
        for key in _COUNTER_KEYS + tuple(self._group_counters):
            if self.param_groups:
                param_group[key] = self.param_groups[0][key]
            else:
                param_group.pop(key, None)
        super().add_param_group(param_group)

    # ------------------------------------------------------------------
    # torch's names of Keras hyper-parameters
    # ------------------------------------------------------------------

    def _checked_betas(self, value: Any) -> Tuple[float, float]:
        """torch's ``betas`` pair, each entry validated as Keras's beta."""
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise TypeError(
                f"{type(self).__name__}: `betas` must be a pair (beta_1, "
                f"beta_2); received betas={value!r}."
            )
        return (
            self._check_hyper("beta_1", value[0]),
            self._check_hyper("beta_2", value[1]),
        )

    def _betas_of_new_group(self, param_group: Dict[str, Any]) -> None:
        """Move a new group's torch ``betas`` into ``beta_1``/``beta_2``."""
        if "betas" not in param_group:
            return
        beta_1, beta_2 = self._checked_betas(param_group.pop("betas"))
        for key, value in (("beta_1", beta_1), ("beta_2", beta_2)):
            if key in param_group and param_group[key] != value:
                raise ValueError(
                    f"A param group may set `betas` or `{key}`, not both with "
                    f"different values; received betas[{key[-1]}]={value!r}, "
                    f"{key}={param_group[key]!r}."
                )
            param_group[key] = value

    def _sync_torch_names(self) -> None:
        """Bring ``betas`` and ``beta_1``/``beta_2`` of every group together.

        The side that changed since the last sync wins: torch schedulers
        (``OneCycleLR``, ``CyclicLR``) write ``betas``, Keras code writes
        ``beta_1``. A value a scheduler wrote is validated here, before any
        tensor is touched.
        """
        if not self._torch_betas or not self.is_bound:
            return
        synced = self.__dict__.setdefault("_synced_betas", {})
        for group in self.param_groups:
            keras_pair = (group["beta_1"], group["beta_2"])
            torch_pair = tuple(group.get("betas", keras_pair))
            last = synced.get(id(group), keras_pair)
            if torch_pair != last:
                keras_pair = self._checked_betas(torch_pair)
                group["beta_1"], group["beta_2"] = keras_pair
            group["betas"] = keras_pair
            synced[id(group)] = keras_pair

    # ------------------------------------------------------------------
    # Learning rate and iterations
    # ------------------------------------------------------------------

    def _evaluate_schedule(self, iterations: int) -> float:
        return evaluate_schedule(
            type(self).__name__,
            self._lr_schedule,
            self._schedule_takes_iterations,
            iterations,
        )

    @property
    def learning_rate(self) -> float:
        """The learning rate used by the next step.

        Bound: ``param_groups[0]["lr"]`` (so it follows torch LR schedulers).
        Unbound: the configured value. With a callable schedule: the
        schedule's value at the current ``iterations``.

        Setting a float writes it to every param group; setting a callable
        installs it as the schedule. As in Keras, a float cannot replace a
        schedule (set another callable instead).
        """
        if self._lr_schedule is not None:
            return self._evaluate_schedule(self._micro_iterations)
        if self.is_bound:
            return self.param_groups[0]["lr"]
        return self.defaults["lr"]

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        owner = type(self).__name__
        lr, schedule = _check_learning_rate(owner, value)
        if schedule is not None:
            takes = _schedule_takes_iterations(owner, schedule)
            self._lr_schedule = schedule
            self._schedule_takes_iterations = takes
            return
        if self._lr_schedule is not None:
            raise TypeError(
                f"{owner}: this optimizer was created with a callable "
                "`learning_rate` schedule, so its learning rate is not "
                f"settable to a float (received learning_rate={value!r}); "
                "assign another callable instead."
            )
        self.defaults["lr"] = lr
        for group in self.__dict__.get("param_groups", ()):
            group["lr"] = lr

    @property
    def _micro_iterations(self) -> int:
        """Calls that reached the update logic (Keras's ``_iterations``).

        Without gradient accumulation this equals :attr:`iterations`; with
        it, every accumulated micro-step counts. It is what param groups
        store under ``"iterations"`` and what a learning-rate schedule sees.
        """
        if self.is_bound:
            return int(self.param_groups[0]["iterations"])
        return self._unbound_iterations

    @property
    def iterations(self) -> int:
        """Number of applied updates so far (an ``int``, settable).

        With ``gradient_accumulation_steps=N`` this is the number of micro-
        steps divided by ``N`` (rounded down), as in Keras, so it counts the
        updates actually applied; setting it sets the micro-step count to
        ``N * value``.
        """
        count = self._micro_iterations
        if self.gradient_accumulation_steps:
            return count // self.gradient_accumulation_steps
        return count

    @iterations.setter
    def iterations(self, value: int) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Integral)
            or value < 0
        ):
            raise ValueError(
                f"{type(self).__name__}: `iterations` must be an int >= 0; "
                f"received iterations={value!r}."
            )
        count = int(value) * (self.gradient_accumulation_steps or 1)
        self._unbound_iterations = count
        for group in self.__dict__.get("param_groups", ()):
            group["iterations"] = count

    # ------------------------------------------------------------------
    # Weight-decay exclusion (Keras API)
    # ------------------------------------------------------------------

    def exclude_from_weight_decay(
        self,
        var_list: Optional[Sequence[torch.Tensor]] = None,
        var_names: Optional[Sequence[str]] = None,
    ) -> None:
        """Exclude parameters from weight decay, as Keras does.

        Args:
            var_list: tensors that never receive weight decay.
            var_names: substrings/regexes; a parameter whose name (from a
                param group built with ``named_parameters()``) matches any of
                them is excluded.
        """
        self._exclude_ids = {id(p) for p in (var_list or ())}
        if var_names:
            self._exclude_pattern = re.compile("|".join(sorted(set(var_names))))
        else:
            self._exclude_pattern = None

    def _use_weight_decay(self, param: torch.Tensor, name: Optional[str]) -> bool:
        if id(param) in self._exclude_ids:
            return False
        if self._exclude_pattern is not None and name is not None:
            return self._exclude_pattern.search(name) is None
        return True

    # ------------------------------------------------------------------
    # Loss scaling and moving averages (Keras API)
    # ------------------------------------------------------------------

    def scale_loss(self, loss: Any) -> Any:
        """Multiply ``loss`` by ``loss_scale_factor`` (unchanged if ``None``).

        Call it on the loss before ``backward()``; :meth:`step` divides the
        gradients by the same factor, so the update is that of the unscaled
        loss. torchfit's ``train_step`` does this for you.
        """
        return _gradients.scale_loss(type(self).__name__, self.loss_scale_factor, loss)

    @torch.no_grad()
    def swap_ema_weights(self) -> None:
        """Exchange the weights with their moving averages, in place.

        Calling it twice restores the weights: swap in before evaluating or
        saving the averaged model, swap back before training on (this is
        what Keras's ``SwapEMAWeights`` callback does). Weights that have
        not been updated yet have no average and are left as they are.
        """
        self._require_ema("swap EMA weights")
        params, averages = self._ema_pairs()
        _ema.swap(params, averages)

    @torch.no_grad()
    def copy_weights_to_ema(self) -> None:
        """Set every moving average to the current weight value."""
        self._require_ema("copy weights to the EMA")
        params, averages = self._ema_pairs()
        _foreach.copy_into(averages, params)

    @torch.no_grad()
    def finalize_variable_values(
        self, var_list: Optional[Sequence[torch.Tensor]] = None
    ) -> None:
        """With ``use_ema=True``, overwrite the weights with their averages.

        Keras calls this at the end of ``fit``. ``var_list`` (default: every
        bound parameter) must only hold parameters of this optimizer.
        Without EMA it does nothing.
        """
        if not self.use_ema:
            return
        self._require_bound("finalize variable values")
        params, averages = self._ema_pairs()
        if var_list is not None:
            known = dict(zip(map(id, params), averages))
            params = self._checked_var_list(var_list)
            params = [p for p in params if id(p) in known]
            averages = [known[id(p)] for p in params]
        _foreach.copy_into(params, averages)

    def _require_ema(self, what: str) -> None:
        if not self.use_ema:
            raise ValueError(
                f"{type(self).__name__} '{self.name}' cannot {what}: it was "
                "created with use_ema=False (expected use_ema=True)."
            )
        self._require_bound(what)

    def _ema_params(self) -> Tensors:
        """The bound floating-point parameters, which get moving averages."""
        return [
            p
            for group in self.param_groups
            for p in group["params"]
            if p.is_floating_point()
        ]

    def _ema_pairs(self) -> Tuple[Tensors, Tensors]:
        """``(params, averages)`` of the parameters that have an average yet."""
        params, averages = [], []
        for p in self._ema_params():
            state = self.state.get(p)
            if state and _EMA_KEY in state:
                params.append(p)
                averages.append(state[_EMA_KEY])
        return params, averages

    def _checked_var_list(self, var_list: Any) -> Tensors:
        """``var_list`` of :meth:`finalize_variable_values`, validated."""
        owner = type(self).__name__
        if isinstance(var_list, torch.Tensor) or not hasattr(var_list, "__iter__"):
            raise TypeError(
                f"{owner}.finalize_variable_values: argument `var_list` must "
                "be a list of parameters or None; received "
                f"var_list={var_list!r} of type {type(var_list).__name__}."
            )
        var_list = list(var_list)
        bound = {id(p) for p in self._ema_params()}
        for p in var_list:
            if not isinstance(p, torch.Tensor) or id(p) not in bound:
                raise ValueError(
                    f"{owner}.finalize_variable_values: every entry of "
                    "`var_list` must be a floating-point parameter this "
                    f"optimizer is bound to; received {type(p).__name__} of "
                    f"shape {tuple(getattr(p, 'shape', ()))}."
                )
        return var_list

    # ------------------------------------------------------------------
    # Stepping
    # ------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Apply one update to every parameter that has a ``.grad``.

        Args:
            closure (callable, optional): re-evaluates the model and returns
                the loss; it runs with gradients enabled before the update.

        A step in which no parameter has a gradient changes nothing and does
        not count in ``iterations``. ``.grad`` is never modified.

        Parameters and state are written in place, after every check (learning
        rates, gradients, values torch schedulers wrote): a step that raises
        leaves them as they were, without keeping a copy of them; Ctrl-C during
        the writes takes effect once they are complete.
        """
        self._require_bound("step")
        handed = self.__dict__.pop("_handed_plan", None)
        if handed is not None:  # planned by MultiOptimizer: see _step_planned
            if handed[0] is not None:
                self._write_step(handed[0])
            return None
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._apply(self._collect_work(lambda p: p.grad))
        return loss

    def _step_planned(self, plan: Optional["_StepPlan"]) -> None:
        """:meth:`step`, writing ``plan`` (from :meth:`_plan_step`; None: no
        gradient) instead of planning. Going through ``step()`` keeps what
        torch's step wrapper does: the step hooks run and LR schedulers see
        that the optimizer stepped. ``MultiOptimizer`` plans every
        sub-optimizer first, then steps each this way."""
        self.__dict__["_handed_plan"] = (plan,)
        try:
            self.step()
        finally:
            self.__dict__.pop("_handed_plan", None)

    def apply_gradients(self, grads_and_vars: Any) -> int:
        """Keras-style ``apply_gradients(zip(grads, params))``.

        Binds the optimizer to the given parameters if it is unbound (with
        their names when they come as ``(name, tensor)`` pairs, see
        :meth:`apply`). Returns the new ``iterations``.
        """
        pairs = list(grads_and_vars)
        if not pairs:
            return self.iterations
        grads, params = zip(*pairs)
        self.apply(grads, params)
        return self.iterations

    @torch.no_grad()
    def apply(self, grads: Any, trainable_variables: Any = None) -> None:
        """Keras-style ``apply(grads, params)``: update with explicit grads.

        ``grads`` matches ``trainable_variables`` one to one (``None``
        entries are skipped); without ``trainable_variables`` it must match
        all bound parameters in param-group order. ``.grad`` is not used.
        ``trainable_variables`` holds tensors or ``(name, tensor)`` pairs
        (``named_parameters()``); an unbound optimizer binds to them with
        their names, which ``exclude_from_weight_decay(var_names=...)``
        matches (Keras's variables carry their names).
        """
        grads = list(grads)
        if not grads:
            return
        lookup = self._gradient_lookup(grads, trainable_variables)
        self._apply(self._collect_work(lambda p: lookup.get(id(p))))

    def _gradient_lookup(self, grads: List[Any],
                         trainable_variables: Any) -> Dict[int, Optional[torch.Tensor]]:
        """:meth:`apply`'s checks (binding the optimizer if it is unbound):
        ``{id(param): gradient or None}`` for the given parameters."""
        owner = type(self).__name__
        if trainable_variables is None:
            self._require_bound("apply gradients without `trainable_variables`")
            params = [p for group in self.param_groups for p in group["params"]]
            if len(params) != len(grads):
                raise ValueError(
                    f"{owner}: expected one gradient per bound parameter "
                    f"({len(params)}); received {len(grads)} gradients."
                )
        else:
            entries, params = named_entries(owner, trainable_variables)
            if len(params) != len(grads):
                raise ValueError(
                    f"{owner}: `grads` and `trainable_variables` must have the "
                    f"same length; received {len(grads)} and {len(params)}."
                )
            if not self.is_bound:
                self.build(entries)  # (name, tensor) pairs bind with their names
        lookup = {}
        for p, g in zip(params, grads):
            if g is not None and not isinstance(g, torch.Tensor):
                g = torch.as_tensor(g, dtype=p.dtype, device=p.device)
            lookup[id(p)] = g
        known = {id(p) for group in self.param_groups for p in group["params"]}
        for p in params:
            if id(p) not in known:
                raise ValueError(
                    f"{owner}: unknown parameter of shape {tuple(p.shape)}; "
                    "this optimizer can only update the parameters it was "
                    "bound to."
                )
        if all(g is None for g in grads):
            raise ValueError("No gradients provided for any variable.")
        if any(g is None for g in grads):
            missing = [tuple(p.shape) for p, g in zip(params, grads) if g is None]
            warnings.warn(
                f"{owner}: gradients do not exist for parameters of shapes "
                f"{missing}; they are left unchanged (a loss that does not "
                "depend on them?).",
                stacklevel=4,
            )
        return lookup

    def _collect_work(self, grad_of: Callable[[torch.Tensor], Any]) -> Work:
        """``[[(index, param, grad), ...] per param group]`` for the params
        whose ``grad_of(param)`` is not ``None``."""
        work = []
        for group in self.param_groups:
            items = []
            for index, p in enumerate(group["params"]):
                g = grad_of(p)
                if g is not None:
                    items.append((index, p, g))
            work.append(items)
        return work

    def _runtime_lr(self, group_index: int, group: Dict[str, Any]) -> float:
        value = group["lr"]
        try:
            lr = _to_float(value)
        except (TypeError, ValueError, RuntimeError):
            lr = float("nan")
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(
                f"{type(self).__name__}: the learning rate of param group "
                f"{group_index} must be a finite float >= 0; found "
                f"lr={value!r}. No parameter was updated."
            )
        return lr

    def _check_scheduled_values(self) -> None:
        """Validate the hyper-parameters torch schedulers write into param
        groups (``momentum``; ``betas`` is checked when synced)."""
        if "momentum" in self._group_keys:
            for group in self.param_groups:
                group["momentum"] = self._check_hyper("momentum", group["momentum"])

    def _checked_gradients(self, work: Work) -> Tuple[Tensors, Tensors]:
        """Flat ``(params, grads)`` of ``work``, each gradient checked against
        its parameter and cast to its dtype."""
        owner = type(self).__name__
        params, grads = [], []
        for items in work:
            for _, p, g in items:
                if g.is_sparse:
                    raise RuntimeError(
                        f"{owner} does not support sparse gradients; received "
                        f"one for a parameter of shape {tuple(p.shape)}."
                    )
                if g.shape != p.shape:
                    raise ValueError(
                        f"{owner}: gradient of shape {tuple(g.shape)} does not "
                        f"match its parameter of shape {tuple(p.shape)}."
                    )
                if not p.is_floating_point():
                    raise TypeError(
                        f"{owner} can only optimize floating-point tensors; "
                        f"received a parameter of dtype {p.dtype}."
                    )
                params.append(p)
                grads.append(g if g.dtype == p.dtype else g.to(p.dtype))
        return params, grads

    def _missing_state(
        self, param: torch.Tensor, group: Dict[str, Any], state: Dict[str, Any]
    ) -> Dict[str, Any]:
        """State entries ``param`` needs before this step and lacks: by
        default the whole initial state while the rule has none. Rules whose
        state depends on a hyper-parameter a scheduler may change (SGD's
        ``momentum``) override this."""
        if any(key not in _BASE_STATE_KEYS for key in state):
            return {}
        return self._init_state(param, group)

    def _new_state(self, work: Work, is_update: bool) -> Dict[torch.Tensor, Dict[str, Any]]:
        """``{param: entries to add to its state}`` for this step (rule state,
        gradient accumulators, moving averages); nothing is registered yet."""
        new: Dict[torch.Tensor, Dict[str, Any]] = {}
        accumulate = bool(self.gradient_accumulation_steps)
        for group, items in zip(self.param_groups, work):
            for _, p, _ in items:
                state = self.state.get(p) or {}
                entries = self._missing_state(p, group, state) if is_update else {}
                if accumulate and _ACCUMULATOR_KEY not in state:
                    entries = {**entries, _ACCUMULATOR_KEY: torch.zeros_like(p)}
                if entries:
                    new[p] = entries
        if self.use_ema:
            for p in self._ema_params():
                if _EMA_KEY not in (self.state.get(p) or {}):
                    # Before the update: the first step's average (momentum
                    # 0) is then the updated weight, as in Keras.
                    new.setdefault(p, {})[_EMA_KEY] = p.detach().clone()
        return new

    def _group_steps(
        self, work: Work, params: Tensors, grads: Tensors, lrs: List[float]
    ) -> List["_GroupStep"]:
        """What the update of each group with gradients works on: its slice
        of the flat ``params``/``grads``, its learning rate, and the
        parameters that receive weight decay with their factor
        ``1 - weight_decay * lr``."""
        steps, offset = [], 0
        for group, items, lr in zip(self.param_groups, work, lrs):
            count = len(items)
            group_params = params[offset : offset + count]
            group_grads = grads[offset : offset + count]
            offset += count
            if not items:
                continue
            wd = group["weight_decay"]
            names = group.get("param_names")
            decayed = []
            if wd:
                decayed = [
                    p
                    for index, p, _ in items
                    if self._use_weight_decay(p, names[index] if names else None)
                ]
            factor = 1.0 - wd * lr if wd else 1.0
            steps.append(_GroupStep(group, group_params, group_grads, lr, decayed, factor))
        return steps

    def _prepared_gradients(
        self, params: Tensors, grads: Tensors, is_update: bool
    ) -> Tuple[Tensors, bool]:
        """Keras's gradient pipeline before the rule: unscale by
        ``loss_scale_factor``; on the N-th accumulation micro-step, the mean
        of the accumulated gradients; clip. Returns ``(grads, owned)``."""
        grads, owned = _gradients.unscale(grads, self.loss_scale_factor, False)
        if not is_update:
            return grads, owned
        steps = self.gradient_accumulation_steps
        if steps:
            accumulators = [
                self.state[p][_ACCUMULATOR_KEY]
                if _ACCUMULATOR_KEY in self.state.get(p, {})
                else torch.zeros_like(p)
                for p in params
            ]
            grads, owned = _gradients.accumulated_mean(grads, accumulators, steps, owned)
        return self._clip(grads, owned)

    def _clip_gradients(self, grads: Sequence[Any]) -> Tensors:
        """Keras's ``_clip_gradients``: the clipped gradients, new tensors
        where clipping applies (array-likes, as Keras's tests pass, become
        tensors first)."""
        tensors = [g if isinstance(g, torch.Tensor) else torch.as_tensor(g) for g in grads]
        return self._clip(tensors, False)[0]

    def _clip(self, grads: Tensors, owned: bool) -> Tuple[Tensors, bool]:
        """Keras's clipping: clipnorm, else global_clipnorm, else clipvalue;
        in place when the gradients are ``owned`` copies. Returns
        ``(grads, owned)``."""
        return _gradients.clip(
            grads, owned, self.clipnorm, self.global_clipnorm, self.clipvalue
        )

    def _apply(self, work: Work) -> None:
        """Check, then write (see the module doc): :meth:`_plan_step`, then
        :meth:`_write_step` with Ctrl-C held back."""
        plan = self._plan_step(work)
        if plan is not None:
            with _Uninterrupted():
                self._write_step(plan)

    def _plan_step(self, work: Work) -> Optional["_StepPlan"]:
        """Everything one step checks and allocates, before any write (None
        when ``work`` has no gradient).

        The order within one call follows Keras's ``apply``: unscale the
        gradients by ``loss_scale_factor``; with gradient accumulation, add
        them to the accumulators and stop there unless this is the N-th
        micro-step (then average the accumulated gradients); clip; decay;
        update; update the moving averages (``use_ema``) and overwrite the
        weights with them every ``ema_overwrite_frequency`` steps; count.
        This method allocates and checks; only :meth:`_write_step` writes
        (so a ``MultiOptimizer`` plans every sub-optimizer's step before it
        writes any).
        """
        if not any(work):
            return None
        micro = self._micro_iterations
        accumulation = self.gradient_accumulation_steps
        iteration = micro // accumulation if accumulation else micro
        is_update = not accumulation or (micro + 1) % accumulation == 0
        self._sync_torch_names()
        self._set_scheduled_lr(micro)

        # 1. Checks, and the state this step creates (not registered yet).
        lrs = [self._runtime_lr(i, group) for i, group in enumerate(self.param_groups)]
        self._check_scheduled_values()
        params, grads = self._checked_gradients(work)
        new_state = self._new_state(work, is_update)

        # 2. The gradients the rule sees (copies when they differ from .grad).
        grads, owned = self._prepared_gradients(params, grads, is_update)
        steps = self._group_steps(work, params, grads, lrs) if is_update else []
        pure = None
        if is_update and not self._updates_in_place:
            pure = self._pure_updates(steps, new_state, iteration)
        return _StepPlan(micro, iteration, is_update, params, grads, owned, new_state, steps, pure)

    def _write_step(self, plan: "_StepPlan") -> None:
        """The writes of a planned step (the caller holds back Ctrl-C)."""
        self._register_state(plan.new_state)
        if plan.is_update:
            self._write_updates(plan.steps, plan.owned, plan.iteration, plan.pure)
        else:  # a micro-step of gradient accumulation
            torch._foreach_add_([self.state[p][_ACCUMULATOR_KEY] for p in plan.params], plan.grads)
        self._finish_step(plan.micro, plan.iteration)

    def _set_scheduled_lr(self, micro: int) -> None:
        """Every group's ``lr`` from the learning-rate schedule, if there is one."""
        if self._lr_schedule is not None:
            scheduled = self._evaluate_schedule(micro)
            for group in self.param_groups:
                group["lr"] = scheduled

    def _register_state(self, new_state: Dict[Any, Dict[str, Any]]) -> None:
        """Add the state entries this step created (first write of a step)."""
        for p, entries in new_state.items():
            self.state[p].update(entries)

    def _finish_step(self, micro: int, iteration: int) -> None:
        """Moving averages (``use_ema``), then count the micro-step (last writes)."""
        if self.use_ema:
            self._write_averages(iteration)
        for group in self.param_groups:
            group["iterations"] = micro + 1
        self._unbound_iterations = micro + 1

    @property
    def _updates_in_place(self) -> bool:
        """Whether the rule implements ``_update`` (else ``_compute_update``)."""
        return type(self)._update is not Optimizer._update

    def _write_updates(
        self,
        steps: List["_GroupStep"],
        owned: bool,
        iteration: int,
        pure: Optional[List[Tuple[Tensors, States]]],
    ) -> None:
        """Decay and update every group in place (or commit ``pure``), then
        reset the accumulators and advance the group counters."""
        for index, step in enumerate(steps):
            if pure is not None:
                new_params, new_states = pure[index]
                _foreach.copy_into(step.params, new_params)
                for p, entries in zip(step.params, new_states):
                    self.state[p].update(entries)
                continue
            if step.decayed:
                torch._foreach_mul_(step.decayed, step.decay_factor)
            states = [self.state[p] for p in step.params]
            self._update(step.group, step.params, step.grads, states, step.lr, iteration, owned)
        if self.gradient_accumulation_steps:
            # Every accumulator restarts, also those of parameters without a
            # gradient in this micro-step (as Keras).
            _gradients.zero_(
                [state[_ACCUMULATOR_KEY] for state in self.state.values() if _ACCUMULATOR_KEY in state]
            )
        updates = [self._next_group_values(group, iteration) for group in self.param_groups]
        for group, values in zip(self.param_groups, updates):
            group.update(values)

    def _pure_updates(
        self,
        steps: List["_GroupStep"],
        new_state: Dict[torch.Tensor, Dict[str, Any]],
        iteration: int,
    ) -> List[Tuple[Tensors, States]]:
        """For a ``_compute_update`` rule: every group's new parameters and
        state, computed from decayed copies before anything is written."""
        results = []
        for step in steps:
            chosen = {id(p) for p in step.decayed}
            inputs = [p * step.decay_factor if id(p) in chosen else p for p in step.params]
            states = []
            for p in step.params:
                merged = {**self.state.get(p, {}), **new_state.get(p, {})}
                states.append({k: v for k, v in merged.items() if k not in _BASE_STATE_KEYS})
            new_params, new_states = self._compute_update(
                step.group, inputs, step.grads, states, step.lr, iteration
            )
            results.append((list(new_params), list(new_states)))
        return results

    def _write_averages(self, iteration: int) -> None:
        """Moving averages of all bound weights, in place (Keras updates them
        on every call, accumulation micro-steps included), and the periodic
        overwrite of the weights with them."""
        params, averages = self._ema_pairs()
        if not params:
            return
        _ema.update_(averages, params, self.ema_momentum if iteration != 0 else 0.0)
        if _ema.overwrite_due(iteration, self.ema_overwrite_frequency):
            _foreach.copy_into(params, averages)

    # ------------------------------------------------------------------
    # To be implemented by subclasses
    # ------------------------------------------------------------------

    def _init_state(self, param: torch.Tensor, group: Dict[str, Any]) -> Dict[str, Any]:
        """Return the initial state dict of ``param`` (tensors)."""
        return {}

    def _update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                lr: float, iteration: int, owned: bool) -> None:
        """Update one param group in place.

        ``params`` are the parameters (weight decay already applied),
        ``grads`` their clipped gradients, ``states`` their state dicts (to
        write in place), ``iteration`` the number of steps applied before
        this one. When ``owned`` is true the gradients are a private copy the
        rule may overwrite once it has read them for the last time (its one
        temporary); otherwise they are ``.grad`` and must not be written.
        Everything that can fail has been checked by the caller; this must
        not raise on such inputs.

        A subclass that does not override this implements the pure
        :meth:`_compute_update` instead, which the base class calls before
        any write (``_updates_in_place`` tells which), so this one is never
        reached.
        """
        raise NotImplementedError

    def _compute_update(self, group: Group, params: Tensors, grads: Tensors, states: States,
                        lr: float, iteration: int) -> Tuple[Tensors, States]:
        """Pure alternative to :meth:`_update`: return ``(new_params,
        new_states)`` for one param group.

        ``params`` are the values after weight decay, ``grads`` the clipped
        gradients, ``states`` the current state dicts and ``iteration`` the
        number of steps applied before this one. Inputs must not be modified
        in place; ``new_states`` is a list of dicts merged into the state.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement an update rule; "
            "subclass torchfit.optimizers.Optimizer and define _update (in "
            "place) or _compute_update (pure)."
        )

    def _next_group_values(self, group: Dict[str, Any], iteration: int) -> Dict[str, Any]:
        """Return ``{key: value}`` to store in ``group`` after a step."""
        return {}

    @staticmethod
    def _scalar_dtype(params: Sequence[torch.Tensor]) -> Optional[torch.dtype]:
        return params[0].dtype if params else None

    # ------------------------------------------------------------------
    # torch.optim.Optimizer plumbing
    # ------------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """As in torch; a no-op while the optimizer is unbound."""
        if self.is_bound:
            super().zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> Dict[str, Any]:
        self._require_bound("produce a state_dict")
        return super().state_dict()

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        self._require_bound("load a state_dict")
        super().load_state_dict(state_dict)
        # State dicts from other optimizers may lack our group keys.
        for group in self.param_groups:
            group.setdefault("iterations", 0)
            for key, initial in self._group_counters.items():
                group.setdefault(key, initial)
            for key in self._group_keys:
                group.setdefault(key, self.defaults[key])
            if self._torch_betas:
                group.setdefault("betas", (group["beta_1"], group["beta_2"]))
        self.__dict__["_synced_betas"] = {}
        self._sync_torch_names()
        self._unbound_iterations = self._micro_iterations

    def __getstate__(self) -> Dict[str, Any]:
        state = dict(self.__dict__)
        # torch re-creates its hook registries in __setstate__.
        for key in _HOOK_REGISTRIES:
            state.pop(key, None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        had_flag = "differentiable" in state.get("defaults", {})
        super().__setstate__(state)
        if not had_flag:
            self.defaults.pop("differentiable", None)

    def __repr__(self) -> str:
        if self.is_bound:
            return super().__repr__()
        items = ", ".join(
            f"{key}={value!r}" for key, value in self.get_config().items()
        )
        return f"{type(self).__name__} (unbound, {items})"

    # ------------------------------------------------------------------
    # Config
    # ------------------------------------------------------------------

    def get_config(self) -> Dict[str, Any]:
        """Return the constructor arguments as a dict (Keras's layout).

        Values are the current ones (first param group when bound). A
        callable schedule is stored as ``{"module", "class_name", "config"}``
        when it has ``get_config``/``from_config``, else as the object.
        """
        if self._lr_schedule is not None:
            learning_rate = _serialize_schedule(self._lr_schedule)
        else:
            learning_rate = self.learning_rate
        config = {
            "name": self.name,
            "learning_rate": learning_rate,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }
        for key in self._group_keys:
            if key != "weight_decay":
                config[key] = getattr(self, key)
        return config

    @classmethod
    def from_config(
        cls, config: Dict[str, Any], custom_objects: Optional[Dict[str, Any]] = None
    ) -> "Optimizer":
        """Create an (unbound) optimizer from :meth:`get_config`'s output.

        Keras configs load too, including their EMA, loss-scale and
        accumulation keys and serialized Keras schedules.
        """
        config = dict(config)
        learning_rate = config.get("learning_rate")
        if isinstance(learning_rate, dict):
            config["learning_rate"] = _deserialize_schedule(
                learning_rate, custom_objects
            )
        return cls(**config)
