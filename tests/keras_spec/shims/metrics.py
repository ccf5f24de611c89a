"""``keras.src.metrics`` and its sub-modules -> torchfit.metrics.

Keras's tests import the sub-modules by name (``accuracy_metrics``,
``iou_metrics``...); torchfit has the same classes in one namespace, so
every such name is this module itself.

A Keras metric's ``variables`` carry their names (``true_positives``...);
torchfit's state tensors are named by ``state_names``. The metric classes
here (torchfit's concrete ones, as thin subclasses under the same names, also
returned by ``get``/``deserialize``) read ``variables`` as those tensors, each
carrying its state name as ``.name``.
"""

import sys
from typing import List

import torch

from torchfit import metrics as _metrics
from torchfit.metrics import *  # noqa: F401,F403

from . import keras_facing_classes, module_getattr, returning_keras_facing


class NamedState(torch.Tensor):
    """A metric state tensor (same storage) carrying its Keras name."""

    @property
    def name(self) -> str:
        return self._keras_name


class _NamedVariables:
    """Keras's named ``variables`` over a torchfit metric."""

    @property
    def variables(self) -> List[torch.Tensor]:
        states = super().variables
        named = []
        for name, state in zip(self.state_names, states):
            state = state.as_subclass(NamedState)
            state._keras_name = name
            named.append(state)
        return named


def _concrete_metric_classes() -> List[type]:
    """The metric classes of torchfit's namespace that none of them subclasses
    (so an ``isinstance`` check against a base class keeps holding)."""
    classes = [value for value in vars(_metrics).values()
               if isinstance(value, type) and issubclass(value, _metrics.Metric)]
    return [cls for cls in classes
            if not any(other is not cls and issubclass(other, cls) for other in classes)]


_KERAS_FACING = keras_facing_classes(_NamedVariables, _concrete_metric_classes(), __name__)
globals().update({cls.__name__: facing for cls, facing in _KERAS_FACING.items()})
get = returning_keras_facing(_KERAS_FACING, _metrics.get)
deserialize = returning_keras_facing(_KERAS_FACING, _metrics.deserialize)

_self = sys.modules[__name__]
accuracy_metrics = confusion_metrics = correlation_metrics = _self
f_score_metrics = hinge_metrics = iou_metrics = probabilistic_metrics = _self
reduction_metrics = regression_metrics = metric = _self
__getattr__ = module_getattr("keras.metrics", _metrics)
