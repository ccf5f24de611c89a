"""Tiny seeded data sets and models, and a seeded-RNG context: what the
``tiny_*`` and ``seeded`` fixtures hand out."""

from __future__ import annotations

import contextlib
import math
import numbers
import random
from typing import Any, Dict, Iterator, NamedTuple, Optional

import numpy as np
import torch
from torch import nn

from .. import losses, optimizers
from ..module import KerasStyleModule
from ..validation import _received, check_int

DEFAULT_SEED = 0


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
    check_int(samples, "samples", 1, function="make_classification_data")
    check_int(features, "features", 1, function="make_classification_data")
    check_int(classes, "classes", 2, function="make_classification_data")
    check_int(seed, "seed", 0, function="make_classification_data")
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
    check_int(samples, "samples", 1, function="make_regression_data")
    check_int(features, "features", 1, function="make_regression_data")
    check_int(targets, "targets", 1, function="make_regression_data")
    check_int(seed, "seed", 0, function="make_regression_data")
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
    check_int(in_features, "in_features", 1, function=function)
    check_int(out_features, "out_features", 1, allow_none=True, function=function)
    check_int(hidden, "hidden", 1, function=function)
    check_int(seed, "seed", 0, function=function)
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
    check_int(seed, "seed", 0, function="seeded_rng")
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
