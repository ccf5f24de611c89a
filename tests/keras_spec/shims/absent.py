"""Stands for a framework that is not installed (``import tensorflow as tf``).

Keras's test files import TensorFlow at the top for their TF-only paths;
with TensorFlow absent, a test that reaches it fails naming it.
"""

from . import Missing


def __getattr__(name: str) -> Missing:
    if name.startswith("__"):
        raise AttributeError(name)
    return Missing("tensorflow", name)
