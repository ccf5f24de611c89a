"""``keras.src.optimizers`` and its per-optimizer modules -> torchfit."""

from torchfit import optimizers as _optimizers
from torchfit.optimizers import *  # noqa: F401,F403

from . import module_getattr
from . import schedules  # noqa: F401

__getattr__ = module_getattr("keras.optimizers", _optimizers)
