"""The ``compile()`` arguments of a saved model: stored as names and numbers,
rebuilt through allow-lists, never by importing what a file names.

A loss, metric or optimizer is stored as a tagged entry:

* ``{"__torchfit__": "loss" | "metric", "class_name", "config"}``: torchfit's
  own catalog (``losses.deserialize``/``metrics.deserialize``);
* ``{"__torch__": "loss", "class_name", "config"}``: a ``torch.nn`` loss
  module with its constructor arguments (tensors such as ``weight`` and
  ``pos_weight`` included); ``{"__torch__": "function", "name"}``: a loss
  function of ``torch.nn.functional``;
* ``{"__torchmetrics__": "<module>.<class>", "config"}``: a torchmetrics
  metric with its constructor arguments (torchmetrics imported lazily);
* ``{"__custom__": "loss" | "metric", "name", "config"}``: the user's own
  named class or function, which comes back only from ``custom_objects``;
* optimizers: ``{"kind": "torchfit", "class_name", "config"}``, or
  ``{"kind": "torch", "class_name", "defaults", "groups"}`` with each param
  group's hyper-parameters and parameter names.

Every class is found by a dictionary lookup in a registry built from code
already imported (``torchfit.name_gate``).
"""

from __future__ import annotations

import inspect
import math
import sys
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from .. import losses as losses_module
from .. import metrics as metrics_module
from .. import name_gate
from .. import optimizers as optimizers_module
from ..compilation import restorable_jit_compile
from ..optimizers._unwrap import unwrap_loss_scale
from .lr_schedulers import ALLOWED_SCHEDULERS

_SCALARS = (str, int, float, bool, type(None))
_DEPRECATED_ARGUMENTS = ("size_average", "reduce")  # torch losses: `reduction` holds them


class Unserializable(Exception):
    """An object the file cannot describe without pickling code."""


def is_plain(value: Any, tensors: bool = False) -> bool:
    """Names, numbers and containers of them (and tensors when ``tensors``)."""
    if isinstance(value, _SCALARS):
        return not (isinstance(value, float) and math.isnan(value))
    if tensors and isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (list, tuple)):
        return all(is_plain(v, tensors) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain(v, tensors) for k, v in value.items())
    return False


# ------------------------------------------------------------------ registries
def torch_losses() -> Dict[str, type]:
    """The loss modules of ``torch.nn``, by class name."""
    base = nn.modules.loss._Loss
    return {name: cls for name, cls in vars(nn).items()
            if isinstance(cls, type) and issubclass(cls, base) and cls is not base}


_TORCH_LOSS_FUNCTIONS = ("cross_entropy", "binary_cross_entropy",
                         "binary_cross_entropy_with_logits", "kl_div")


def torch_functions() -> Dict[str, Callable[..., Any]]:
    """The loss functions of ``torch.nn.functional`` (``*_loss`` and the
    cross-entropies), by name."""
    return {name: fn for name, fn in vars(nn.functional).items()
            if inspect.isfunction(fn) and fn.__module__ == nn.functional.__name__
            and (name.endswith("_loss") or name in _TORCH_LOSS_FUNCTIONS)}


def torch_optimizers() -> Dict[str, type]:
    """The optimizer classes of ``torch.optim``, by class name."""
    base = torch.optim.Optimizer
    return {name: cls for name, cls in vars(torch.optim).items()
            if isinstance(cls, type) and issubclass(cls, base) and cls is not base}


def torch_lr_schedulers() -> Dict[str, type]:
    """The scheduler classes of ``torch.optim.lr_scheduler``, by class name: the
    allow-list for a torch LR scheduler named by a file (one list, kept in
    :mod:`torchfit.saving.lr_schedulers`)."""
    return dict(ALLOWED_SCHEDULERS)


def _torchmetrics_base() -> Optional[type]:
    module = sys.modules.get("torchmetrics")
    return getattr(module, "Metric", None) if module is not None else None


