r"""Keras 3's learning-rate schedules, computed with torch.

A schedule maps the optimizer's step counter to a learning rate. Give one as
``learning_rate`` to any :mod:`torchfit.optimizers` class and the optimizer
evaluates it before every applied step with the number of steps applied so
far (with ``gradient_accumulation_steps``, the number of micro-steps, as in
Keras)::

    schedule = schedules.CosineDecay(0.1, decay_steps=1000, warmup_target=0.5,
                                     warmup_steps=100)
    model.compile(optimizer=torchfit.optimizers.SGD(learning_rate=schedule))

Calling a schedule returns a 0-d float32 CPU tensor (the dtype Keras
computes in), so the numbers are Keras's to the last bit.

Two bridges to :mod:`torch.optim.lr_scheduler`:

* any torch scheduler (``StepLR``, ``OneCycleLR``...) drives a *bound*
  torchfit optimizer with a float learning rate, as it drives any torch
  optimizer (``scheduler.step()`` writes ``param_groups[i]["lr"]`` and
  ``optimizer.learning_rate`` reads it back);
* :class:`ScheduleLR` runs one of these schedules on any torch optimizer
  (e.g. a plain :class:`torch.optim.AdamW`), stepped once per optimizer step.
"""

import math
import numbers
from typing import Any, Dict, List, Optional, Sequence

import torch

from ..validation import is_config

__all__ = [
    "LearningRateSchedule",
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
    "ScheduleLR",
    "serialize",
    "deserialize",
    "get",
]


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------


def _real(owner: str, name: str, value: Any, *, low: Optional[float] = None,
          low_open: bool = False, allow_none: bool = False) -> Any:
    """Return ``value`` unchanged after checking it is a finite real number."""
    if value is None and allow_none:
        return None
    plain = value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        plain = value.detach().reshape(()).item()
    elif hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "size", 2) == 1:
        plain = value.item()  # numpy scalar / 1-element array
    expected = "a finite real number"
    if low is not None:
        expected = f"a real number {'>' if low_open else '>='} {low:g}"
    if allow_none:
        expected += " or None"
    if isinstance(plain, bool) or not isinstance(plain, numbers.Real):
        raise TypeError(
            f"{owner}: argument `{name}` must be {expected}; received "
            f"{name}={value!r} of type {type(value).__name__}."
        )
    number = float(plain)
    bad = not math.isfinite(number)
    if low is not None:
        bad = bad or (number <= low if low_open else number < low)
    if bad:
        raise ValueError(
            f"{owner}: argument `{name}` must be {expected}; received "
            f"{name}={value!r}."
        )
    return value


