"""torchfit's pytest plugin: fixtures, assertion helpers and a fast mode for smoke tests.

The plugin is registered through the ``pytest11`` entry point ``torchfit``, so it
is active in every pytest run of an environment where torchfit is installed
(``pytest -p no:torchfit`` turns it off for one run).

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

Assertion helpers (plain functions, usable from any test):
:func:`assert_fits`, :func:`assert_overfits_batch`, :func:`assert_deterministic`,
:func:`assert_checkpoint_roundtrip` and :func:`assert_state_dict_unchanged`.

Fast mode, for smoke tests (like Keras's ``keras.config.set_max_epochs`` /
``set_max_steps_per_epoch`` or Lightning's ``fast_dev_run``): ``pytest
--torchfit-fast`` for every test, or ``@pytest.mark.torchfit_fast`` for one test,
caps every ``fit()`` call of a keras-style model (see :func:`limit_fit`). The
defaults, 1 epoch of at most 2 steps, come from the ini options
``torchfit_fast_max_epochs`` and ``torchfit_fast_max_steps_per_epoch``; a marker
may give its own: ``@pytest.mark.torchfit_fast(max_epochs=2, max_steps_per_epoch=5)``
(``None`` leaves that dimension uncapped).
"""

from __future__ import annotations

import collections.abc
import contextlib
import copy
import functools
import inspect
import math
import numbers
import os
import random
import tempfile
import threading
import warnings
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional

import numpy as np
import pytest
import torch
from torch import nn

from . import losses, optimizers
from .module import KerasStyleModule

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

DEFAULT_FAST_MAX_EPOCHS = 1
DEFAULT_FAST_MAX_STEPS_PER_EPOCH = 2
DEFAULT_SEED = 0


# --------------------------------------------------------------- argument checks
def _received(value: Any) -> str:
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{text} (type {type(value).__name__})"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_int(value: Any, name: str, function: str, minimum: int, allow_none: bool = False) -> Optional[int]:
    if value is None and allow_none:
        return None
    expected = f"an integer >= {minimum}" + (" or None" if allow_none else "")
    if not _is_int(value):
        raise TypeError(f"Argument `{name}` of `{function}()` must be {expected}. Received: {_received(value)}.")
    if value < minimum:
        raise ValueError(f"Argument `{name}` of `{function}()` must be {expected}. Received: {value}.")
    return int(value)


def _check_fraction(value: Any, name: str, function: str) -> float:
    expected = "a float in [0, 1)"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Argument `{name}` of `{function}()` must be {expected}. Received: {_received(value)}.")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"Argument `{name}` of `{function}()` must be {expected}. Received: {value}.")
    return float(value)


def _check_compiled_model(model: Any, function: str) -> None:
    if not isinstance(model, KerasStyleModule) or not isinstance(model, nn.Module):
        raise TypeError(
            f"Argument `model` of `{function}()` must be a keras-style torch module "
            "(a torchfit.KerasStyleModule subclass, or a module passed through "
            f"torchfit.keras_style()). Received: {_received(model)}."
        )
    if not model.compiled:
        raise ValueError(
            f"Argument `model` of `{function}()` must be compiled. Expected a model on "
            "which compile(optimizer=..., loss=...) was called; received one that was "
            "never compiled."
        )


def _check_module(model: Any, function: str) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"Argument `model` of `{function}()` must be a torch.nn.Module. "
            f"Received: {_received(model)}."
        )


def _loss_of(logs: Any) -> float:
    return float(logs["loss"]) if isinstance(logs, dict) else float(logs)


# ------------------------------------------------------------------------ data
class TinyData(NamedTuple):
    """A small ``(x, y)`` data set of NumPy arrays; unpacks as ``x, y = data``."""

    x: np.ndarray
    y: np.ndarray


