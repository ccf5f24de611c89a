"""torchfit's pytest plugin: the hooks (``--torchfit-fast``, its ini values, the
``torchfit_fast`` marker) and the fixtures. Registered by ``torchfit.testing``'s
entry-point hook; ``pytest -p torchfit.testing.pytest_plugin`` loads it directly
(e.g. with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``)."""

from __future__ import annotations

# pytest finds hooks and fixtures in this module's namespace.
from .fixtures import (  # noqa: F401
    seeded,
    tiny_classification_data,
    tiny_model,
    tiny_regression_data,
    tmp_checkpoint_dir,
    torchfit_fit_limits,
)
from .plugin import pytest_addoption, pytest_configure, pytest_report_header  # noqa: F401
