"""User-facing utilities, as in ``keras.utils``."""

from .py_dataset import PyDataset
from .training_mode import training_mode

Sequence = PyDataset  # Keras's older name for the same class

__all__ = ["PyDataset", "Sequence", "training_mode"]
