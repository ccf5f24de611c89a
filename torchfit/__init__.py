"""torchfit: the Keras 3 model-training API on plain PyTorch.

``KerasStyleModule`` (a mixin) and ``keras_style()`` (for existing modules)
give any ``torch.nn.Module`` Keras's ``compile``, ``fit``, ``evaluate``,
``predict`` and ``*_on_batch`` methods; everything underneath stays torch.
"""

from . import callbacks, data, losses, metrics, optimizers, precision, saving, utils
from . import precision as mixed_precision
from .callbacks import Callback, History
from .loop import Loop
from .module import KerasStyleModule, keras_style
from .saving import load_model

# The testing helpers (no pytest needed) sit on top of the module, so they come last.
from . import testing  # noqa: E402  (isort: skip)

__version__ = "0.1.0"

__all__ = [
    "Callback",
    "History",
    "KerasStyleModule",
    "Loop",
    "callbacks",
    "data",
    "keras_style",
    "load_model",
    "losses",
    "metrics",
    "mixed_precision",
    "precision",
    "optimizers",
    "utils",
    "saving",
    "testing",
]
