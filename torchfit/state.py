"""The training state a keras-style model keeps, split by lifetime.

``model._torchfit`` holds one :class:`TrainingState`, a plain object (never
registered on the module: no ``state_dict`` keys, no submodules, not copied
or pickled with the model). Its three parts differ in who writes them and
how long they live:

* :class:`ModelSettings` (``.settings``) live as long as the model and
  survive ``compile``: the dtype policy and NaN policies (set through model
  properties), the output shapes recorded on the first batch (read by
  ``summary``) and the ``History`` of the last ``fit`` (written by ``fit``).
* :class:`CompiledState` (``.compiled``) is what ``compile`` builds and a
  later ``compile`` replaces whole: optimizer, loss and metric containers,
  loss tracker, step options, the attached LR scheduler, the step functions
  built from them and the distributed wrappers (``distributed``, a cache
  written by ``distributed/strategies.py``).
* :class:`RunState` (``.run``) belongs to one ``fit``/``evaluate``/``predict``
  and is created and closed by ``Loop``: the ``stop_*`` flags callbacks set,
  the training ``EpochIterator`` while ``fit`` runs (callbacks read its data
  position) and the ``ResumePoint`` a callback sets for the loop. A run
  started inside a running one (``evaluate`` from a callback) joins it; a
  finished run stays readable (``model.stop_training`` after ``fit``) until
  the next one starts.

:func:`of` is the one way in for code outside ``module.py`` and ``loop.py``.
Each part has slots: a field that is not declared here cannot be added.
This module is a leaf: it imports nothing from torchfit, so the types of
higher layers are named in comments only.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from typing import Any, Dict, List, Optional

import torch

__all__ = ["ModelSettings", "CompiledState", "RunState", "TrainingState", "of", "snapshot",
           "restore"]

#: The attribute of a keras-style model that holds its :class:`TrainingState`.
ATTRIBUTE = "_torchfit"

# Slots refuse undeclared fields; ``dataclass(slots=)`` exists from Python 3.10
# (torchfit supports 3.9, where the parts are plain dataclasses).
_DECLARED_ONLY: Dict[str, Any] = {"slots": True} if sys.version_info >= (3, 10) else {}


@dataclasses.dataclass(**_DECLARED_ONLY)
class ModelSettings:
    """Survives ``compile``: set on the model, or recorded by its runs."""

    dtype_policy: Any = None  # a precision.DTypePolicy; None: the global policy
    nan_policy: Optional[str] = None
    input_nan_policy: Optional[str] = None
    output_shapes: Optional[Dict[str, List[str]]] = None  # from the first batch, for summary()
    history: Any = None  # the History of the last fit


@dataclasses.dataclass(**_DECLARED_ONLY)
class CompiledState:
    """What one ``compile`` call builds; the next one replaces it whole."""

    compiled: bool = False
    optimizer: Optional[torch.optim.Optimizer] = None
    loss: Any = None  # the `loss` argument as given
    compile_loss: Any = None  # a compile_utils.CompileLoss
    compile_metrics: Any = None  # a compile_utils.CompileMetrics
    loss_tracker: Any = None  # a metrics.Mean named "loss"
    run_eagerly: bool = False
    jit_compile: Any = "auto"
    steps_per_execution: int = 1
    auto_scale_loss: bool = True
    lr_scheduler: Any = None  # a callbacks.TorchLRScheduler, stepped by every fit
    step_functions: Dict[str, Any] = dataclasses.field(default_factory=dict)
    distributed: Dict[str, Any] = dataclasses.field(default_factory=dict)  # DDP/FSDP wrappers


@dataclasses.dataclass(**_DECLARED_ONLY)
class RunState:
    """One ``fit``/``evaluate``/``predict``, owned by the ``Loop`` running it.

    The channel between the loop and callbacks that need its position
    (``BackupAndRestore``, ``TorchLRScheduler``): the loop sets
    ``train_iterator`` for the duration of ``fit``; a callback may set
    ``resume_point`` in ``on_train_begin``, which the loop takes right after.
    """

    stop_training: bool = False
    stop_evaluating: bool = False
    stop_predicting: bool = False
    train_iterator: Any = None  # the training data.EpochIterator, while fit runs
    resume_point: Any = None  # a data.epoch_iterator.ResumePoint for this fit
    active: bool = False  # between the loop's start and end of the run

    def following(self) -> "RunState":
        """The next run: the ``stop_*`` flags (each run resets its own) and a
        resume point set before it started carry over, as on a Keras model."""
        return RunState(self.stop_training, self.stop_evaluating, self.stop_predicting,
                        resume_point=self.resume_point)


@dataclasses.dataclass(**_DECLARED_ONLY)
class TrainingState:
    """A keras-style model's state: one part per lifetime (see the module docstring)."""

    settings: ModelSettings = dataclasses.field(default_factory=ModelSettings)
    compiled: CompiledState = dataclasses.field(default_factory=CompiledState)
    run: RunState = dataclasses.field(default_factory=RunState)


def of(model: Any) -> Optional[TrainingState]:
    """The :class:`TrainingState` of a keras-style ``model`` (created on first
    use by ``KerasStyleModule``); None for anything else (a plain module, None)."""
    found = getattr(model, ATTRIBUTE, None)
    return found if isinstance(found, TrainingState) else None


def snapshot(model: Any) -> Optional[TrainingState]:
    """A copy of ``model``'s state whose parts stay as they are now, for
    :func:`restore` after a failed change (e.g. ``load_model`` compiling)."""
    found = getattr(model, "__dict__", {}).get(ATTRIBUTE)
    if found is None:
        return None
    return TrainingState(copy.copy(found.settings), copy.copy(found.compiled), found.run)


def restore(model: Any, saved: Optional[TrainingState]) -> None:
    """Put back the state :func:`snapshot` returned (None: the model had none)."""
    if saved is None:
        model.__dict__.pop(ATTRIBUTE, None)
        return
    current = model.__dict__.setdefault(ATTRIBUTE, saved)
    current.settings, current.compiled, current.run = saved.settings, saved.compiled, saved.run
