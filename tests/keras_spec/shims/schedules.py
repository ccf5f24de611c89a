"""``keras.src.optimizers.schedules`` -> torchfit.optimizers.schedules."""

import sys

from torchfit.optimizers import schedules as _schedules
from torchfit.optimizers.schedules import *  # noqa: F401,F403

from . import module_getattr

learning_rate_schedule = sys.modules[__name__]
__getattr__ = module_getattr("keras.optimizers.schedules", _schedules)