def _flag(owner: str, name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(
        f"{owner}: argument `{name}` must be a bool (True or False); "
        f"received {name}={value!r} of type {type(value).__name__}."
    )


def _name(owner: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise TypeError(
        f"{owner}: argument `name` must be a str; received name={value!r} of "
        f"type {type(value).__name__}."
    )


def _float_dtype(value: Any) -> torch.dtype:
    """The dtype Keras computes in: float32 for Python numbers."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.dtype
    if hasattr(value, "dtype") and str(getattr(value, "dtype", "")) == "float64":
        return torch.float64
    return torch.float32


def _as_tensor(value: Any, dtype: torch.dtype) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to(device="cpu", dtype=dtype).reshape(())
    return torch.tensor(float(value), dtype=dtype)


def _step_tensor(owner: str, step: Any) -> torch.Tensor:
    """``step`` (an int, a float or a 0-d tensor) as a CPU tensor."""
    if isinstance(step, torch.Tensor):
        if step.numel() != 1 or step.dtype == torch.bool or step.is_complex():
            raise TypeError(
                f"{owner}: the `step` a schedule is called with must be a "
                "number or a one-element real tensor; received a tensor of "
                f"shape {tuple(step.shape)} and dtype {step.dtype}."
            )
        return step.detach().to("cpu").reshape(())
    if isinstance(step, bool) or not isinstance(step, numbers.Real):
        if hasattr(step, "item") and hasattr(step, "dtype"):
            return _step_tensor(owner, torch.as_tensor(step))
        raise TypeError(
            f"{owner}: the `step` a schedule is called with must be a number "
            f"or a one-element tensor; received step={step!r} of type "
            f"{type(step).__name__}."
        )
    if isinstance(step, numbers.Integral):
        return torch.tensor(int(step), dtype=torch.int64)
    return torch.tensor(float(step), dtype=torch.float32)


# --------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------


class LearningRateSchedule:
    """Base class of learning-rate schedules (``keras.optimizers.schedules``).

    Subclasses implement ``__call__(step)``, returning the learning rate for
    the given step (0 for the first update), and ``get_config()``, returning
    the constructor arguments; :meth:`from_config` rebuilds the schedule
    from that dict.
    """

    def __call__(self, step: Any) -> torch.Tensor:
        raise NotImplementedError(
            f"Learning-rate schedule {type(self).__name__!r} must override "
            "`__call__(self, step)`."
        )

    def get_config(self) -> Dict[str, Any]:
        raise NotImplementedError(
            f"Learning-rate schedule {type(self).__name__!r} must override "
            "`get_config()` to be serializable."
        )

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "LearningRateSchedule":
        """Create a schedule from the dict :meth:`get_config` returned."""
        if not isinstance(config, dict):
            raise TypeError(
                f"{cls.__name__}.from_config: argument `config` must be a "
                f"dict; received config={config!r} of type "
                f"{type(config).__name__}."
            )
        return cls(**config)

    def __repr__(self) -> str:
        try:
            items = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            items = ""
        return f"{type(self).__name__}({items})"


class _DecayBase(LearningRateSchedule):
    """Shared validation of ``initial_learning_rate``/``decay_steps``."""

    def _init_common(self, initial_learning_rate: Any, decay_steps: Any, name: Any,
                     steps_name: str = "decay_steps") -> str:
        owner = type(self).__name__
        _real(owner, "initial_learning_rate", initial_learning_rate, low=0.0)
        _real(owner, steps_name, decay_steps, low=0.0, low_open=True)
        self.initial_learning_rate = initial_learning_rate
        self.name = _name(owner, name)
        return owner


class _StaircaseDecay(_DecayBase):
    """Shared by the decays driven by ``step / decay_steps`` (floored with
    ``staircase``) and ``decay_rate``."""

    def __init__(self, initial_learning_rate: Any, decay_steps: Any, decay_rate: Any,
                 staircase: bool, name: Any) -> None:
        owner = self._init_common(initial_learning_rate, decay_steps, name)
        self.decay_steps = decay_steps
        self.decay_rate = _real(owner, "decay_rate", decay_rate)
        self.staircase = _flag(owner, "staircase", staircase)

    def _progress(self, step: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``step / decay_steps`` in ``dtype``, floored with ``staircase``."""
        p = _step_tensor(type(self).__name__, step).to(dtype) / _as_tensor(
            self.decay_steps, dtype
        )
        if self.staircase:
            p = torch.floor(p)
        return p

    def get_config(self) -> Dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
            "name": self.name,
        }


# --------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------


class ExponentialDecay(_StaircaseDecay):
    r"""``initial_learning_rate * decay_rate ** (step / decay_steps)``.

    With ``staircase=True`` the exponent is floored, so the rate drops in
    steps every ``decay_steps`` steps.

    Args:
        initial_learning_rate (float): the rate at step 0, >= 0.
        decay_steps (float): > 0.
        decay_rate (float): the factor applied every ``decay_steps`` steps.
        staircase (bool): floor ``step / decay_steps``. Default False.
        name (str): default ``"ExponentialDecay"``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay") -> None:
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step: Any) -> torch.Tensor:
        dtype = _float_dtype(self.initial_learning_rate)
        lr = _as_tensor(self.initial_learning_rate, dtype)
        p = self._progress(step, dtype)
        return lr * torch.pow(_as_tensor(self.decay_rate, dtype), p)


class PiecewiseConstantDecay(LearningRateSchedule):
    r"""A constant rate per interval of steps.

    ``values[0]`` for ``step <= boundaries[0]``, ``values[i]`` for
    ``boundaries[i-1] < step <= boundaries[i]`` and ``values[-1]`` for
    ``step > boundaries[-1]``.

    Args:
        boundaries (list of numbers): non-decreasing step boundaries.
        values (list of floats): one more entry than ``boundaries``.
        name (str): default ``"PiecewiseConstant"``.
    """

    def __init__(self, boundaries: Sequence[float], values: Sequence[float],
                 name: str = "PiecewiseConstant") -> None:
        owner = type(self).__name__
        for arg, seq in (("boundaries", boundaries), ("values", values)):
            if isinstance(seq, (str, bytes)) or not hasattr(seq, "__len__"):
                raise TypeError(
                    f"{owner}: argument `{arg}` must be a list of numbers; "
                    f"received {arg}={seq!r} of type {type(seq).__name__}."
                )
        if len(boundaries) < 1 or len(boundaries) != len(values) - 1:
            raise ValueError(
                f"{owner}: `boundaries` must be non-empty and have exactly one "
                f"entry fewer than `values`; received boundaries={boundaries!r} "
                f"(length {len(boundaries)}) and values={values!r} (length "
                f"{len(values)})."
            )
        for i, b in enumerate(boundaries):
            _real(owner, f"boundaries[{i}]", b)
        for i, v in enumerate(values):
            _real(owner, f"values[{i}]", v)
        floats = [float(b) for b in boundaries]
        if any(a > b for a, b in zip(floats, floats[1:])):
            raise ValueError(
                f"{owner}: argument `boundaries` must be non-decreasing; "
                f"received boundaries={boundaries!r}."
            )
        self.boundaries = boundaries
        self.values = values
        self.name = _name(owner, name)

    def __call__(self, step: Any) -> torch.Tensor:
        step = _step_tensor(type(self).__name__, step)
        dtype = _float_dtype(self.values[0])
        if step.is_floating_point():
            bounds = [_as_tensor(b, step.dtype) for b in self.boundaries]
        else:
            # Keras casts the boundaries to the step's integer dtype.
            bounds = [torch.tensor(int(float(b)), dtype=step.dtype) for b in self.boundaries]
        values = [_as_tensor(v, dtype) for v in self.values]
        result = (step <= bounds[0]).to(dtype) * values[0]
        result = result + (step > bounds[-1]).to(dtype) * values[-1]
        for low, high, value in zip(bounds[:-1], bounds[1:], values[1:-1]):
            result = result + ((step > low) & (step <= high)).to(dtype) * value
        return result

    def get_config(self) -> Dict[str, Any]:
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(_DecayBase):
    r"""Polynomial decay from ``initial_learning_rate`` to ``end_learning_rate``.

    ``(initial - end) * (1 - step / decay_steps) ** power + end``, with
    ``step`` capped at ``decay_steps``; with ``cycle=True`` ``decay_steps``
    is instead stretched to the first multiple of itself that is >= step.

    Args:
        initial_learning_rate (float): >= 0.
        decay_steps (float): > 0.
        end_learning_rate (float): default 0.0001.
        power (float): default 1.0 (linear).
        cycle (bool): default False.
        name (str): default ``"PolynomialDecay"``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float,
                 end_learning_rate: float = 0.0001, power: float = 1.0, cycle: bool = False,
                 name: str = "PolynomialDecay") -> None:
        owner = self._init_common(initial_learning_rate, decay_steps, name)
        self.decay_steps = decay_steps
        self.end_learning_rate = _real(owner, "end_learning_rate", end_learning_rate, low=0.0)
        self.power = _real(owner, "power", power)
        self.cycle = _flag(owner, "cycle", cycle)

    def __call__(self, step: Any) -> torch.Tensor:
        dtype = _float_dtype(self.initial_learning_rate)
        lr = _as_tensor(self.initial_learning_rate, dtype)
        end = _as_tensor(self.end_learning_rate, dtype)
        power = _as_tensor(self.power, dtype)
        step = _step_tensor(type(self).__name__, step).to(dtype)
        decay_steps = _as_tensor(self.decay_steps, dtype)
        if self.cycle:
            multiplier = torch.where(
                step == 0,
                torch.ones((), dtype=dtype),
                torch.ceil(step / float(self.decay_steps)),
            )
            decay_steps = decay_steps * multiplier
        else:
            step = torch.minimum(step, decay_steps)
        p = step / decay_steps
        return (lr - end) * torch.pow(1 - p, power) + end

    def get_config(self) -> Dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "end_learning_rate": self.end_learning_rate,
            "power": self.power,
            "cycle": self.cycle,
            "name": self.name,
        }