def make_classification_data(samples: int = 64, features: int = 8, classes: int = 3,
                             seed: int = DEFAULT_SEED) -> TinyData:
    """Seeded, learnable classification data (NumPy's global RNG is not touched).

    ``x`` is standard normal, float32, shape ``(samples, features)``; ``y`` is
    int64, shape ``(samples,)``: the argmax of a fixed random linear teacher, so
    the classes are linearly separable.
    """
    _check_int(samples, "samples", "make_classification_data", 1)
    _check_int(features, "features", "make_classification_data", 1)
    _check_int(classes, "classes", "make_classification_data", 2)
    _check_int(seed, "seed", "make_classification_data", 0)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features)).astype(np.float32)
    teacher = rng.normal(size=(features, classes))
    y = (x @ teacher).argmax(axis=-1).astype(np.int64)
    return TinyData(x, y)


def make_regression_data(samples: int = 64, features: int = 8, targets: int = 1,
                         noise: float = 0.05, seed: int = DEFAULT_SEED) -> TinyData:
    """Seeded regression data: ``y = x @ w + noise * N(0, 1)``, float32.

    ``x`` has shape ``(samples, features)``, ``y`` ``(samples, targets)``.
    """
    _check_int(samples, "samples", "make_regression_data", 1)
    _check_int(features, "features", "make_regression_data", 1)
    _check_int(targets, "targets", "make_regression_data", 1)
    _check_int(seed, "seed", "make_regression_data", 0)
    if isinstance(noise, bool) or not isinstance(noise, numbers.Real) or noise < 0:
        raise ValueError(
            f"Argument `noise` of `make_regression_data()` must be a float >= 0. Received: {_received(noise)}."
        )
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features)).astype(np.float32)
    weights = rng.normal(size=(features, targets)) / math.sqrt(features)
    y = (x @ weights + noise * rng.normal(size=(samples, targets))).astype(np.float32)
    return TinyData(x, y)


