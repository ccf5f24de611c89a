"""Assertion helpers: plain functions usable from any test."""

from __future__ import annotations

import collections.abc
import contextlib
import copy
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional

import numpy as np
import torch
from torch import nn

from ..module import KerasStyleModule
from ..utils.training_mode import training_mode
from ..validation import _received, argument_error, check_fraction, check_int, check_model
from .compare import _first_difference, _snapshot
from .fast import _uncapped
from .tiny import DEFAULT_SEED, seeded_rng


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


def _check_compiled_model(model: Any, function: str) -> None:
    if not isinstance(model, KerasStyleModule) or not isinstance(model, nn.Module):
        raise argument_error(
            TypeError, "model", "a keras-style torch module (a torchfit.KerasStyleModule "
            "subclass, or a module passed through torchfit.keras_style())", _received(model),
            function=function)
    if not model.compiled:
        raise ValueError(
            f"Argument `model` of `{function}()` must be compiled. Expected a model on "
            "which compile(optimizer=..., loss=...) was called; received one that was "
            "never compiled."
        )


def _loss_of(logs: Any) -> float:
    return float(logs["loss"]) if isinstance(logs, dict) else float(logs)


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
    steps = check_int(steps, "steps", 1, function=function)
    loss_drop = check_fraction(loss_drop, "loss_drop", function=function)
    check_int(batch_size, "batch_size", 1, allow_none=True, function=function)
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
    max_steps = check_int(max_steps, "max_steps", 1, function=function)
    loss_drop = check_fraction(loss_drop, "loss_drop", function=function)
    check_every = check_int(check_every, "check_every", 1, function=function)
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
    check_int(seed, "seed", 0, function=function)
    runs = check_int(runs, "runs", 2, function=function)
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
    with training_mode(model, False), torch.no_grad():
        inputs = torch.as_tensor(x) if isinstance(x, np.ndarray) else x
        return _snapshot(model(inputs), "The model's output")


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
    check_model(model, function=function)
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
        check_model(model, function="assert_state_dict_unchanged")
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
