"""torchfit's catalog under the module names Keras's test files import.

Each sub-module stands for one ``keras.src`` module (see ``loader.py``).
A name torchfit does not have resolves to :func:`missing`'s placeholder, so
only the tests that use it fail (with a message naming it), not the whole
file at import.
"""

from __future__ import annotations

import functools
import types
from typing import Any, Callable, Dict, Iterable


class Missing:
    """Stands for a Keras name that torchfit does not provide."""

    def __init__(self, where: str, name: str) -> None:
        self._what = f"{where}.{name}"

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"torchfit has no counterpart of {self._what}")

    __call__ = _fail

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._fail()

    def __mro_entries__(self, bases: tuple) -> tuple:
        self._fail()


def module_getattr(where: str, *sources: types.ModuleType):
    """A module ``__getattr__`` looking ``name`` up in ``sources`` in turn."""

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        for source in sources:
            if hasattr(source, name):
                return getattr(source, name)
        return Missing(where, name)

    return __getattr__


def keras_facing_classes(mixin: type, classes: Iterable[type], module: str) -> Dict[type, type]:
    """``{cls: subclass of (mixin, cls)}``, each under ``cls``'s own name in
    ``module``: torchfit's class with a Keras mechanic translated by ``mixin``
    (which adds methods only, no state)."""
    return {
        cls: type(cls.__name__, (mixin, cls), {"__qualname__": cls.__qualname__,
                                               "__module__": module})
        for cls in classes
    }


def returning_keras_facing(table: Dict[type, type], function: Callable) -> Callable:
    """``function`` (a catalog's ``get``/``deserialize``) whose result, when its
    class is in ``table``, becomes an instance of the Keras-facing class (as
    Keras's ``get`` returns Keras's own classes)."""

    @functools.wraps(function)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        facing = table.get(type(result))
        if facing is not None:
            result.__class__ = facing
        return result

    return wrapped