def torchmetrics_classes() -> Dict[str, type]:
    """torchmetrics' own metric classes (imported lazily), by ``module.qualname``."""
    try:
        import torchmetrics  # optional dependency
    except ImportError:
        return {}
    found: Dict[str, type] = {}
    pending = list(torchmetrics.Metric.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("torchmetrics."):
            found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


# -------------------------------------------------------------------- storing
def constructor_arguments(obj: Any) -> Dict[str, Any]:
    """The arguments of ``type(obj).__init__`` read back from ``obj``'s
    attributes of the same names (how torch losses and torchmetrics keep them)."""
    config: Dict[str, Any] = {}
    parameters = list(inspect.signature(type(obj).__init__).parameters.values())[1:]
    for parameter in parameters:
        if (parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
                or parameter.name in _DEPRECATED_ARGUMENTS):
            continue
        if not hasattr(obj, parameter.name):
            if parameter.default is parameter.empty:
                raise Unserializable()
            continue
        value = getattr(obj, parameter.name)
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().clone()
        elif not is_plain(value):
            raise Unserializable()
        config[parameter.name] = value
    return config


def _custom_entry(obj: Any, kind: str) -> Dict[str, Any]:
    """A user's named function or class instance: its name, and for an instance
    its arguments (its ``get_config()``, else its constructor's arguments read
    back from its attributes), to come back from ``custom_objects``."""
    instance = not (inspect.isfunction(obj) or inspect.isclass(obj))
    qualname = getattr(type(obj) if instance else obj, "__qualname__", "")
    if not qualname or "<" in qualname:
        raise Unserializable()  # a lambda or a local: no name to ask for
    return {"__custom__": kind, "name": qualname, "instance": instance,
            "config": _instance_config(obj) if instance else None}


def _instance_config(obj: Any) -> Optional[Dict[str, Any]]:
    """``obj.get_config()`` or its constructor's arguments; None when neither
    is plain data."""
    if callable(getattr(obj, "get_config", None)):
        try:
            config = obj.get_config()
        except Exception:  # a get_config that cannot describe this object
            config = None
        if isinstance(config, dict) and is_plain(config, tensors=True):
            return config
    try:
        return constructor_arguments(obj)
    except (Unserializable, TypeError, ValueError):
        return None


def serialize_objects(spec: Any, kind: str) -> Any:
    """``compile()``'s ``loss``/``metrics`` value as names and tagged entries."""
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, (list, tuple)):
        return [serialize_objects(s, kind) for s in spec]
    if isinstance(spec, dict):
        return {str(k): serialize_objects(v, kind) for k, v in spec.items()}
    return _serialize_object(spec, kind)


def _torchfit_entry(obj: Any, kind: str) -> Optional[Dict[str, Any]]:
    """A torchfit loss/metric's tagged config; None for other objects."""
    if kind == "loss":
        own = (isinstance(obj, losses_module.Loss)
               or losses_module._FUNCTIONS.get(getattr(obj, "__name__", None)) is obj)
        serialize: Callable[[Any], Dict[str, Any]] = losses_module.serialize
    else:
        own, serialize = isinstance(obj, metrics_module.Metric), metrics_module.serialize
    if not own:
        return None
    try:
        config = serialize(obj)
    except Exception:
        raise Unserializable() from None
    if not is_plain(config):
        raise Unserializable()  # e.g. a wrapper around a lambda
    return {"__torchfit__": kind, **config}


def _serialize_object(obj: Any, kind: str) -> Dict[str, Any]:
    entry = _torchfit_entry(obj, kind)
    if entry is not None:
        return entry
    if kind == "loss" and torch_losses().get(type(obj).__name__) is type(obj):
        return {"__torch__": "loss", "class_name": type(obj).__name__,
                "config": constructor_arguments(obj)}
    if kind == "loss" and torch_functions().get(getattr(obj, "__name__", "")) is obj:
        return {"__torch__": "function", "name": obj.__name__}
    base = _torchmetrics_base()
    if kind == "metric" and base is not None and isinstance(obj, base):
        key = f"{type(obj).__module__}.{type(obj).__qualname__}"
        if torchmetrics_classes().get(key) is type(obj):
            return {"__torchmetrics__": key, "config": constructor_arguments(obj)}
    return _custom_entry(obj, kind)