# ---------------------------------------------------------------------- models
class TinyModel(KerasStyleModule, nn.Module):
    """A small keras-style MLP: ``Linear -> ReLU -> Linear`` (no dropout, no
    batch norm, so it is deterministic on the CPU)."""

    def __init__(self, in_features: int = 8, out_features: int = 3, hidden: int = 16) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_features, hidden)
        self.output = nn.Linear(hidden, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(torch.relu(self.hidden(x)))


_TASKS = ("classification", "regression")


def build_tiny_model(task: str = "classification", *, in_features: int = 8,
                     out_features: Optional[int] = None, hidden: int = 16,
                     seed: int = DEFAULT_SEED, compiled: bool = True,
                     **compile_kwargs: Any) -> TinyModel:
    """A :class:`TinyModel` with seeded weights, compiled for ``task`` by default.

    The weights come from ``torch.manual_seed(seed)`` inside a forked RNG, so
    building a model never moves the caller's torch RNG. With ``compiled=True``
    the model is compiled with ``torchfit.optimizers.Adam(learning_rate=0.01)``
    and, for ``"classification"``, sparse categorical crossentropy on logits
    with ``metrics=["accuracy"]`` (3 outputs by default); for ``"regression"``,
    ``"mse"`` with ``metrics=["mae"]`` (1 output by default). ``compile_kwargs``
    (``optimizer=``, ``loss=``, ``metrics=``, ...) override those choices.
    This is the ``tiny_model`` fixture.
    """
    function = "build_tiny_model"
    if task not in _TASKS:
        raise ValueError(
            f"Argument `task` of `{function}()` must be one of {list(_TASKS)}. Received: {_received(task)}."
        )
    _check_int(in_features, "in_features", function, 1)
    _check_int(out_features, "out_features", function, 1, allow_none=True)
    _check_int(hidden, "hidden", function, 1)
    _check_int(seed, "seed", function, 0)
    if not isinstance(compiled, bool):
        raise TypeError(f"Argument `compiled` of `{function}()` must be True or False. Received: {_received(compiled)}.")
    if compile_kwargs and not compiled:
        raise ValueError(
            f"Arguments {sorted(compile_kwargs)} of `{function}()` are compile() arguments; "
            "expected them only with compiled=True. Received compiled=False."
        )
    if out_features is None:
        out_features = 3 if task == "classification" else 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TinyModel(in_features, out_features, hidden)
    if compiled:
        options: Dict[str, Any] = {"optimizer": optimizers.Adam(learning_rate=0.01)}
        if task == "classification":
            options.update(loss=losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        else:
            options.update(loss="mse", metrics=["mae"])
        options.update(compile_kwargs)
        model.compile(**options)
    return model


# -------------------------------------------------------------------------- RNG
@contextlib.contextmanager
def seeded_rng(seed: int = DEFAULT_SEED) -> Iterator[int]:
    """Seed Python's ``random``, NumPy's global RNG and torch; restore them on exit.

    ``torch.manual_seed`` also seeds every CUDA device. CUDA RNG states are
    saved and restored only when CUDA was already initialised on entry (saving
    them would initialise it). Yields ``seed``.
    """
    _check_int(seed, "seed", "seeded_rng", 0)
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda_states = torch.cuda.get_rng_state_all()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield seed
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


# ------------------------------------------------------------------- fast mode
@dataclass(frozen=True)
class FitLimits:
    """Caps applied to ``fit()`` calls inside :func:`limit_fit` (fast mode).

    Attributes:
        max_epochs: at most this many epochs are run per ``fit`` call
            (``epochs`` becomes ``min(epochs, initial_epoch + max_epochs)``);
            None: no cap.
        max_steps_per_epoch: at most this many training batches per epoch,
            and as many validation batches (``steps_per_epoch`` and
            ``validation_steps`` become their minimum with this value, or this
            value when they were None; an epoch over data with fewer batches
            simply ends with the data); None: no cap.
    """

    max_epochs: Optional[int] = DEFAULT_FAST_MAX_EPOCHS
    max_steps_per_epoch: Optional[int] = DEFAULT_FAST_MAX_STEPS_PER_EPOCH

    def __post_init__(self) -> None:
        _check_int(self.max_epochs, "max_epochs", "FitLimits", 1, allow_none=True)
        _check_int(self.max_steps_per_epoch, "max_steps_per_epoch", "FitLimits", 1, allow_none=True)

    def tightest(self, other: Optional["FitLimits"]) -> "FitLimits":
        """The limits that satisfy both ``self`` and ``other`` (for nesting)."""
        if other is None:
            return self

        def low(a: Optional[int], b: Optional[int]) -> Optional[int]:
            return b if a is None else a if b is None else min(a, b)

        return FitLimits(low(self.max_epochs, other.max_epochs),
                         low(self.max_steps_per_epoch, other.max_steps_per_epoch))

    def apply(self, arguments: Dict[str, Any]) -> bool:
        """Cap the bound arguments of one ``fit`` call in place.

        Values of the wrong type are left alone, for ``fit`` to reject. Returns
        True when a step count was introduced where the call had none (the
        data may then end before the cap, which is not worth a warning).
        """
        introduced = False
        epochs = arguments.get("epochs")
        if self.max_epochs is not None and _is_int(epochs):
            initial_epoch = arguments.get("initial_epoch", 0)
            start = int(initial_epoch) if _is_int(initial_epoch) else 0
            arguments["epochs"] = min(int(epochs), start + self.max_epochs)
        if self.max_steps_per_epoch is not None:
            for name in ("steps_per_epoch", "validation_steps"):
                if name not in arguments:
                    continue
                value = arguments[name]
                if value is None:
                    arguments[name] = self.max_steps_per_epoch
                    introduced = True
                elif _is_int(value):
                    arguments[name] = min(int(value), self.max_steps_per_epoch)
        return introduced


_ACTIVE_LIMITS: ContextVar[Optional[FitLimits]] = ContextVar("torchfit_fit_limits", default=None)
_PATCH_LOCK = threading.Lock()
_patch_depth = 0
_original_fit: Optional[Callable[..., Any]] = None
_limited_fit: Optional[Callable[..., Any]] = None
_RAN_OUT_OF_DATA = "Your input ran out of data"


def _make_limited_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        limits = _ACTIVE_LIMITS.get()
        if limits is None:
            return original(self, *args, **kwargs)
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:
            return original(self, *args, **kwargs)  # fit reports the bad call itself
        bound.apply_defaults()
        introduced_steps = limits.apply(bound.arguments)
        if not introduced_steps:
            return original(*bound.args, **bound.kwargs)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_RAN_OUT_OF_DATA, category=UserWarning)
            return original(*bound.args, **bound.kwargs)

    return fit


def _install_fit_patch() -> None:
    global _patch_depth, _original_fit, _limited_fit
    with _PATCH_LOCK:
        if _patch_depth == 0:
            _original_fit = KerasStyleModule.__dict__["fit"]
            _limited_fit = _make_limited_fit(_original_fit)
            KerasStyleModule.fit = _limited_fit  # type: ignore[method-assign]
        _patch_depth += 1


def _uninstall_fit_patch() -> None:
    global _patch_depth, _original_fit, _limited_fit
    with _PATCH_LOCK:
        _patch_depth -= 1
        if _patch_depth == 0:
            # If someone else replaced fit meanwhile, leave theirs: ours, if it
            # is still underneath, passes calls through once no limits are active.
            if KerasStyleModule.__dict__.get("fit") is _limited_fit:
                KerasStyleModule.fit = _original_fit  # type: ignore[method-assign]
            _original_fit = _limited_fit = None


@contextlib.contextmanager
def limit_fit(max_epochs: Optional[int] = DEFAULT_FAST_MAX_EPOCHS,
              max_steps_per_epoch: Optional[int] = DEFAULT_FAST_MAX_STEPS_PER_EPOCH) -> Iterator[FitLimits]:
    """Cap every keras-style ``fit()`` call made inside the block (fast mode).

    ``KerasStyleModule.fit`` is wrapped while at least one ``limit_fit`` block
    is open and restored afterwards; the caps live in a context variable, so
    nested blocks combine to the tightest limits and other threads' or
    contexts' calls are not capped. The wrapper binds the call's arguments,
    caps ``epochs``, ``steps_per_epoch`` and ``validation_steps`` as
    :class:`FitLimits` describes and calls the real ``fit``; ``evaluate``,
    ``predict`` and the ``*_on_batch`` methods are never capped. A subclass
    that overrides ``fit`` without calling ``super().fit`` is not capped.
    Yields the :class:`FitLimits` in force. The ``--torchfit-fast`` option and
    the ``torchfit_fast`` marker use this.
    """
    limits = FitLimits(max_epochs, max_steps_per_epoch).tightest(_ACTIVE_LIMITS.get())
    _install_fit_patch()
    token = _ACTIVE_LIMITS.set(limits)
    try:
        yield limits
    finally:
        _ACTIVE_LIMITS.reset(token)
        _uninstall_fit_patch()


@contextlib.contextmanager
def _uncapped() -> Iterator[None]:
    """The assertion helpers train for the number of steps they were asked for."""
    token = _ACTIVE_LIMITS.set(None)
    try:
        yield
    finally:
        _ACTIVE_LIMITS.reset(token)


# ---------------------------------------------------------- structure compare
def _snapshot(value: Any, argument: str) -> Any:
    """A detached copy of weights / outputs, for exact comparison later."""
    if isinstance(value, nn.Module):
        return _snapshot(value.state_dict(), argument)
    if isinstance(value, torch.optim.Optimizer):
        return _snapshot(value.state_dict(), argument)
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, collections.abc.Mapping):
        return {key: _snapshot(item, argument) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(item, argument) for item in value) if not hasattr(value, "_fields") \
            else type(value)(*(_snapshot(item, argument) for item in value))
    if value is None or isinstance(value, (numbers.Number, str, bytes, np.generic)):
        return value
    raise TypeError(
        f"{argument} must be a module, an optimizer, a tensor, a NumPy array, a number, or "
        f"a dict/list/tuple of these. Received a value of type {type(value).__name__}."
    )


