"""Testing helpers for keras-style models, and torchfit's pytest plugin.

The helpers are plain functions and context managers, usable in any test
runner or script; importing ``torchfit.testing`` does not import pytest:

- :func:`assert_fits`, :func:`assert_overfits_batch`, :func:`assert_deterministic`,
  :func:`assert_checkpoint_roundtrip`, :func:`assert_state_dict_unchanged`;
- :func:`build_tiny_model`, :func:`make_classification_data`,
  :func:`make_regression_data`: small seeded models and data sets;
  :func:`seeded_rng`: seeds random, NumPy and torch and restores them;
- :func:`limit_fit`: caps every keras-style ``fit()`` call while it is active
  (like Keras's ``keras.config.set_max_epochs`` / ``set_max_steps_per_epoch``).

The pytest plugin (``torchfit.testing.pytest_plugin``) is registered through the
``pytest11`` entry point ``torchfit``, which names this package: its one hook,
``pytest_addoption``, runs only inside pytest and registers the plugin module,
so it is active in every pytest run of an environment where torchfit is
installed (``pytest -p no:torchfit`` turns it off for one run).

Fixtures (request them by name in a test):

``tiny_classification_data``
    ``(x, y)``: 64 samples of 8 float32 features, labels in ``{0, 1, 2}``
    (int64) from a fixed linear teacher, so a small MLP learns them quickly.
``tiny_regression_data``
    ``(x, y)``: 64 samples of 8 float32 features, ``y`` of shape ``(64, 1)``
    (float32), a noisy linear function of ``x``.
``tiny_model``
    A factory, :func:`build_tiny_model`: ``tiny_model()`` is a compiled
    keras-style MLP for the classification data, ``tiny_model("regression")``
    one for the regression data.
``seeded``
    Seeds Python's ``random``, NumPy's global RNG and torch with 0 (the value
    of the fixture) and restores all three RNG states after the test.
``tmp_checkpoint_dir``
    An empty ``pathlib.Path`` directory for checkpoints, removed with pytest's
    ``tmp_path``.
``torchfit_fit_limits``
    Autouse. The :class:`FitLimits` in force for the test (fast mode), or None.

Fast mode, for smoke tests (like Lightning's ``fast_dev_run``): ``pytest
--torchfit-fast`` for every test, or ``@pytest.mark.torchfit_fast`` for one test,
caps every ``fit()`` call of a keras-style model (see :func:`limit_fit`). The
defaults, 1 epoch of at most 2 steps, come from the ini options
``torchfit_fast_max_epochs`` and ``torchfit_fast_max_steps_per_epoch``; a marker
may give its own: ``@pytest.mark.torchfit_fast(max_epochs=2, max_steps_per_epoch=5)``
(``None`` leaves that dimension uncapped).
"""

# Layout: tiny (the data, models and seeded RNG), fast (fit limits), assertions
# (the assert_* helpers, argument checks through torchfit.validation) on top of
# compare (exact snapshots/diffs) need no pytest; pytest_plugin gathers plugin (the
# hooks: option, ini values, marker) and fixtures, which import pytest.

from __future__ import annotations

import importlib
from typing import Any

from .assertions import (
    FitResult,
    OverfitResult,
    StateDictGuard,
    assert_checkpoint_roundtrip,
    assert_deterministic,
    assert_fits,
    assert_overfits_batch,
    assert_state_dict_unchanged,
)
from .fast import DEFAULT_FAST_MAX_EPOCHS, DEFAULT_FAST_MAX_STEPS_PER_EPOCH, FitLimits, limit_fit  # noqa: F401
from .tiny import (  # noqa: F401
    DEFAULT_SEED,
    TinyData,
    TinyModel,
    build_tiny_model,
    make_classification_data,
    make_regression_data,
    seeded_rng,
)

__all__ = [
    "FitLimits",
    "FitResult",
    "OverfitResult",
    "StateDictGuard",
    "TinyData",
    "TinyModel",
    "assert_checkpoint_roundtrip",
    "assert_deterministic",
    "assert_fits",
    "assert_overfits_batch",
    "assert_state_dict_unchanged",
    "build_tiny_model",
    "limit_fit",
    "make_classification_data",
    "make_regression_data",
    "seeded_rng",
]

# The private helpers live in the submodules; ``torchfit.testing._name`` still
# finds them (and reads fast mode's patch state as it is now, not as it was
# when this package was imported).
_SUBMODULES = ("tiny", "fast", "compare", "assertions")


def pytest_addoption(parser: Any, pluginmanager: Any) -> None:
    """The entry point's hook: registers :mod:`torchfit.testing.pytest_plugin`.

    pytest calls it while it starts (the plugin's own ``pytest_addoption`` then
    runs as a historic hook), so pytest is imported only inside pytest.
    """
    from . import pytest_plugin  # imports pytest: only ever inside a pytest run

    if not pluginmanager.is_registered(pytest_plugin):
        pluginmanager.register(pytest_plugin, "torchfit.testing.pytest_plugin")


def __getattr__(name: str) -> Any:
    if name.startswith("_") and not name.startswith("__"):
        for submodule in _SUBMODULES:
            module = importlib.import_module(f"{__name__}.{submodule}")
            if name in vars(module):
                return vars(module)[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
