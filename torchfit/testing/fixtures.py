"""The fixtures of the pytest plugin (registered through ``torchfit.testing``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

from .fast import FitLimits, limit_fit
from .plugin import _limits_for
from .tiny import (DEFAULT_SEED, TinyData, TinyModel, build_tiny_model, make_classification_data,
                   make_regression_data, seeded_rng)


@pytest.fixture(autouse=True)
def torchfit_fit_limits(request: Any) -> Iterator[Optional[FitLimits]]:
    """The :class:`FitLimits` of fast mode for this test, or None (autouse).

    Active with ``--torchfit-fast`` or the ``torchfit_fast`` marker: every
    keras-style ``fit()`` in the test, and in the function-scoped fixtures it
    uses, is capped (see ``torchfit.testing.limit_fit``).
    """
    limits = _limits_for(request.node, request.config)
    if limits is None or (limits.max_epochs is None and limits.max_steps_per_epoch is None):
        yield None
        return
    with limit_fit(limits.max_epochs, limits.max_steps_per_epoch) as active:
        yield active


@pytest.fixture
def tiny_classification_data() -> TinyData:
    """``(x, y)``: 64 x 8 float32 features, int64 labels in {0, 1, 2} (seeded)."""
    return make_classification_data()


@pytest.fixture
def tiny_regression_data() -> TinyData:
    """``(x, y)``: 64 x 8 float32 features, (64, 1) float32 targets (seeded)."""
    return make_regression_data()


@pytest.fixture
def tiny_model() -> Callable[..., TinyModel]:
    """A factory of small compiled keras-style MLPs: ``tiny_model(task="classification", **options)``.

    See ``torchfit.testing.build_tiny_model`` for the options.
    """
    return build_tiny_model


@pytest.fixture
def seeded() -> Iterator[int]:
    """Seed random, NumPy and torch with 0 for the test; restore the RNG states after it."""
    with seeded_rng(DEFAULT_SEED) as seed:
        yield seed


@pytest.fixture
def tmp_checkpoint_dir(tmp_path: Path) -> Path:
    """An empty directory for checkpoints (inside pytest's ``tmp_path``)."""
    path = tmp_path / "checkpoints"
    path.mkdir()
    return path
