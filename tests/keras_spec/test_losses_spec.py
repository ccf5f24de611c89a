"""Keras's own ``keras/src/losses/*_test.py``, run against torchfit (see README.md)."""

from .loader import area_test_classes

globals().update(area_test_classes("losses"))