class InverseTimeDecay(_StaircaseDecay):
    r"""``initial_learning_rate / (1 + decay_rate * step / decay_steps)``.

    With ``staircase=True``, ``step / decay_steps`` is floored.

    Args:
        initial_learning_rate (float): >= 0.
        decay_steps (float): > 0.
        decay_rate (float): the decay coefficient.
        staircase (bool): default False.
        name (str): default ``"InverseTimeDecay"``.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, decay_rate: float,
                 staircase: bool = False, name: str = "InverseTimeDecay") -> None:
        super().__init__(initial_learning_rate, decay_steps, decay_rate, staircase, name)

    def __call__(self, step: Any) -> torch.Tensor:
        dtype = _float_dtype(self.initial_learning_rate)
        lr = _as_tensor(self.initial_learning_rate, dtype)
        p = self._progress(step, dtype)
        return lr / (torch.ones((), dtype=dtype) + _as_tensor(self.decay_rate, dtype) * p)


class CosineDecay(_DecayBase):
    r"""Cosine decay (SGDR without restarts), with an optional linear warmup.

    Without warmup (``warmup_target=None``)::

        s = min(step, decay_steps)
        lr = initial * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha)

    With ``warmup_target``, the rate first goes linearly from
    ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps``
    steps, then decays from ``warmup_target`` as above over
    ``decay_steps`` more steps.

    Args:
        initial_learning_rate (float): >= 0.
        decay_steps (float): > 0.
        alpha (float): the final rate as a fraction of the decayed-from
            rate. Default 0.0.
        name (str): default ``"CosineDecay"``.
        warmup_target (float, optional): the rate reached after warmup.
        warmup_steps (float): >= 0, default 0.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: float, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: Optional[float] = None,
                 warmup_steps: float = 0) -> None:
        owner = self._init_common(initial_learning_rate, decay_steps, name)
        self.decay_steps = decay_steps
        self.alpha = _real(owner, "alpha", alpha)
        self.warmup_target = _real(owner, "warmup_target", warmup_target,
                                   low=0.0, allow_none=True)
        self.warmup_steps = _real(owner, "warmup_steps", warmup_steps, low=0.0)

    def _decay(self, step: torch.Tensor, decay_steps: Any, decay_from: Any,
               dtype: torch.dtype) -> torch.Tensor:
        fraction = step / decay_steps
        pi = torch.tensor(math.pi, dtype=dtype)
        cosine = 0.5 * (1.0 + torch.cos(pi * fraction))
        decayed = (1 - self.alpha) * cosine + self.alpha
        return decay_from * decayed

    def __call__(self, step: Any) -> torch.Tensor:
        dtype = _float_dtype(self.initial_learning_rate)
        lr = _as_tensor(self.initial_learning_rate, dtype)
        decay_steps = _as_tensor(self.decay_steps, dtype)
        step = _step_tensor(type(self).__name__, step).to(dtype)
        if self.warmup_target is None:
            step = torch.minimum(step, decay_steps)
            return self._decay(step, decay_steps, lr, dtype)
        target = _as_tensor(self.warmup_target, dtype)
        warmup_steps = _as_tensor(self.warmup_steps, dtype)
        step = torch.minimum(step, decay_steps + warmup_steps)
        if bool(step < warmup_steps):
            return (target - lr) * (step / warmup_steps) + lr
        return self._decay(step - warmup_steps, decay_steps, target, dtype)

    def get_config(self) -> Dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


