"""Keras's own ``keras/src/optimizers/schedules/*_test.py``, run against torchfit (see README.md)."""

from .loader import area_test_classes

globals().update(area_test_classes("optimizers/schedules"))
