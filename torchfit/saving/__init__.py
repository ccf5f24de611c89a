"""Saving and loading models in torch's own format.

Two kinds of files, both written atomically (a temporary file in the same
directory, then ``os.replace``) and both readable with
``torch.load(path, weights_only=True)`` (no arbitrary pickles):

* ``save_weights``: the model's plain ``state_dict``. Plain torch can read it
  back: ``model.load_state_dict(torch.load(path, weights_only=True))``.
* ``save_model``: a dict ``{"format": "torchfit.model", "version", "weights",
  "optimizer", "compile_config", "epoch", "step", "iterations"}``. ``"weights"``
  is again a plain ``state_dict``. The compile config holds what can be stored
  without pickling code (names, numbers, torchfit, ``torch.nn`` loss,
  ``torch.optim`` and torchmetrics configs, the names of the user's own
  objects); what cannot is listed under ``"compile_config"]["unserialized"]``.

Loading never imports or runs what a file names: names resolve through
allow-lists or ``custom_objects`` only (``torchfit.name_gate``), ``jit_compile``
comes back without backend options, a zip file's CRC-32s are checked before
torch reads it, and nothing changes until everything has been checked.

Only ``save_model(..., pickle_model=True)`` stores the module object itself;
reading such a file needs ``load_model(..., weights_only=False)``, given
explicitly, and must only be done for files you trust.

This package also holds the RNG snapshot helpers used by ``BackupAndRestore``.
"""

# Layout: files (atomic writes, checked reads), weights
# (save_weights/load_weights, key and shape checks), compile_args (the compile()
# arguments through allow-lists), optimizer_state (does a stored state fit an
# optimizer), model_file (save_model/load_model), rng (RNG snapshots).
# ``summary`` lives in torchfit/summary.py (it runs the model); importable here.

from __future__ import annotations

from .compile_args import torch_lr_schedulers  # noqa: F401
from .files import FORMAT_VERSION, MODEL_FORMAT, atomic_save, read_checkpoint  # noqa: F401
from .model_file import compile_config, load_model, save_model  # noqa: F401
from ..summary import summary  # noqa: F401 (moved to torchfit.summary; importable here as before)
from .optimizer_state import check_optimizer_state, optimizer_identity  # noqa: F401
from .rng import check_rng_state, get_rng_state, set_rng_state  # noqa: F401
from .weights import check_state_dict, load_weights, save_weights  # noqa: F401

__all__ = [
    "save_weights",
    "load_weights",
    "save_model",
    "load_model",
    "read_checkpoint",
    "atomic_save",
    "summary",
    "get_rng_state",
    "set_rng_state",
]

