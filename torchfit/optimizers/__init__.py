"""Keras 3's optimizers as :class:`torch.optim.Optimizer` subclasses.

Every class takes Keras's arguments and defaults and applies Keras's update
rule, and is at the same time an ordinary torch optimizer (``param_groups``,
``state_dict()``, LR schedulers, step hooks). Constructed without parameters
an optimizer is *unbound*; ``opt.bind(params)`` attaches them later.

:func:`get` resolves the identifiers Keras accepts (``"adam"``, a config
dict, an optimizer instance). :mod:`torchfit.optimizers.schedules` holds
Keras's learning-rate schedules; Keras's common arguments (``use_ema``,
``gradient_accumulation_steps``, ``loss_scale_factor``...) are documented
on :class:`Optimizer`.
"""

from typing import Any

import torch

from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam
from .adamax import Adamax
from .adamw import AdamW
from .base import Optimizer
from .ftrl import Ftrl
from .lamb import Lamb
from .lion import Lion
from .muon import Muon
from .multi_optimizer import MultiOptimizer, OptimizerMap
from .nadam import Nadam
from .rmsprop import RMSprop
from .schedule_free_adamw import ScheduleFreeAdamW, evaluation_weights
from .sgd import SGD
from . import schedules
from .schedules import LearningRateSchedule

from .loss_scale_optimizer import LossScaleOptimizer  # Keras lists it with the optimizers
from ._registry import (ALL_OBJECTS_DICT, WRAPPER_OBJECTS_DICT, _unknown_name,  # noqa: F401
                        deserialize, register, serialize)

__all__ = [
    "Optimizer",
    "LossScaleOptimizer",
    "SGD",
    "RMSprop",
    "Adam",
    "AdamW",
    "Adamax",
    "Nadam",
    "Adagrad",
    "Adadelta",
    "Lion",
    "Ftrl",
    "Lamb",
    "Adafactor",
    "Muon",
    "MultiOptimizer",
    "OptimizerMap",
    "ScheduleFreeAdamW",
    "evaluation_weights",
    "LearningRateSchedule",
    "schedules",
    "get",
    "serialize",
    "deserialize",
]

register(SGD, RMSprop, Adam, AdamW, Adamax, Nadam, Adagrad, Adadelta, Lion, Ftrl, Lamb,
         Adafactor, Muon, ScheduleFreeAdamW)
register(LossScaleOptimizer, MultiOptimizer, wrapper=True)


def get(identifier: Any, params: Any = None) -> torch.optim.Optimizer:
    """Return an optimizer for ``identifier``, as ``keras.optimizers.get``.

    Args:
        identifier: one of

            * a name such as ``"adam"`` or ``"RMSprop"`` (case-insensitive):
              a new optimizer with Keras's default arguments;
            * a config dict ``{"class_name": "Adam", "config": {...}}``;
            * a torchfit :class:`Optimizer` or any other
              :class:`torch.optim.Optimizer`: returned as is.
        params: optional parameters. A new optimizer (from a name or dict)
            is bound to them; so is a given torchfit optimizer that is still
            unbound. Without ``params``, new optimizers are unbound.

    Returns ``None`` for ``None``, as Keras does.

    Raises:
        ValueError: ``identifier`` is an unknown name.
        TypeError: ``identifier`` has an unsupported type.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Optimizer):
        if params is not None and not identifier.is_bound:
            identifier.bind(params)
        return identifier
    if isinstance(identifier, torch.optim.Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = ALL_OBJECTS_DICT.get(identifier.lower())
        if cls is None:
            raise _unknown_name(identifier)
        optimizer = cls()
    elif isinstance(identifier, dict):
        optimizer = deserialize(identifier)
    else:
        raise TypeError(
            "Invalid type for argument `optimizer`: expected a str, a config "
            "dict or a torch.optim.Optimizer instance; received "
            f"optimizer={identifier!r} of type {type(identifier).__name__}."
        )
    if params is not None:
        optimizer.bind(params)
    return optimizer

