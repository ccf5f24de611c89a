"""``keras.src.losses`` (and ``losses.losses``, ``losses.loss``) -> torchfit."""

from torchfit import losses as _losses
from torchfit.losses import *  # noqa: F401,F403
from torchfit.losses import Loss, squeeze_or_expand_to_same_rank  # noqa: F401

from . import module_getattr

losses = _losses  # ``from keras.src.losses import losses``
__getattr__ = module_getattr("keras.losses", _losses)