def _tensor_difference(a: torch.Tensor, b: torch.Tensor) -> Optional[str]:
    if a.dtype != b.dtype:
        return f"dtype {a.dtype} != {b.dtype}"
    if a.shape != b.shape:
        return f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    a, b = a.detach().cpu(), b.detach().cpu()
    if a.is_floating_point() or a.is_complex():
        same = (a == b) | (torch.isnan(a) & torch.isnan(b))
    else:
        same = a == b
    if bool(same.all()):
        return None
    count = int((~same).sum())
    detail = f"{count} of {a.numel()} values differ"
    if a.is_floating_point():
        diff = (a.double() - b.double()).abs()
        finite = diff[torch.isfinite(diff)]
        if finite.numel():
            detail += f", max abs difference {float(finite.max()):.3g}"
    return detail


def _first_difference(a: Any, b: Any, path: str = "") -> Optional[str]:
    """Where and how two snapshots differ (exactly; NaN equals NaN), or None."""
    where = path or "<root>"
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return f"{where}: {type(a).__name__} != {type(b).__name__}"
        detail = _tensor_difference(a, b)
        return None if detail is None else f"{where}: {detail}"
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return f"{where}: {type(a).__name__} != {type(b).__name__}"
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{where}: dtype/shape {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        if a.dtype.kind in "fc":
            equal = bool(np.array_equal(a, b, equal_nan=True))
        else:
            equal = bool(np.array_equal(a, b))
        if equal:
            return None
        detail = _tensor_difference(torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))) \
            if a.dtype.kind in "biufc" else "values differ"
        return f"{where}: {detail}"
    if isinstance(a, collections.abc.Mapping) and isinstance(b, collections.abc.Mapping):
        keys_a, keys_b = list(a), list(b)
        if keys_a != keys_b:
            missing = [k for k in keys_a if k not in b]
            extra = [k for k in keys_b if k not in a]
            if missing or extra:
                return f"{where}: keys differ (only in the first: {missing}; only in the second: {extra})"
            return f"{where}: key order differs ({keys_a} != {keys_b})"
        for key in keys_a:
            found = _first_difference(a[key], b[key], f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return f"{where}: {type(a).__name__} of length {len(a)} != {type(b).__name__} of length {len(b)}"
        for index, (item_a, item_b) in enumerate(zip(a, b)):
            found = _first_difference(item_a, item_b, f"{path}[{index}]")
            if found:
                return found
        return None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return None
    if type(a) is not type(b) or a != b:
        return f"{where}: {a!r} != {b!r}"
    return None


# ------------------------------------------------------------ assertion helpers
class FitResult(NamedTuple):
    """What :func:`assert_fits` measured."""

    initial_loss: float
    final_loss: float
    history: Any


class OverfitResult(NamedTuple):
    """What :func:`assert_overfits_batch` measured."""

    initial_loss: float
    final_loss: float
    steps: int


def _target(initial: float, loss_drop: float) -> float:
    # abs(): losses that are negative (cosine similarity) must fall too.
    return initial - loss_drop * abs(initial)


def _reject_one_shot_input(x: Any, function: str) -> None:
    if isinstance(x, collections.abc.Iterator):
        raise TypeError(
            f"Argument `x` of `{function}()` must be re-iterable (arrays, tensors, a "
            "DataLoader or a Dataset): it is read before, during and after training. "
            f"Received a one-shot iterator of type {type(x).__name__}."
        )


def assert_fits(model: Any, x: Any, y: Any = None, *, steps: int = 100, loss_drop: float = 0.5,
                batch_size: Optional[int] = None, sample_weight: Any = None) -> FitResult:
    """Assert that ``steps`` training steps lower the loss by at least ``loss_drop``.

    The loss is ``model.evaluate(x, y)`` (test mode) before and after
    ``model.fit(x, y, epochs=steps, steps_per_epoch=1)``, which cycles through
    the batches of ``x`` (shuffled, except for a DataLoader, which orders its
    own batches). The check is
    ``final <= initial - loss_drop * abs(initial)``. Trains ``model`` in place;
    fast mode (:func:`limit_fit`) does not cap these steps.

    Args:
        model: a compiled keras-style module.
        x, y, sample_weight, batch_size: as for ``fit``; ``x`` must be
            re-iterable (arrays, tensors, a DataLoader or a Dataset).
        steps: training steps (batches), an integer >= 1.
        loss_drop: the fraction in [0, 1) by which the loss must fall.

    Returns:
        A :class:`FitResult` with the initial and final loss and the History.
    """
    function = "assert_fits"
    _check_compiled_model(model, function)
    _reject_one_shot_input(x, function)
    steps = _check_int(steps, "steps", function, 1)
    loss_drop = _check_fraction(loss_drop, "loss_drop", function)
    _check_int(batch_size, "batch_size", function, 1, allow_none=True)
    with _uncapped():
        initial = _loss_of(model.evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight,
                                          verbose=0, return_dict=True))
        history = model.fit(x, y, batch_size=batch_size, sample_weight=sample_weight,
                            epochs=steps, steps_per_epoch=1, verbose=0,
                            shuffle=not isinstance(x, torch.utils.data.DataLoader))
        final = _loss_of(model.evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight,
                                        verbose=0, return_dict=True))
    target = _target(initial, loss_drop)
    if not (math.isfinite(initial) and math.isfinite(final) and final <= target):
        trajectory = history.history.get("loss", [])
        shown = ", ".join(f"{v:.4g}" for v in trajectory[:3])
        if len(trajectory) > 3:
            shown += f", ..., {trajectory[-1]:.4g}"
        raise AssertionError(
            f"assert_fits: the loss went from {initial:.6g} to {final:.6g} in {steps} steps; "
            f"expected a drop of at least {loss_drop:.0%} (final loss <= {target:.6g}). "
            f"Training losses per step: [{shown}]."
        )
    return FitResult(initial, final, history)