class CosineDecayRestarts(_DecayBase):
    r"""Cosine decay with warm restarts (SGDR).

    The first period lasts ``first_decay_steps`` steps; each restart makes
    the next period ``t_mul`` times longer and its starting rate ``m_mul``
    times smaller. Within a period the rate follows the cosine of
    :class:`CosineDecay` down to ``alpha * initial_learning_rate``.

    Args:
        initial_learning_rate (float): >= 0.
        first_decay_steps (float): > 0.
        t_mul (float): > 0, default 2.0.
        m_mul (float): >= 0, default 1.0.
        alpha (float): default 0.0.
        name (str): default ``"SGDRDecay"``.
    """

    def __init__(self, initial_learning_rate: float, first_decay_steps: float, t_mul: float = 2.0,
                 m_mul: float = 1.0, alpha: float = 0.0, name: str = "SGDRDecay") -> None:
        owner = self._init_common(initial_learning_rate, first_decay_steps,
                                  name, steps_name="first_decay_steps")
        self.first_decay_steps = first_decay_steps
        self._t_mul = _real(owner, "t_mul", t_mul, low=0.0, low_open=True)
        self._m_mul = _real(owner, "m_mul", m_mul, low=0.0)
        self.alpha = _real(owner, "alpha", alpha)

    @property
    def t_mul(self) -> float:
        return self._t_mul

    @property
    def m_mul(self) -> float:
        return self._m_mul

    def __call__(self, step: Any) -> torch.Tensor:
        dtype = _float_dtype(self.initial_learning_rate)
        lr = _as_tensor(self.initial_learning_rate, dtype)
        first = _as_tensor(self.first_decay_steps, dtype)
        alpha = _as_tensor(self.alpha, dtype)
        t_mul = _as_tensor(self._t_mul, dtype)
        m_mul = _as_tensor(self._m_mul, dtype)
        fraction = _step_tensor(type(self).__name__, step).to(dtype) / first
        if float(self._t_mul) == 1.0:
            restart = torch.floor(fraction)
            fraction = fraction - restart
        else:
            restart = torch.floor(
                torch.log((1.0 - fraction * (1.0 - t_mul)).to(dtype)) / torch.log(t_mul)
            )
            done = (1.0 - torch.pow(t_mul, restart)) / (1.0 - t_mul)
            fraction = (fraction - done) / torch.pow(t_mul, restart)
        factor = torch.pow(m_mul, restart)
        pi = torch.tensor(math.pi, dtype=dtype)
        cosine = 0.5 * factor * (1.0 + torch.cos(pi * fraction))
        return lr * ((1 - alpha) * cosine + alpha)

    def get_config(self) -> Dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "first_decay_steps": self.first_decay_steps,
            "t_mul": self._t_mul,
            "m_mul": self._m_mul,
            "alpha": self.alpha,
            "name": self.name,
        }


