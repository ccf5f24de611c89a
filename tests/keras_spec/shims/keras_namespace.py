"""``import keras`` in a Keras test file: Keras's namespace, torchfit's catalog."""

import keras as _keras

from . import callbacks, layers, losses, metrics, models, optimizers  # noqa: F401
from . import module_getattr
from .models import Sequential  # noqa: F401

__getattr__ = module_getattr("keras", _keras)
