"""``keras_style()``: give an existing module instance the Keras training API.

The instance's class becomes a subclass of its own class with
``KerasStyleModule`` first (cached per class, named like the original), so
nothing about the module changes but the added methods. Pickles and deep
copies reduce to the original class and are made keras-style again on load.
"""

from __future__ import annotations

from typing import Any, Dict

from torch import nn

from .module import KerasStyleModule

__all__ = ["keras_style"]

_KERAS_STYLE_CLASSES: Dict[type, type] = {}


def _rebuild_keras_style(base: type, state: Dict[str, Any]) -> nn.Module:
    """Unpickling target for modules made keras-style by :func:`keras_style`."""
    module = base.__new__(base)
    if hasattr(module, "__setstate__"):
        module.__setstate__(state)
    else:
        module.__dict__.update(state)
    return keras_style(module)


def _reduce_keras_style(self: Any, protocol: int) -> Any:
    base = type(self).__bases__[1]
    return _rebuild_keras_style, (base, self.__getstate__())


def _keras_style_class(base: type) -> type:
    cls = _KERAS_STYLE_CLASSES.get(base)
    if cls is None:
        cls = type(base.__name__, (KerasStyleModule, base), {
            "__module__": base.__module__,
            "__qualname__": base.__qualname__,
            "__doc__": base.__doc__,
            "__reduce_ex__": _reduce_keras_style,
        })
        _KERAS_STYLE_CLASSES[base] = cls
    return cls


def keras_style(module: nn.Module) -> nn.Module:
    """Give an existing module instance the Keras training API, in place.

    Returns the same object. Its class becomes a subclass of its own class
    with :class:`KerasStyleModule` first; ``state_dict()`` keys, parameters,
    ``repr``, ``copy.deepcopy``, pickling and ``torch.save`` are unchanged
    (pickles load back as keras-style modules of the original class).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(
            "Argument `module` must be a torch.nn.Module instance. "
            f"Received: {type(module).__name__}."
        )
    if isinstance(module, KerasStyleModule):
        return module
    module.__class__ = _keras_style_class(type(module))
    return module
