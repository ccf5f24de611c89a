"""``keras.src.metrics`` and its sub-modules -> torchfit.metrics.

Keras's tests import the sub-modules by name (``accuracy_metrics``,
``iou_metrics``...); torchfit has the same classes in one namespace, so
every such name is this module itself.
"""

import sys

from torchfit import metrics as _metrics
from torchfit.metrics import *  # noqa: F401,F403

from . import module_getattr

_self = sys.modules[__name__]
accuracy_metrics = confusion_metrics = correlation_metrics = _self
f_score_metrics = hinge_metrics = iou_metrics = probabilistic_metrics = _self
reduction_metrics = regression_metrics = metric = _self
__getattr__ = module_getattr("keras.metrics", _metrics)