def serialize_optimizer(optimizer: Any, model: nn.Module) -> Dict[str, Any]:
    """A torchfit optimizer's config, or a ``torch.optim`` optimizer's class,
    defaults and param groups (hyper-parameters and parameter names)."""
    catalog = (optimizers_module.Optimizer, optimizers_module.MultiOptimizer,
               optimizers_module.LossScaleOptimizer)
    if isinstance(optimizer, catalog):
        config = optimizers_module.serialize(optimizer)
        if is_plain(config):
            return {"kind": "torchfit", **config}
        inner = getattr(optimizer, "inner_optimizer", None)
        if inner is None:
            raise Unserializable()
        return serialize_optimizer(inner, model)  # e.g. loss scaling around a torch.optim one
    cls = type(optimizer)
    if torch_optimizers().get(cls.__name__) is not cls:
        raise Unserializable()
    names = {id(p): name for name, p in model.named_parameters()}
    groups: List[Dict[str, Any]] = []
    for group in optimizer.param_groups:
        if any(id(p) not in names for p in group["params"]):
            raise Unserializable()  # a tensor the model does not own
        hyper = {k: v for k, v in group.items() if k != "params"}
        groups.append({"params": [names[id(p)] for p in group["params"]], **hyper})
    defaults = dict(optimizer.defaults)
    if not (is_plain(defaults, tensors=True) and is_plain(groups, tensors=True)):
        raise Unserializable()
    return {"kind": "torch", "class_name": cls.__name__, "defaults": defaults, "groups": groups}


def optimizer_identity(optimizer: Any) -> str:
    """``"torchfit.Adam"``, ``"torch.optim.SGD"`` or the class's qualified name:
    what a stored optimizer state belongs to."""
    optimizer = unwrap_loss_scale(optimizer)
    cls = type(optimizer)
    if isinstance(optimizer, optimizers_module.Optimizer):
        return f"torchfit.optimizers.{cls.__name__}"
    if torch_optimizers().get(cls.__name__) is cls:
        return f"torch.optim.{cls.__name__}"
    return f"{cls.__module__}.{cls.__qualname__}"


def serialize_jit_compile(value: Any) -> Any:
    """What of ``jit_compile`` a file keeps: ``True``/``False``/``"auto"`` or
    the allow-listed ``torch.compile`` keys (never ``options`` or ``backend``)."""
    return restorable_jit_compile(value)[0]


# ------------------------------------------------------------------ rebuilding
def deserialize_objects(spec: Any, custom_objects: Optional[Dict[str, Any]]) -> Any:
    """Inverse of :func:`serialize_objects`, through the allow-lists only."""
    if isinstance(spec, list):
        return [deserialize_objects(s, custom_objects) for s in spec]
    if not isinstance(spec, dict):
        return spec
    if "__torchfit__" in spec:
        config = {k: v for k, v in spec.items() if k != "__torchfit__"}
        _check_catalog_name(spec, custom_objects)
        if spec["__torchfit__"] == "loss":
            return losses_module.deserialize(config, custom_objects)
        return metrics_module.deserialize(config, custom_objects)
    if "__torch__" in spec:
        if spec["__torch__"] == "function":
            return name_gate.resolve(spec.get("name"), torch_functions(), custom_objects,
                                     "torch function")
        cls = name_gate.resolve(spec.get("class_name"), torch_losses(), custom_objects,
                                "torch loss")
        return cls(**_arguments(spec))
    if "__torchmetrics__" in spec:
        cls = name_gate.resolve(spec["__torchmetrics__"], torchmetrics_classes(), custom_objects,
                                "torchmetrics metric")
        return cls(**_arguments(spec))
    if "__custom__" in spec:
        return _custom_object(spec, custom_objects)
    return {k: deserialize_objects(v, custom_objects) for k, v in spec.items()}


