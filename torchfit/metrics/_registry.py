"""torchfit's per-sample functions ``fn(y_true, y_pred, ...)``, by name.

A leaf of the package: ``torchfit.metrics`` fills it once all its modules are
loaded (:func:`register_functions`), so ``MeanMetricWrapper`` resolves the
function names of its configs here instead of importing the package that
imports it.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Callable, Dict

#: ``module:qualname`` path and bare name -> function (a bare name is the
#: first registered package's).
FUNCTIONS: Dict[str, Callable] = {}


def _is_sample_function(name: str, obj: object) -> bool:
    return (inspect.isfunction(obj) and not name.startswith("_")
            and obj.__module__.startswith("torchfit.")
            and list(inspect.signature(obj).parameters)[:2] == ["y_true", "y_pred"])


def register_functions(*packages: ModuleType) -> None:
    """Add the public per-sample functions of each package and of its loaded
    submodules, in order."""
    for package in packages:
        namespaces = [package] + [m for m in vars(package).values() if inspect.ismodule(m)
                                  and m.__name__.startswith(package.__name__ + ".")]
        for namespace in namespaces:
            for name, obj in vars(namespace).items():
                if _is_sample_function(name, obj):
                    FUNCTIONS[f"{obj.__module__}:{obj.__qualname__}"] = obj
                    FUNCTIONS.setdefault(name, obj)
