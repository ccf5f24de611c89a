"""``keras.src.optimizers`` and its per-optimizer modules -> torchfit.

Each optimizer class here is a thin subclass of torchfit's (same name, no
state of its own) that translates two Keras mechanics the tests rely on:

* Keras's ``optimizer.learning_rate`` is a float32 variable read through
  ``.value``; torchfit's is a Python float. Here it reads as that float,
  whose ``.value`` is the float32 tensor Keras's variable would hold.
* a Keras variable carries its name; a torch parameter gets one as a
  ``(name, tensor)`` pair (``named_parameters()``). ``build``/``apply``
  hand the ``backend.Variable`` objects of a test to torchfit as such pairs,
  so ``exclude_from_weight_decay(var_names=...)`` sees Keras's names.

``get``/``deserialize`` return these classes, as Keras's return its own.
"""

from __future__ import annotations

from typing import Any

import torch

from torchfit import optimizers as _optimizers
from torchfit.optimizers import *  # noqa: F401,F403
from torchfit.optimizers._registry import ALL_OBJECTS_DICT

from . import keras_facing_classes, module_getattr, returning_keras_facing
from . import schedules  # noqa: F401
from .backend import Variable


class LearningRateValue(float):
    """A learning rate read as Keras's variable: ``.value`` is its float32 tensor."""

    @property
    def value(self) -> torch.Tensor:
        return torch.tensor(float(self), dtype=torch.float32)


def _with_names(entries: Any) -> Any:
    """``backend.Variable`` entries as ``(name, variable)`` pairs (all or none:
    a torch param group names every parameter or none)."""
    if not isinstance(entries, (list, tuple)):
        return entries
    entries = list(entries)
    if entries and all(isinstance(entry, Variable) for entry in entries):
        return [(entry.name, entry) for entry in entries]
    return entries


class _KerasMechanics:
    """Keras's ``learning_rate.value`` and named variables over a torchfit optimizer."""

    @property
    def learning_rate(self) -> LearningRateValue:
        return LearningRateValue(super().learning_rate)

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        super(_KerasMechanics, type(self)).learning_rate.fset(self, value)

    def build(self, params: Any) -> Any:
        return super().build(_with_names(params))

    def apply(self, grads: Any, trainable_variables: Any = None) -> None:
        if trainable_variables is not None:
            trainable_variables = _with_names(list(trainable_variables))
        return super().apply(grads, trainable_variables)


_KERAS_FACING = keras_facing_classes(_KerasMechanics, ALL_OBJECTS_DICT.values(), __name__)
globals().update({cls.__name__: facing for cls, facing in _KERAS_FACING.items()})
get = returning_keras_facing(_KERAS_FACING, _optimizers.get)
deserialize = returning_keras_facing(_KERAS_FACING, _optimizers.deserialize)


__getattr__ = module_getattr("keras.optimizers", _optimizers)