def _check_catalog_name(spec: Dict[str, Any], custom_objects: Optional[Dict[str, Any]]) -> None:
    """The gate's error for a torchfit entry whose name is in neither the
    catalog nor ``custom_objects`` (before the catalog's own lookup)."""
    name = spec.get("class_name")
    if spec["__torchfit__"] != "loss":
        registry: Any = {c.__name__: c for c in metrics_module.ALL_OBJECTS}
        what = "metric class"
    elif name == "function":
        registry = {**losses_module._FUNCTIONS, **losses_module._ALIASES}
        name, what = spec.get("config"), "loss function"
    else:
        registry, what = losses_module._CLASSES, "loss class"
    name_gate.resolve(name, registry, custom_objects, what)


def _arguments(spec: Dict[str, Any]) -> Dict[str, Any]:
    config = spec.get("config") or {}
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise ValueError(f"The saved compile() arguments hold a malformed config: {spec!r:.200}.")
    return config


def _custom_object(spec: Dict[str, Any], custom_objects: Optional[Dict[str, Any]]) -> Any:
    what = "loss" if spec.get("__custom__") == "loss" else "metric"
    obj = name_gate.resolve(spec.get("name"), {}, custom_objects, f"custom {what}")
    if not (spec.get("instance") and inspect.isclass(obj)):
        return obj  # a function, or the instance itself
    config = spec.get("config")
    if config is None:  # the file does not know its arguments: never guess them
        raise ValueError(
            f"The saved {what} {spec.get('name')!r} is an instance whose arguments the file "
            f"does not hold. Pass the instance itself: custom_objects="
            f"{{{name_gate.short_name(str(spec.get('name')))!r}: <the {what} instance>}}.")
    if callable(getattr(obj, "from_config", None)):
        return obj.from_config(config)
    return obj(**_arguments(spec))


def deserialize_optimizer(config: Dict[str, Any], model: nn.Module,
                          custom_objects: Optional[Dict[str, Any]]) -> Any:
    """The optimizer a :func:`serialize_optimizer` entry describes, bound to
    ``model``'s parameters (a torchfit one is bound by ``compile``)."""
    if config.get("kind") != "torch":
        name = config.get("class_name")
        known = {**optimizers_module.ALL_OBJECTS_DICT, **optimizers_module.WRAPPER_OBJECTS_DICT}
        if not (isinstance(name, str) and name.lower() in known):
            name_gate.resolve(name, {}, custom_objects, "optimizer")
        return optimizers_module.deserialize(
            {k: v for k, v in config.items() if k != "kind"}, custom_objects)
    cls = name_gate.resolve(config.get("class_name"), torch_optimizers(), custom_objects,
                            "torch optimizer")
    named = dict(model.named_parameters())
    groups = config.get("groups")
    if not groups:
        params: Any = [p for p in model.parameters() if p.requires_grad]
    else:
        params = []
        for group in groups:
            missing = [n for n in group["params"] if n not in named]
            if missing:
                raise ValueError(f"The saved optimizer's param groups name parameters the model "
                                 f"does not have: {missing[:10]}.")
            params.append({**group, "params": [named[n] for n in group["params"]]})
    return cls(params, **_accepted(cls, dict(config.get("defaults") or {})))


def _accepted(cls: type, defaults: Dict[str, Any]) -> Dict[str, Any]:
    """The ``defaults`` that ``cls.__init__`` takes (torch's AdamW keeps a
    ``decoupled_weight_decay`` default it does not accept as an argument)."""
    parameters = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return defaults
    return {k: v for k, v in defaults.items() if k in parameters}