def _unpack_batch(batch: Any, function: str) -> tuple:
    if not isinstance(batch, (tuple, list)):
        raise TypeError(
            f"Argument `batch` of `{function}()` must be a tuple (x, y) or (x, y, sample_weight). "
            f"Received: {_received(batch)}."
        )
    if len(batch) not in (2, 3):
        raise ValueError(
            f"Argument `batch` of `{function}()` must have 2 or 3 items, (x, y) or "
            f"(x, y, sample_weight). Received a {type(batch).__name__} of length {len(batch)}."
        )
    x, y = batch[0], batch[1]
    sample_weight = batch[2] if len(batch) == 3 else None
    return x, y, sample_weight


def assert_overfits_batch(model: Any, batch: Any, *, max_steps: int = 300, loss_drop: float = 0.9,
                          check_every: int = 10) -> OverfitResult:
    """Assert that ``model`` can memorise one batch (a standard sanity check).

    Runs ``train_on_batch`` on ``batch`` up to ``max_steps`` times and, every
    ``check_every`` steps, measures ``test_on_batch`` (test mode). Passes as
    soon as that loss is at most ``initial - loss_drop * abs(initial)``.
    Trains ``model`` in place.

    Args:
        model: a compiled keras-style module.
        batch: ``(x, y)`` or ``(x, y, sample_weight)`` of arrays or tensors.
        max_steps: the most training steps to try, an integer >= 1.
        loss_drop: the fraction in [0, 1) by which the loss must fall.
        check_every: steps between two measurements, an integer >= 1.

    Returns:
        An :class:`OverfitResult`: initial and final loss, steps taken.
    """
    function = "assert_overfits_batch"
    _check_compiled_model(model, function)
    x, y, sample_weight = _unpack_batch(batch, function)
    max_steps = _check_int(max_steps, "max_steps", function, 1)
    loss_drop = _check_fraction(loss_drop, "loss_drop", function)
    check_every = _check_int(check_every, "check_every", function, 1)
    initial = _loss_of(model.test_on_batch(x, y, sample_weight=sample_weight, return_dict=True))
    target = _target(initial, loss_drop)
    final, step = initial, 0
    while step < max_steps:
        model.train_on_batch(x, y, sample_weight=sample_weight)
        step += 1
        if step % check_every == 0 or step == max_steps:
            final = _loss_of(model.test_on_batch(x, y, sample_weight=sample_weight, return_dict=True))
            if not math.isfinite(final):
                break
            if final <= target:
                return OverfitResult(initial, final, step)
    raise AssertionError(
        f"assert_overfits_batch: the model did not memorise the batch. Its loss went from "
        f"{initial:.6g} to {final:.6g} in {step} steps; expected at most {target:.6g} "
        f"(a drop of {loss_drop:.0%}) within max_steps={max_steps}."
    )


