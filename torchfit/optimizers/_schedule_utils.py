"""Learning-rate schedules seen from an optimizer: how one is called, its
value checked, and its (de)serialisation in an optimizer's config."""

import inspect
import math

from typing import Any, Callable, Dict, Optional

from .. import name_gate
from ._validation import _to_float
from .schedules import ALL_OBJECTS_DICT as SCHEDULES


def _schedule_takes_iterations(owner: str, schedule: Callable[..., Any]) -> bool:
    """Whether ``schedule`` is called as ``schedule(iterations)``.

    Keras calls a plain callable learning rate with no argument and a
    ``LearningRateSchedule`` with the step; torchfit accepts both by looking
    at the signature.
    """
    try:
        signature = inspect.signature(schedule)
    except (TypeError, ValueError):
        return True
    try:
        signature.bind(0)
        return True
    except TypeError:
        pass
    try:
        signature.bind()
        return False
    except TypeError:
        raise TypeError(
            f"{owner}: a callable `learning_rate` must accept the iteration "
            "count as its only positional argument (or no argument); "
            f"received learning_rate={schedule!r} with signature {signature}."
        ) from None


def evaluate_schedule(
    owner: str, schedule: Callable[..., Any], takes_iterations: bool, iterations: int
) -> float:
    """The learning rate ``schedule`` gives at ``iterations``, checked to be a
    finite float >= 0."""
    if takes_iterations:
        value = schedule(iterations)
    else:
        value = schedule()
    try:
        lr = _to_float(value)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"{owner}: the learning-rate schedule must "
            f"return a float; it returned {value!r} at "
            f"iterations={iterations}."
        ) from None
    if not math.isfinite(lr) or lr < 0:
        raise ValueError(
            f"{owner}: the learning-rate schedule must "
            f"return a finite float >= 0; it returned {lr!r} at "
            f"iterations={iterations}."
        )
    return lr


def _serialize_schedule(schedule: Any) -> Any:
    cls = type(schedule)
    if hasattr(schedule, "get_config") and hasattr(cls, "from_config"):
        try:
            config = schedule.get_config()
        except NotImplementedError:
            return schedule  # a schedule that cannot serialize itself
        return {
            "module": cls.__module__,
            "class_name": cls.__name__,
            "config": config,
        }
    return schedule


def _deserialize_schedule(
    config: Dict[str, Any], custom_objects: Optional[Dict[str, Any]] = None
) -> Any:
    """A schedule from its ``{"module", "class_name", "config"}`` dict.

    The class comes from ``custom_objects`` or torchfit's schedule registry
    (Keras's built-in schedules load as torchfit's of the same name); the
    ``module`` a config names is never imported (see ``torchfit.name_gate``).
    """
    cls = name_gate.resolve(config.get("class_name"), SCHEDULES,
                            custom_objects, "learning-rate schedule")
    return cls.from_config(dict(config.get("config") or {}))