# --------------------------------------------------------------------------
# torch bridge
# --------------------------------------------------------------------------


class ScheduleLR(torch.optim.lr_scheduler.LRScheduler):
    r"""Drive any torch optimizer's learning rate with a schedule.

    ``schedule(k)`` becomes the learning rate of every param group for the
    ``k``-th optimizer step (0-based), the same rate a Keras optimizer built
    with ``learning_rate=schedule`` would use. Call ``scheduler.step()``
    after every ``optimizer.step()``::

        opt = torch.optim.AdamW(model.parameters())
        scheduler = ScheduleLR(opt, CosineDecay(1e-3, decay_steps=1000))

    Args:
        optimizer (torch.optim.Optimizer): a bound optimizer.
        schedule (callable): a :class:`LearningRateSchedule` or any callable
            ``step -> learning rate``.
        last_epoch (int): index of the last step taken, -1 to start afresh.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: Any, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                "ScheduleLR: argument `optimizer` must be a torch.optim."
                f"Optimizer; received optimizer={optimizer!r} of type "
                f"{type(optimizer).__name__}."
            )
        if "param_groups" not in optimizer.__dict__:
            raise ValueError(
                "ScheduleLR: argument `optimizer` must be bound to parameters; "
                f"received the unbound optimizer {optimizer!r}. Call "
                "`optimizer.bind(params)` (or compile the model) first."
            )
        if not callable(schedule) or isinstance(schedule, torch.Tensor):
            raise TypeError(
                "ScheduleLR: argument `schedule` must be a LearningRateSchedule "
                f"or a callable step -> learning rate; received "
                f"schedule={schedule!r} of type {type(schedule).__name__}."
            )
        self.schedule = schedule
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> List[float]:
        value = self.schedule(max(self.last_epoch, 0))
        if isinstance(value, torch.Tensor):
            value = float(value.detach().reshape(()).item())
        return [float(value) for _ in self.optimizer.param_groups]

    def state_dict(self) -> Dict[str, Any]:
        state = super().state_dict()
        # The schedule is configuration, rebuilt by the caller.
        state.pop("schedule", None)
        return state


# --------------------------------------------------------------------------
# (De)serialization
# --------------------------------------------------------------------------

ALL_OBJECTS = (
    ExponentialDecay,
    PiecewiseConstantDecay,
    PolynomialDecay,
    InverseTimeDecay,
    CosineDecay,
    CosineDecayRestarts,
)
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in ALL_OBJECTS}


def serialize(learning_rate_schedule: LearningRateSchedule) -> Dict[str, Any]:
    """``{"module", "class_name", "config"}`` for a schedule (Keras's layout)."""
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise TypeError(
            "serialize: argument `learning_rate_schedule` must be a "
            "LearningRateSchedule; received "
            f"learning_rate_schedule={learning_rate_schedule!r} of type "
            f"{type(learning_rate_schedule).__name__}."
        )
    cls = type(learning_rate_schedule)
    return {
        "module": cls.__module__,
        "class_name": cls.__name__,
        "config": learning_rate_schedule.get_config(),
        "registered_name": None,
    }


def deserialize(config: Dict[str, Any],
                custom_objects: Optional[Dict[str, Any]] = None) -> LearningRateSchedule:
    """Rebuild a schedule from :func:`serialize`'s output.

    Keras's ``keras.optimizers.schedules.serialize`` dicts load as the
    torchfit class of the same name, without importing Keras.
    """
    if not is_config(config):
        raise ValueError(
            "deserialize: argument `config` must be a dict "
            "{'class_name': ..., 'config': {...}}; received "
            f"config={config!r}."
        )
    name = config["class_name"]
    registry = dict(ALL_OBJECTS_DICT)
    registry.update(custom_objects or {})
    cls = registry.get(name)
    if cls is None:
        raise ValueError(
            f"deserialize: unknown learning-rate schedule class_name={name!r}; "
            f"expected one of {sorted(ALL_OBJECTS_DICT)} or a class given in "
            "`custom_objects`."
        )
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier: Any) -> Any:
    """A schedule from an instance (returned as is) or a config dict."""
    if isinstance(identifier, LearningRateSchedule):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise TypeError(
        "get: argument `identifier` must be a LearningRateSchedule or a "
        f"config dict; received identifier={identifier!r} of type "
        f"{type(identifier).__name__}."
    )
