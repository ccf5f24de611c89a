"""Keras's own ``keras/src/callbacks/*_test.py``, run against torchfit (see README.md)."""

from .loader import area_test_classes

globals().update(area_test_classes("callbacks"))
