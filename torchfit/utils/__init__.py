"""User-facing utilities, as in ``keras.utils``."""

from .py_dataset import PyDataset

Sequence = PyDataset  # Keras's older name for the same class

__all__ = ["PyDataset", "Sequence"]