def assert_deterministic(fn: Callable[[], Any], *, seed: int = DEFAULT_SEED, runs: int = 2) -> Any:
    """Assert that ``fn()`` gives exactly the same result in ``runs`` seeded runs.

    Each run happens inside :func:`seeded_rng` with ``seed`` (Python, NumPy and
    torch seeded, restored afterwards). ``fn`` builds and trains a model and
    returns it (its ``state_dict()`` is compared), or returns a state dict,
    tensors, arrays, an optimizer, or a dict/list/tuple of these. Values are
    compared exactly (NaN equals NaN). Returns the first run's result.
    """
    function = "assert_deterministic"
    if not callable(fn):
        raise TypeError(f"Argument `fn` of `{function}()` must be a callable taking no arguments. "
                        f"Received: {_received(fn)}.")
    _check_int(seed, "seed", function, 0)
    runs = _check_int(runs, "runs", function, 2)
    first_result: Any = None
    snapshots: List[Any] = []
    for run in range(runs):
        with seeded_rng(seed):
            result = fn()
        if result is None:
            raise TypeError(
                f"Argument `fn` of `{function}()` must return what to compare (a module, a "
                "state dict, tensors or arrays). Received: it returned None."
            )
        snapshots.append(_snapshot(result, f"The result of `fn` (run {run + 1})"))
        if run == 0:
            first_result = result
    for run, snapshot in enumerate(snapshots[1:], start=2):
        difference = _first_difference(snapshots[0], snapshot)
        if difference:
            raise AssertionError(
                f"assert_deterministic: run {run} differs from run 1 with seed={seed}: {difference}."
            )
    return first_result


