"""``grad_free(model, kind)``: the no-autograd context of ``evaluate``/``predict``.

``torch.inference_mode`` skips the version-counter and view bookkeeping that
``torch.no_grad`` still does, which is a few microseconds a batch at small
batch sizes. Its tensors, though, can never join autograd or be updated in
place outside it, so it is only used where nothing made in the block outlives
it in a way that matters:

* the step is torchfit's own (a user's ``test_step``/``predict_step`` or
  ``compute_loss`` may turn gradients back on, e.g. saliency maps or a
  gradient penalty, which ``torch.enable_grad()`` allows under ``no_grad``);
* no lazy module (``nn.LazyLinear``...) is still to be built: parameters
  materialised in inference mode would be inference tensors that no
  optimizer can update;
* no torch.distributed process group exists: DDP/FSDP keep buffers (bucket views,
  unsharded parameters) that are reused by training steps.

Batch-level callbacks of ``evaluate``/``predict`` run inside the block too: the
0-d tensors of their batch logs are inference tensors (read them, or ``float()``
them; updating one in place later, or feeding it to autograd, is refused by torch).
"""

from __future__ import annotations

import contextlib
from typing import Dict

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from ..distributed.process_group import is_initialized  # any group, one-process FSDP too

#: The methods whose torchfit versions run a step without autograd tricks.
_BUILT_IN_STEPS = {"test": ("test_step", "compute_loss"), "predict": ("predict_step",)}

#: The class that defines torchfit's own steps, registered by ``module.py``
#: (which imports this package, so this one cannot import it back).
_STEP_OWNER: Dict[str, type] = {}


def register_step_owner(cls: type) -> type:
    """Record ``cls`` (``KerasStyleModule``) as the owner of the built-in steps."""
    _STEP_OWNER["class"] = cls
    return cls


def grad_free(model: nn.Module, kind: str) -> contextlib.AbstractContextManager:
    """``torch.inference_mode()`` where it is safe for ``model`` (see above), else ``torch.no_grad()``.

    ``kind`` is ``"test"`` or ``"predict"``.
    """
    if kind not in _BUILT_IN_STEPS:
        raise ValueError(f"Argument `kind` must be one of {sorted(_BUILT_IN_STEPS)}. Received: {kind!r}.")
    if (is_initialized() or not _built_in_steps(model, kind)
            or _has_unbuilt_lazy_module(model)):
        return torch.no_grad()
    return torch.inference_mode()


def _built_in_steps(model: nn.Module, kind: str) -> bool:
    owner = _STEP_OWNER.get("class")
    if owner is None:  # torchfit.module not imported: no built-in step to trust
        return False
    for name in _BUILT_IN_STEPS[kind]:
        if name in model.__dict__ or getattr(type(model), name, None) is not getattr(owner, name):
            return False
    return True


def _has_unbuilt_lazy_module(model: nn.Module) -> bool:
    return any(isinstance(m, LazyModuleMixin) and m.has_uninitialized_params() for m in model.modules())
