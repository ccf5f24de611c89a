"""``keras.src.callbacks`` -> torchfit.callbacks."""

from torchfit import callbacks as _callbacks
from torchfit.callbacks import *  # noqa: F401,F403

from . import module_getattr

__getattr__ = module_getattr("keras.callbacks", _callbacks)
