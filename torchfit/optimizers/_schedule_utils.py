"""Learning-rate schedules seen from an optimizer: how one is called, its
value checked, and its (de)serialisation in an optimizer's config."""

import importlib
import inspect
import math

from typing import Any, Callable, Dict, Optional

from ._validation import _to_float


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
    class_name = config.get("class_name")
    if custom_objects and class_name in custom_objects:
        return custom_objects[class_name].from_config(config["config"])
    module_name = config.get("module") or "torchfit.optimizers.schedules"
    if module_name.startswith("keras."):
        # Keras's built-in schedules load as torchfit's, without Keras.
        schedules = importlib.import_module("torchfit.optimizers.schedules")
        if class_name in schedules.ALL_OBJECTS_DICT:
            return schedules.deserialize(config)
    if not (
        module_name.startswith("torchfit.") or module_name.startswith("keras.")
    ):
        raise ValueError(
            "Cannot deserialize a learning-rate schedule from module "
            f"{module_name!r}: only torchfit and keras schedules are loaded "
            "automatically; pass the class in `custom_objects`."
        )
    module = importlib.import_module(module_name)
    return getattr(module, class_name).from_config(config["config"])