def _predict(model: nn.Module, x: Any) -> Any:
    if isinstance(model, KerasStyleModule):
        return model.predict(x, verbose=0)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            inputs = torch.as_tensor(x) if isinstance(x, np.ndarray) else x
            return _snapshot(model(inputs), "The model's output")
    finally:
        model.train(was_training)


def _scramble(module: nn.Module) -> None:
    """Change every parameter and buffer, so that a successful load is visible."""
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.dtype == torch.bool:
                tensor.logical_not_()
            else:
                tensor.add_(1)


def assert_checkpoint_roundtrip(model: Any, x: Any = None, *, optimizer: Any = None,
                                directory: Any = None) -> Dict[str, Any]:
    """Assert that saving and loading ``model`` (and its optimizer) loses nothing.

    Saves ``{"model": model.state_dict(), "optimizer": optimizer.state_dict()}``
    with ``torch.save``, loads it back with ``torch.load(weights_only=True)``
    (so the checkpoint holds only tensors and plain data) into a copy of the
    model and optimizer whose weights were changed and whose optimizer state
    was cleared, and checks that the copy's ``state_dict()``, its optimizer's
    ``state_dict()`` and, when ``x`` is given, its predictions on ``x`` equal
    the original's exactly.

    Args:
        model: a torch module; keras-style modules predict with ``predict``.
        x: optional inputs to compare predictions on.
        optimizer: the optimizer to save; defaults to ``model.optimizer`` of a
            compiled keras-style model (None: weights only).
        directory: where to write ``checkpoint.pt`` (e.g. the
            ``tmp_checkpoint_dir`` fixture); a temporary directory otherwise.

    Returns:
        The loaded checkpoint dict.
    """
    function = "assert_checkpoint_roundtrip"
    _check_module(model, function)
    if optimizer is None and isinstance(model, KerasStyleModule) and model.compiled:
        optimizer = model.optimizer
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"Argument `optimizer` of `{function}()` must be a torch.optim.Optimizer or None. "
            f"Received: {_received(optimizer)}."
        )
    if directory is not None and not isinstance(directory, (str, os.PathLike)):
        raise TypeError(
            f"Argument `directory` of `{function}()` must be a path (str or os.PathLike) or None. "
            f"Received: {_received(directory)}."
        )
    with contextlib.ExitStack() as stack:
        folder = Path(directory) if directory is not None else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "checkpoint.pt"
        payload: Dict[str, Any] = {"model": model.state_dict()}
        if optimizer is not None:
            payload["optimizer"] = optimizer.state_dict()
        torch.save(payload, path)
        try:
            loaded = torch.load(path, weights_only=True)
        except Exception as error:  # the unpickler's error names the offending type
            raise AssertionError(
                f"assert_checkpoint_roundtrip: the checkpoint cannot be loaded with "
                f"torch.load(weights_only=True): {error}"
            ) from error

    clone, clone_optimizer = copy.deepcopy((model, optimizer))
    _scramble(clone)
    if clone_optimizer is not None:
        clone_optimizer.state.clear()
    clone.load_state_dict(loaded["model"])
    if clone_optimizer is not None:
        clone_optimizer.load_state_dict(loaded["optimizer"])

    difference = _first_difference(_snapshot(model, "model"), _snapshot(clone, "model"), "state_dict")
    if difference is None and optimizer is not None:
        difference = _first_difference(_snapshot(optimizer, "optimizer"), _snapshot(clone_optimizer, "optimizer"),
                                       "optimizer.state_dict")
    if difference is None and x is not None:
        difference = _first_difference(_predict(model, x), _predict(clone, x), "predictions")
    if difference:
        raise AssertionError(f"assert_checkpoint_roundtrip: the reloaded copy differs: {difference}.")
    return loaded


