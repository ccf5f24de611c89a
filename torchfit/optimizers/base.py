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

Writing a new optimizer means subclassing :class:`Optimizer`, listing the
rule's hyper-parameters in ``hyperparameters``, giving validators in
``_checks`` and implementing ``_init_state`` and ``_compute_update``. The
latter must be *pure*: it receives the current tensors and returns new
ones, and the base class writes everything back only once every parameter's
update has been computed, so an exception raised mid-step leaves parameters
and optimizer state untouched.

This module holds the class; its machinery lives next to it:
``_validation`` (argument checks, the validators used in ``_checks``),
``_schedule_utils`` (calling and (de)serialising learning-rate schedules),
``_gradients`` (loss-scale unscaling, gradient accumulation, clipping) and
``_ema`` (moving averages of the weights).
"""

import collections
import math
import numbers
import re
import warnings

import torch

from torchfit.optimizers import _ema, _foreach, _gradients
from torchfit.optimizers._schedule_utils import (
    _deserialize_schedule,
    _schedule_takes_iterations,
    _serialize_schedule,
    evaluate_schedule,
)

# The validators are importable from here too (``_checks`` of optimizers
# written against this module); ``_cast_scalar`` serves the update rules.
from torchfit.optimizers._validation import (  # noqa: F401
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


class Optimizer(torch.optim.Optimizer):
    r"""Base class of the Keras-style optimizers.

    Args:
        params (iterable, optional): the parameters to optimize, as accepted by
            :class:`torch.optim.Optimizer` (tensors, ``(name, tensor)`` pairs
            or param-group dicts), or a :class:`torch.nn.Module` whose
            ``parameters()`` are taken. ``None`` (default) creates an unbound
            optimizer; call :meth:`build`/:meth:`bind` later.
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
    hyperparameters = None
    #: ``{name: validator(owner, name, value) -> value}``.
    _checks = {}
    #: Extra per-group counters ``{key: initial value}`` shared by all groups
    #: and advanced once per step by ``_next_group_values``.
    _group_counters = {}
    #: Whether ``compile`` binds the optimizer to the model itself rather
    #: than to its trainable parameters (for rules that read parameter names
    #: or module types, e.g. :class:`~torchfit.optimizers.Muon`).
    binds_module = False
    #: Whether the parameters can hold a second set of weights meant for
    #: evaluation, swapped in by ``eval()`` and out by ``train()`` (e.g.
    #: :class:`~torchfit.optimizers.ScheduleFreeAdamW`).
    has_eval_weights = False

    def __init__(
        self,
        params=None,
        *,
        learning_rate=0.001,
        weight_decay=None,
        clipnorm=None,
        clipvalue=None,
        global_clipnorm=None,
        use_ema=False,
        ema_momentum=0.99,
        ema_overwrite_frequency=None,
        loss_scale_factor=None,
        gradient_accumulation_steps=None,
        name=None,
        **hyper,
    ):
        owner = type(self).__name__
        hyper = pop_keras_only_arguments(hyper)
        common = check_common_arguments(
            owner,
            use_ema,
            ema_momentum,
            ema_overwrite_frequency,
            loss_scale_factor,
            gradient_accumulation_steps,
        )
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
        # Hyper-parameters become param-group defaults, as in torch.optim.
        # (A schedule's first value is filled in when the optimizer is bound.)
        self.defaults = {"lr": lr, "weight_decay": weight_decay, **hyper}
        self._group_keys = ("weight_decay",) + tuple(hyper)
        for registry in _HOOK_REGISTRIES:
            setattr(self, registry, collections.OrderedDict())
        self._patch_step_function()
        if params is not None:
            self.build(params)

    # ------------------------------------------------------------------
    # Construction helpers
    # ------------------------------------------------------------------

    @staticmethod
    def _forward_arguments(arguments):
        """Keyword arguments for ``Optimizer.__init__`` from a subclass
        constructor's ``locals()``.

        Subclasses spell out their signature (Keras's argument names, order
        and defaults, as users read them) and pass everything on with
        ``super().__init__(params, **self._forward_arguments(locals()))``,
        called before any other local variable is defined.
        """
        forwarded = {
            key: value
            for key, value in arguments.items()
            if key not in ("self", "__class__", "params", "kwargs")
        }
        forwarded.update(arguments.get("kwargs", {}))
        return forwarded

    def _check_hyper(self, key, value):
        check = self._checks.get(key)
        if check is None:
            return value
        return check(type(self).__name__, key, value)

    # ------------------------------------------------------------------
    # Binding
    # ------------------------------------------------------------------

    @property
    def is_bound(self):
        """Whether the optimizer has parameters (``build``/``bind`` was run)."""
        return "param_groups" in self.__dict__

    def build(self, params):
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


    def _require_bound(self, what):
        if not self.is_bound:
            raise RuntimeError(
                f"{type(self).__name__} '{self.name}' is not bound to any "
                f"parameters yet, so it cannot {what}; call "
                "`.bind(params)` (alias `.build(params)`) first."
            )

    def __getattr__(self, name):
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
                return state["param_groups"][0][name]
            return state["defaults"][name]
        raise AttributeError(
            f"'{type(self).__name__}' object has no attribute '{name}'"
        )

    def __setattr__(self, name, value):
        if name in self.__dict__.get("_group_keys", ()):
            value = self._check_group_value(name, value)
            self.defaults[name] = value
            for group in self.__dict__.get("param_groups", ()):
                group[name] = value
            return
        super().__setattr__(name, value)

    def _check_group_value(self, key, value):
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

    def add_param_group(self, param_group):
        """Add a param group, as :meth:`torch.optim.Optimizer.add_param_group`.

        Group-specific hyper-parameters are validated; a Keras-style
        ``"learning_rate"`` key is accepted as an alias of ``"lr"``. The new
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
        for key in ("lr",) + tuple(self._group_keys):
            if key in param_group:
                param_group[key] = self._check_group_value(key, param_group[key])
        for key in _COUNTER_KEYS + tuple(self._group_counters):
            if self.param_groups:
                param_group[key] = self.param_groups[0][key]
            else:
                param_group.pop(key, None)
        super().add_param_group(param_group)

    # ------------------------------------------------------------------
    # Learning rate and iterations
    # ------------------------------------------------------------------

    def _evaluate_schedule(self, iterations):
        return evaluate_schedule(
            type(self).__name__,
            self._lr_schedule,
            self._schedule_takes_iterations,
            iterations,
        )

    @property
    def learning_rate(self):
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
    def learning_rate(self, value):
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
    def _micro_iterations(self):
        """Calls that reached the update logic (Keras's ``_iterations``).

        Without gradient accumulation this equals :attr:`iterations`; with
        it, every accumulated micro-step counts. It is what param groups
        store under ``"iterations"`` and what a learning-rate schedule sees.
        """
        if self.is_bound:
            return int(self.param_groups[0]["iterations"])
        return self._unbound_iterations

    @property
    def iterations(self):
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
    def iterations(self, value):
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

    def exclude_from_weight_decay(self, var_list=None, var_names=None):
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

    def _use_weight_decay(self, param, name):
        if id(param) in self._exclude_ids:
            return False
        if self._exclude_pattern is not None and name is not None:
            return self._exclude_pattern.search(name) is None
        return True

    # ------------------------------------------------------------------
    # Loss scaling and moving averages (Keras API)
    # ------------------------------------------------------------------

    def scale_loss(self, loss):
        """Multiply ``loss`` by ``loss_scale_factor`` (unchanged if ``None``).

        Call it on the loss before ``backward()``; :meth:`step` divides the
        gradients by the same factor, so the update is that of the unscaled
        loss. torchfit's ``train_step`` does this for you.
        """
        return _gradients.scale_loss(self, loss)

    @torch.no_grad()
    def swap_ema_weights(self):
        """Exchange the weights with their moving averages, in place.

        Calling it twice restores the weights: swap in before evaluating or
        saving the averaged model, swap back before training on (this is
        what Keras's ``SwapEMAWeights`` callback does). Weights that have
        not been updated yet have no average and are left as they are.
        """
        _ema.swap_ema_weights(self)

    @torch.no_grad()
    def copy_weights_to_ema(self):
        """Set every moving average to the current weight value."""
        _ema.copy_weights_to_ema(self)

    @torch.no_grad()
    def finalize_variable_values(self, var_list=None):
        """With ``use_ema=True``, overwrite the weights with their averages.

        Keras calls this at the end of ``fit``. ``var_list`` (default: every
        bound parameter) must only hold parameters of this optimizer.
        Without EMA it does nothing.
        """
        _ema.finalize_variable_values(self, var_list)

    # ------------------------------------------------------------------
    # Stepping
    # ------------------------------------------------------------------

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update to every parameter that has a ``.grad``.

        Args:
            closure (callable, optional): re-evaluates the model and returns
                the loss; it runs with gradients enabled before the update.

        A step in which no parameter has a gradient changes nothing and does
        not count in ``iterations``.
        """
        self._require_bound("step")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._apply(self._collect_work(lambda p: p.grad))
        return loss

    def apply_gradients(self, grads_and_vars):
        """Keras-style ``apply_gradients(zip(grads, params))``.

        Binds the optimizer to the given parameters if it is unbound. Returns
        the new ``iterations``.
        """
        pairs = list(grads_and_vars)
        if not pairs:
            return self.iterations
        grads, params = zip(*pairs)
        self.apply(grads, params)
        return self.iterations

    @torch.no_grad()
    def apply(self, grads, trainable_variables=None):
        """Keras-style ``apply(grads, params)``: update with explicit grads.

        ``grads`` matches ``trainable_variables`` one to one (``None``
        entries are skipped); without ``trainable_variables`` it must match
        all bound parameters in param-group order. ``.grad`` is not used.
        """
        owner = type(self).__name__
        grads = list(grads)
        if not grads:
            return
        if trainable_variables is None:
            self._require_bound("apply gradients without `trainable_variables`")
            params = [p for group in self.param_groups for p in group["params"]]
            if len(params) != len(grads):
                raise ValueError(
                    f"{owner}: expected one gradient per bound parameter "
                    f"({len(params)}); received {len(grads)} gradients."
                )
        else:
            params = list(trainable_variables)
            if len(params) != len(grads):
                raise ValueError(
                    f"{owner}: `grads` and `trainable_variables` must have the "
                    f"same length; received {len(grads)} and {len(params)}."
                )
            if not self.is_bound:
                self.build(params)
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
                stacklevel=3,
            )
        self._apply(self._collect_work(lambda p: lookup.get(id(p))))

    def _collect_work(self, grad_of):
        """``[[(index, param, grad), ...] per param group]`` for the params
        whose ``grad_of(param)`` is not ``None``."""
        return [
            [
                (index, p, grad_of(p))
                for index, p in enumerate(group["params"])
                if grad_of(p) is not None
            ]
            for group in self.param_groups
        ]

    def _runtime_lr(self, group_index, group):
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

    def _apply(self, work):
        """Validate, compute every update, then commit (see module doc).

        The order within one call follows Keras's ``apply``: unscale the
        gradients by ``loss_scale_factor``; with gradient accumulation, add
        them to the accumulators and stop there unless this is the N-th
        micro-step (then average the accumulated gradients); clip; decay;
        update; update the moving averages (``use_ema``) and overwrite the
        weights with them every ``ema_overwrite_frequency`` steps; count.
        """
        owner = type(self).__name__
        if not any(work):
            return
        micro = self._micro_iterations
        accumulation = self.gradient_accumulation_steps
        iteration = micro // accumulation if accumulation else micro
        is_update = not accumulation or (micro + 1) % accumulation == 0
        if self._lr_schedule is not None:
            scheduled = self._evaluate_schedule(micro)
            for group in self.param_groups:
                group["lr"] = scheduled

        # 1. Validate everything before touching any tensor.
        lrs = []
        flat_params, flat_grads = [], []
        for group_index, (group, items) in enumerate(zip(self.param_groups, work)):
            lrs.append(self._runtime_lr(group_index, group))
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
                flat_params.append(p)
                flat_grads.append(g if g.dtype == p.dtype else g.to(p.dtype))

        # 2-3. Unscale (``loss_scale_factor``) and accumulate, out of place.
        flat_grads, new_accumulators = _gradients.unscale_and_accumulate(
            self, flat_params, flat_grads, is_update
        )

        commits = []
        group_updates = None
        if is_update:
            # 4. Clip (out of place: ``.grad`` is left as it is).
            flat_grads = self._clip_gradients(flat_grads)

            # 5. Weight decay and update rule, per group, out of place.
            offset = 0
            for group, items, lr in zip(self.param_groups, work, lrs):
                if not items:
                    continue
                count = len(items)
                params = flat_params[offset : offset + count]
                grads = flat_grads[offset : offset + count]
                offset += count
                names = group.get("param_names")
                states = [self._rule_state(p, group) for p in params]
                inputs = list(params)
                wd = group["weight_decay"]
                if wd:
                    decay_at = [
                        i
                        for i, (index, p, _) in enumerate(items)
                        if self._use_weight_decay(p, names[index] if names else None)
                    ]
                    if decay_at:
                        decayed = torch._foreach_mul(
                            [params[i] for i in decay_at], 1.0 - wd * lr
                        )
                        for i, tensor in zip(decay_at, decayed):
                            inputs[i] = tensor
                new_params, new_states = self._compute_update(
                    group, inputs, grads, states, lr, iteration
                )
                commits.append((params, list(new_params), new_states))
            group_updates = [
                self._next_group_values(group, iteration)
                for group in self.param_groups
            ]

        # 6. Moving averages of all bound weights (Keras updates them on
        # every call, accumulation micro-steps included).
        ema = self._compute_ema(commits, iteration) if self.use_ema else None

        # 7. Commit.
        for params, new_params, new_states in commits:
            _foreach.copy_into(params, new_params)
            for p, new_state in zip(params, new_states):
                self.state[p].update(new_state)
        _gradients.commit_accumulators(self, flat_params, new_accumulators)
        if ema is not None:
            ema_params, averages, overwrite = ema
            for p, average in zip(ema_params, averages):
                self.state[p][_EMA_KEY] = average
            if overwrite:
                _foreach.copy_into(ema_params, averages)
        if group_updates is not None:
            for group, updates in zip(self.param_groups, group_updates):
                group.update(updates)
        for group in self.param_groups:
            group["iterations"] = micro + 1
        self._unbound_iterations = micro + 1

    def _rule_state(self, param, group):
        """The update rule's state of ``param``, initialized if missing."""
        state = self.state.get(param)
        if state:
            rule = {k: v for k, v in state.items() if k not in _BASE_STATE_KEYS}
            if rule:
                return rule
        return self._init_state(param, group)

    def _compute_ema(self, commits, iteration):
        """Return ``(params, new_averages, overwrite)``; nothing is written
        (see ``_ema.compute_ema``)."""
        return _ema.compute_ema(self, commits, iteration)

    def _clip_gradients(self, grads):
        """Keras's clipping: clipnorm, else global_clipnorm, else clipvalue.

        Array-likes (Keras's tests pass NumPy arrays) become tensors.
        """
        grads = [g if isinstance(g, torch.Tensor) else torch.as_tensor(g) for g in grads]
        return _gradients.clip_gradients(self, grads)

    # ------------------------------------------------------------------
    # To be implemented by subclasses
    # ------------------------------------------------------------------

    def _init_state(self, param, group):
        """Return the initial state dict of ``param`` (tensors)."""
        return {}

    def _compute_update(self, group, params, grads, states, lr, iteration):
        """Return ``(new_params, new_states)`` for one param group.

        ``params`` are the values after weight decay, ``grads`` the clipped
        gradients, ``states`` the current state dicts and ``iteration`` the
        number of steps applied before this one. Inputs must not be modified
        in place; ``new_states`` is a list of dicts merged into the state.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement an update rule; "
            "subclass torchfit.optimizers.Optimizer and define _compute_update."
        )

    def _next_group_values(self, group, iteration):
        """Return ``{key: value}`` to store in ``group`` after a step."""
        return {}

    @staticmethod
    def _scalar_dtype(params):
        return params[0].dtype if params else None

    # ------------------------------------------------------------------
    # torch.optim.Optimizer plumbing
    # ------------------------------------------------------------------

    def zero_grad(self, set_to_none=True):
        """As in torch; a no-op while the optimizer is unbound."""
        if self.is_bound:
            super().zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        self._require_bound("produce a state_dict")
        return super().state_dict()

    def load_state_dict(self, state_dict):
        self._require_bound("load a state_dict")
        super().load_state_dict(state_dict)
        # State dicts from other optimizers may lack our group keys.
        for group in self.param_groups:
            group.setdefault("iterations", 0)
            for key, initial in self._group_counters.items():
                group.setdefault(key, initial)
            for key in self._group_keys:
                group.setdefault(key, self.defaults[key])
        self._unbound_iterations = self._micro_iterations

    def __getstate__(self):
        state = dict(self.__dict__)
        # torch re-creates its hook registries in __setstate__.
        for key in _HOOK_REGISTRIES:
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        had_flag = "differentiable" in state.get("defaults", {})
        super().__setstate__(state)
        if not had_flag:
            self.defaults.pop("differentiable", None)

    def __repr__(self):
        if self.is_bound:
            return super().__repr__()
        items = ", ".join(
            f"{key}={value!r}" for key, value in self.get_config().items()
        )
        return f"{type(self).__name__} (unbound, {items})"

    # ------------------------------------------------------------------
    # Config
    # ------------------------------------------------------------------

    def get_config(self):
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
    def from_config(cls, config, custom_objects=None):
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
