"""The optimizer registry: names -> classes, and ``serialize``/``deserialize``.

A leaf of the package: the package fills it at import time
(:func:`register`), so the wrapper optimizers (``LossScaleOptimizer``,
``MultiOptimizer``), which (de)serialize their inner optimizers, import this
module instead of the package that imports them.
"""

from __future__ import annotations

import difflib
from typing import Any, Dict, Optional

from ..validation import is_config

#: Lower-cased class name -> class; the string identifiers ``get`` takes.
ALL_OBJECTS_DICT: Dict[str, type] = {}

#: Optimizers that wrap others: they resolve by name in configs
#: (:func:`deserialize`) but are not string identifiers of ``get``.
WRAPPER_OBJECTS_DICT: Dict[str, type] = {}


def register(*classes: type, wrapper: bool = False) -> None:
    """Add optimizer classes under their lower-cased names (``wrapper``: only
    resolvable in configs, not a string identifier)."""
    table = WRAPPER_OBJECTS_DICT if wrapper else ALL_OBJECTS_DICT
    table.update((cls.__name__.lower(), cls) for cls in classes)


def _unknown_name(name: str) -> ValueError:
    valid = sorted(ALL_OBJECTS_DICT)
    close = difflib.get_close_matches(name.lower(), valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ValueError(
        f"Invalid value for argument `optimizer`: expected one of {valid} "
        f"(case-insensitive), a config dict or an optimizer instance; "
        f"received optimizer={name!r}.{hint}"
    )


def serialize(optimizer: Any) -> Dict[str, Any]:
    """Return ``{"class_name": ..., "config": optimizer.get_config()}``."""
    return {
        "class_name": type(optimizer).__name__,
        "config": optimizer.get_config(),
    }


def deserialize(
    config: Dict[str, Any], custom_objects: Optional[Dict[str, Any]] = None
) -> Any:
    """Rebuild an unbound optimizer from :func:`serialize`'s output.

    Also accepts a Keras ``keras.optimizers.serialize`` dict for the
    optimizers torchfit provides.
    """
    if not is_config(config):
        raise ValueError(
            "Invalid value for argument `optimizer`: a config dict must have "
            "the form {'class_name': ..., 'config': {...}}; received "
            f"optimizer={config!r}."
        )
    class_name = config["class_name"]
    cls = None
    if custom_objects and class_name in custom_objects:
        cls = custom_objects[class_name]
    elif isinstance(class_name, str):
        key = class_name.lower()
        cls = ALL_OBJECTS_DICT.get(key) or WRAPPER_OBJECTS_DICT.get(key)
    if cls is None:
        raise _unknown_name(str(class_name))
    return cls.from_config(dict(config.get("config") or {}), custom_objects)
