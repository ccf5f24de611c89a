"""Torch LR schedulers in model files: recorded as data, rebuilt from an allow-list.

A record names the scheduler's class (and, for ``SequentialLR`` and
``ChainedScheduler``, its children's), the names of the functions it holds
(``LambdaLR``'s ``lr_lambda``...) and its ``state_dict``. Loading never imports
what a file names: classes resolve through :data:`ALLOWED_SCHEDULERS` (the
classes of ``torch.optim.lr_scheduler``) or the caller's ``custom_objects``;
functions only through ``custom_objects``. The rebuilt scheduler is an empty
instance of its class on the given optimizer whose ``load_state_dict`` then
puts every attribute back, so it continues exactly where it was saved.
"""

from __future__ import annotations

import types
from typing import Any, Dict, List, Optional

from torch import nn
from torch.optim import lr_scheduler

from .. import state as training_state
from ..optimizers._unwrap import unwrap_loss_scale
from ..validation import _received

_ALLOWED_NAMES = ("LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
                  "LinearLR", "ExponentialLR", "SequentialLR", "PolynomialLR",
                  "CosineAnnealingLR", "ChainedScheduler", "ReduceLROnPlateau", "CyclicLR",
                  "CosineAnnealingWarmRestarts", "OneCycleLR")
ALLOWED_SCHEDULERS: Dict[str, type] = {
    name: getattr(lr_scheduler, name) for name in _ALLOWED_NAMES if hasattr(lr_scheduler, name)}
_BASES = (lr_scheduler.LRScheduler, lr_scheduler.ReduceLROnPlateau)
# Attributes holding user functions, with the constructor argument they came from.
_FUNCTION_ATTRIBUTES = {"lr_lambdas": "lr_lambda", "_scale_fn_custom": "scale_fn"}


def _function_name(fn: Any) -> Optional[str]:
    if fn is None:
        return None
    if isinstance(fn, types.FunctionType):
        return fn.__qualname__
    return type(fn).__qualname__  # a callable object: its __dict__ is in the state


def scheduler_classes(scheduler: Any) -> Dict[str, Any]:
    """The class tree of ``scheduler``: class name, function names, children."""
    record: Dict[str, Any] = {"class_name": type(scheduler).__name__}
    for attribute in _FUNCTION_ATTRIBUTES:
        if attribute in vars(scheduler):
            value = vars(scheduler)[attribute]
            names = [_function_name(f) for f in value] if isinstance(value, list) else _function_name(value)
            record.setdefault("functions", {})[attribute] = names
    children = vars(scheduler).get("_schedulers")
    if isinstance(children, list):
        record["children"] = [scheduler_classes(child) for child in children]
    return record


def _resolve_class(name: Any, custom_objects: Dict[str, Any]) -> type:
    cls = ALLOWED_SCHEDULERS.get(name) if isinstance(name, str) else None
    if cls is None and isinstance(name, str):
        cls = custom_objects.get(name)
    if not (isinstance(cls, type) and issubclass(cls, _BASES)):
        raise ValueError(
            f"The saved LR scheduler class {name!r} is not a torch.optim.lr_scheduler class. "
            "Loading does not import code named by a file; pass "
            f"custom_objects={{{name!r}: <the scheduler class>}}, or call "
            "compile(lr_scheduler=...) yourself before load_model.")
    return cls


def _resolve_function(name: Any, argument: str, owner: str, custom_objects: Dict[str, Any]) -> Any:
    if name is None:
        return None
    short = str(name).rsplit(".", 1)[-1]
    for key in (name, short, argument):
        if callable(custom_objects.get(key)):
            return custom_objects[key]
    key = argument if short == "<lambda>" else short
    raise ValueError(
        f"The saved {owner} holds the function {name!r} (its `{argument}`), which a file "
        f"cannot hold. Pass it as custom_objects={{{key!r}: <the function>}}.")


def build_scheduler(record: Any, optimizer: Any, custom_objects: Optional[Dict[str, Any]]) -> Any:
    """An empty scheduler of the recorded class on ``optimizer``, its children and
    functions in place, ready for ``load_state_dict`` (which sets everything else)."""
    if not isinstance(record, dict):
        raise ValueError(f"The saved LR scheduler record is damaged: expected a dict, "
                         f"received {type(record).__name__}.")
    custom = custom_objects or {}
    cls = _resolve_class(record.get("class_name"), custom)
    scheduler = cls.__new__(cls)
    scheduler.optimizer = optimizer
    for attribute, names in (record.get("functions") or {}).items():
        argument = _FUNCTION_ATTRIBUTES.get(attribute)
        if argument is None:
            raise ValueError(f"The saved LR scheduler record is damaged: unknown function "
                             f"attribute {attribute!r}.")
        if isinstance(names, list):
            value: Any = [_resolve_function(n, argument, cls.__name__, custom) for n in names]
        else:
            value = _resolve_function(names, argument, cls.__name__, custom)
        setattr(scheduler, attribute, value)
    children: List[Any] = record.get("children") or []
    if children:
        scheduler._schedulers = [build_scheduler(child, optimizer, custom) for child in children]
    return scheduler


def lr_scheduler_record(model: nn.Module) -> Optional[Dict[str, Any]]:
    """The model's ``compile(lr_scheduler=...)`` as data (None without one): class
    names, settings and state, never the objects."""
    state = training_state.of(model)
    attached = state.compiled.lr_scheduler if state is not None else None
    if attached is None:
        return None
    return {"classes": scheduler_classes(attached.scheduler), "interval": attached.interval,
            "frequency": attached.frequency, "monitor": attached.monitor,
            "state": attached.state_dict()}


def restore_lr_scheduler(model: Any, record: Any, custom_objects: Any) -> None:
    """Put a recorded scheduler back on a compiled ``model``: into the one it was
    compiled with (same class), else rebuilt on its optimizer from the allow-list."""
    if record is None:
        return
    if not isinstance(record, dict) or not isinstance(record.get("classes"), dict):
        raise ValueError("The saved LR scheduler record is damaged: expected a dict with "
                         f"'classes'; received {_received(record)}.")
    attached = model.lr_scheduler
    saved_class = record["classes"].get("class_name")
    if attached is not None:
        if type(attached.scheduler).__name__ != saved_class:
            raise ValueError(f"The saved LR scheduler is a {saved_class}; the model was compiled "
                             f"with a {type(attached.scheduler).__name__}. Expected the same class.")
        attached.load_state_dict(record.get("state"))
        return
    optimizer = unwrap_loss_scale(model.optimizer)
    model.lr_scheduler = {"scheduler": build_scheduler(record["classes"], optimizer, custom_objects),
                          **{k: record.get(k) for k in ("interval", "frequency", "monitor")}}
    try:
        model.lr_scheduler.load_state_dict(record.get("state"))
    except BaseException:
        model.lr_scheduler = None  # all or nothing
        raise