class StateDictGuard:
    """Context manager behind :func:`assert_state_dict_unchanged`.

    Snapshots ``model.state_dict()`` (keys, dtypes, shapes, values) on entry
    and raises ``AssertionError`` on a clean exit if anything changed. An
    exception raised inside the block propagates unchanged.
    """

    def __init__(self, model: nn.Module) -> None:
        _check_module(model, "assert_state_dict_unchanged")
        self.model = model
        self._before: Any = None

    def __enter__(self) -> "StateDictGuard":
        self._before = _snapshot(self.model, "model")
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> bool:
        if exc_type is None:
            self.check()
        return False

    def check(self) -> None:
        """Compare the current ``state_dict()`` with the snapshot taken on entry."""
        if self._before is None:
            raise RuntimeError("StateDictGuard.check() called before the guard was entered.")
        difference = _first_difference(self._before, _snapshot(self.model, "model"), "state_dict")
        if difference:
            raise AssertionError(f"assert_state_dict_unchanged: the state_dict changed: {difference}.")


def assert_state_dict_unchanged(model: Any, fn: Optional[Callable[..., Any]] = None,
                                *args: Any, **kwargs: Any) -> Any:
    """Assert that code leaves ``model.state_dict()`` exactly as it was.

    Two forms::

        with assert_state_dict_unchanged(model):
            model.evaluate(x, y, verbose=0)

        predictions = assert_state_dict_unchanged(model, model.predict, x, verbose=0)

    Without ``fn`` it returns a :class:`StateDictGuard` (a context manager);
    with ``fn`` it calls ``fn(*args, **kwargs)``, checks, and returns its result.
    Keys, their order, dtypes, shapes and values (buffers included, e.g. batch
    norm running statistics) are compared exactly.
    """
    guard = StateDictGuard(model)
    if fn is None:
        if args or kwargs:
            raise TypeError(
                "Arguments to pass on were given to `assert_state_dict_unchanged()` without "
                "`fn`. Expected fn=<callable>; received fn=None."
            )
        return guard
    if not callable(fn):
        raise TypeError(
            f"Argument `fn` of `assert_state_dict_unchanged()` must be callable or None. "
            f"Received: {_received(fn)}."
        )
    with guard:
        return fn(*args, **kwargs)


# ------------------------------------------------------------------ pytest hooks
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


# ------------------------------------------------------------------- fixtures
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
