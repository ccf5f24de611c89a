"""``MonitorCallback``: the shared base of callbacks that watch one logged quantity.

It decides whether a new value of ``monitor`` is an improvement, with Keras's
rules: ``mode="min"``/``"max"``, or ``"auto"`` which minimizes losses and
otherwise asks the metric which way it should go.
"""

from __future__ import annotations

import operator
import warnings
from typing import Any, Dict, Optional

from .. import state as training_state
from .. import validation as check
from ..logs import as_float
from .callback import Callback

# The metrics that grow as the model improves ("up") and those that shrink
# ("down"), by class name; Keras records the same as ``Metric._direction``.
_UP = {
    "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "Precision", "Recall",
    "SensitivityAtSpecificity", "SpecificityAtSensitivity", "PrecisionAtRecall",
    "RecallAtPrecision", "AUC", "PearsonCorrelation", "ConcordanceCorrelation", "FBetaScore",
    "F1Score", "IoU", "BinaryIoU", "MeanIoU", "OneHotIoU", "OneHotMeanIoU",
    "CosineSimilarity", "R2Score",
}
_DOWN = {
    "Hinge", "SquaredHinge", "CategoricalHinge", "KLDivergence", "Poisson",
    "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
    "MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
    "MeanSquaredLogarithmicError", "RootMeanSquaredError", "LogCoshError",
}


def metric_direction(metric: Any) -> Optional[str]:
    """``"up"``, ``"down"`` or ``None`` (unknown) for a metric object."""
    direction = getattr(metric, "_direction", None)
    if direction in ("up", "down"):
        return direction
    inner = getattr(metric, "metric", None)  # torchmetrics adapter
    higher = getattr(inner if inner is not None else metric, "higher_is_better", None)
    if isinstance(higher, bool):
        return "up" if higher else "down"
    for cls in type(inner if inner is not None else metric).__mro__:
        if cls.__name__ in _UP:
            return "up"
        if cls.__name__ in _DOWN:
            return "down"
    return None


def direction_from_model(model: Any, name: str) -> Optional[str]:
    """``"up"``/``"down"`` for the model's metric logged as ``name`` (without
    ``val_``), None when no compiled metric of that name tells."""
    state = training_state.of(model)
    compiled = state.compiled.compile_metrics if state is not None else None
    candidates = []
    if compiled is not None and getattr(compiled, "built", False):
        candidates.extend(zip(compiled.names, compiled.metrics))
    for metric in getattr(model, "metrics", None) or []:
        candidates.append((getattr(metric, "name", None), metric))
    for log_name, metric in candidates:
        if log_name == name or getattr(metric, "name", None) == name:
            direction = metric_direction(metric)
            if direction is not None:
                return direction
    return None


def _known_mode(owner: str, mode: Any) -> str:
    """``mode``, or ``"auto"`` with Keras's warning for an unknown string."""
    mode = check.check_string(mode, "mode", owner=owner)
    if mode not in ("auto", "min", "max"):
        warnings.warn(
            f"{owner} mode '{mode}' is unknown, fallback to auto mode "
            "(expected 'auto', 'min' or 'max').",
            stacklevel=4,
        )
        return "auto"
    return mode


class MonitorCallback(Callback):
    """Base class for callbacks that track the best value of ``monitor``.

    Args:
        monitor: the log name to watch, e.g. ``"val_loss"``.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (infer from the name/metric);
            another string warns and falls back to ``"auto"``, as in Keras.
        baseline: a reference value, or None.
        min_delta: the smallest change that counts as an improvement.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto",
                 baseline: Optional[float] = None, min_delta: float = 0.0) -> None:
        super().__init__()
        owner = type(self).__name__
        self.monitor = check.check_string(monitor, "monitor", owner=owner)
        self.mode = _known_mode(owner, mode)
        self.best = check.check_number(baseline, "baseline", allow_none=True, owner=owner)
        self.min_delta = abs(check.check_number(min_delta, "min_delta", owner=owner))
        self.monitor_op: Any = None

    # --------------------------------------------------------------- direction
    def _set_monitor_op(self) -> None:
        if self.mode == "min":
            self.monitor_op = operator.lt
        elif self.mode == "max":
            self.monitor_op = operator.gt
        else:
            name = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
            if name == "loss" or name.endswith("_loss"):
                self.monitor_op = operator.lt
            direction = self._direction_from_model(name)
            if direction is not None:
                self.monitor_op = operator.gt if direction == "up" else operator.lt
            if self.monitor_op is None:
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor!r}, but "
                    "cannot tell whether that quantity should be maximized or minimized. "
                    "Expected mode='min' or mode='max' for it; received mode='auto'."
                )
        if self.monitor_op is operator.lt:
            self.min_delta = -abs(self.min_delta)
        else:
            self.min_delta = abs(self.min_delta)

    def _direction_from_model(self, name: str) -> Optional[str]:
        return direction_from_model(self.model, name)

    def _is_improvement(self, value: Any, reference: Any) -> bool:
        if reference is None:
            return True
        return bool(self.monitor_op(value - self.min_delta, reference))

    # ------------------------------------------------------------------ state
    def _monitor_state(self) -> Dict[str, Any]:
        op = None if self.monitor_op is None else ("min" if self.monitor_op is operator.lt else "max")
        return {"best": _plain(self.best), "monitor_op": op, "min_delta": self.min_delta}

    def _load_monitor_state(self, state: Dict[str, Any]) -> None:
        self.best = state["best"]
        op = state["monitor_op"]
        self.monitor_op = None if op is None else (operator.lt if op == "min" else operator.gt)
        self.min_delta = state["min_delta"]


def _plain(value: Any) -> Any:
    """Numbers as Python floats (checkpoints hold no NumPy objects)."""
    if value is None:
        return None
    converted = as_float(value)
    return converted if isinstance(converted, float) else value
