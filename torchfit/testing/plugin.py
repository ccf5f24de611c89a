"""The pytest hooks: the ``--torchfit-fast`` option, its ini values and the
``torchfit_fast`` marker."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from .fast import DEFAULT_FAST_MAX_EPOCHS, DEFAULT_FAST_MAX_STEPS_PER_EPOCH, FitLimits


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("torchfit")
    group.addoption(
        "--torchfit-fast", action="store_true", default=False, dest="torchfit_fast",
        help="cap every keras-style fit() call (smoke tests): see the ini options "
             "torchfit_fast_max_epochs and torchfit_fast_max_steps_per_epoch.",
    )
    parser.addini("torchfit_fast_max_epochs", type="string", default=str(DEFAULT_FAST_MAX_EPOCHS),
                  help="fast mode: the most epochs one fit() call runs (default 1; 'none': no cap).")
    parser.addini("torchfit_fast_max_steps_per_epoch", type="string",
                  default=str(DEFAULT_FAST_MAX_STEPS_PER_EPOCH),
                  help="fast mode: the most training/validation steps per epoch (default 2; 'none': no cap).")


def _ini_limit(config: Any, name: str) -> Optional[int]:
    raw = str(config.getini(name)).strip()
    if raw.lower() == "none":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 1:
        raise pytest.UsageError(f"ini option `{name}` must be an integer >= 1 or 'none'. Received: {raw!r}.")
    return value


def _default_limits(config: Any) -> FitLimits:
    return FitLimits(_ini_limit(config, "torchfit_fast_max_epochs"),
                     _ini_limit(config, "torchfit_fast_max_steps_per_epoch"))


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "torchfit_fast(max_epochs=1, max_steps_per_epoch=2): cap every keras-style fit() call "
        "in this test (torchfit fast mode; None leaves a dimension uncapped).",
    )
    _default_limits(config)  # a bad ini value fails the run at start, not in every test


def pytest_report_header(config: Any) -> Optional[str]:
    if config.getoption("torchfit_fast", default=False):
        limits = _default_limits(config)
        return (f"torchfit: fast mode, fit() capped at max_epochs={limits.max_epochs}, "
                f"max_steps_per_epoch={limits.max_steps_per_epoch}")
    return None


_MARKER_ARGUMENTS = ("max_epochs", "max_steps_per_epoch")


def _limits_for(item: Any, config: Any) -> Optional[FitLimits]:
    marker = item.get_closest_marker("torchfit_fast")
    if marker is None:
        return _default_limits(config) if config.getoption("torchfit_fast", default=False) else None
    if marker.args:
        raise TypeError(
            "Marker `torchfit_fast` takes keyword arguments only (max_epochs=..., "
            f"max_steps_per_epoch=...). Received positional arguments {marker.args!r}."
        )
    unknown = sorted(set(marker.kwargs) - set(_MARKER_ARGUMENTS))
    if unknown:
        raise TypeError(
            f"Marker `torchfit_fast` got unknown arguments {unknown}. Expected only "
            f"{list(_MARKER_ARGUMENTS)}."
        )
    defaults = _default_limits(config)
    return FitLimits(marker.kwargs.get("max_epochs", defaults.max_epochs),
                     marker.kwargs.get("max_steps_per_epoch", defaults.max_steps_per_epoch))
