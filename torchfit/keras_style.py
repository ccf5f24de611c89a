"""``keras_style()``: give an existing module instance the Keras training API.

Defined in :mod:`torchfit.module` (beside ``KerasStyleModule``); importable
from here as before, and pickles written by earlier versions name
``torchfit.keras_style._rebuild_keras_style`` as their rebuild function.
"""

from __future__ import annotations

from .module import _rebuild_keras_style, keras_style  # noqa: F401

__all__ = ["keras_style"]
