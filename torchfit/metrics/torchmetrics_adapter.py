"""``TorchMetricAdapter``: a ``torchmetrics.Metric`` among torchfit's metrics.

torchmetrics is never imported here: a metric is recognised by its class
names, so torchfit works without the package installed.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict

import torch

from ..naming import to_snake_case
from ..validation import _received

__all__ = ["TorchMetricAdapter", "is_torchmetrics"]


def is_torchmetrics(obj: Any) -> bool:
    """Whether ``obj`` is a ``torchmetrics.Metric`` (found without importing torchmetrics)."""
    return any(c.__module__.startswith("torchmetrics") and c.__name__ == "Metric" for c in type(obj).__mro__)


class TorchMetricAdapter:
    """Lets a ``torchmetrics.Metric`` sit in ``metrics=``/``weighted_metrics=``.

    * Update: ``metric.update(y_pred, y_true)`` (torch's ``(preds, target)``
      order), targets passed as given (a torchmetrics classification metric
      wants integer targets).
    * Name (its key in the logs): the metric's own ``name`` attribute if it
      has a string one, else the snake_cased class name
      (``MulticlassAccuracy`` -> ``multiclass_accuracy``).
    * Device: the metric moves to ``y_pred``'s device on the first update
      and whenever that device changes (not on every step).
    * ``sample_weight``: torchmetrics metrics take none, so it is ignored,
      with a ``UserWarning`` the first time a weight is actually given.
    * ``update``/``compute``/``reset`` run outside ``torch.inference_mode``
      (evaluate's mode), so the metric's states stay ordinary tensors that
      training-time updates can modify in place.

    torchmetrics' own argument checks (``validate_args=True``) read tensor
    values on the host; build the metric with ``validate_args=False`` to
    keep the step free of host syncs.
    """

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        name = getattr(metric, "name", None)
        self.name = name if isinstance(name, str) and name else to_snake_case(type(metric).__name__)
        self._warned_sample_weight = False

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if sample_weight is not None and not self._warned_sample_weight:
            self._warned_sample_weight = True
            warnings.warn(
                f"The torchmetrics metric '{self.name}' ({type(self.metric).__name__}) "
                "does not take sample weights; the `sample_weight` given to it is "
                "ignored. Use a torchfit.metrics metric for weighted results.",
                UserWarning,
                stacklevel=2,
            )
        device = getattr(y_pred, "device", None)
        if device is not None and getattr(self.metric, "device", None) != device:
            self.metric.to(device)
        with torch.inference_mode(False), torch.no_grad():
            self.metric.update(y_pred, y_true)

    def result(self) -> torch.Tensor:
        with torch.inference_mode(False), torch.no_grad():
            return self.metric.compute()

    def reset_state(self) -> None:
        with torch.inference_mode(False):
            self.metric.reset()

    def get_state(self) -> Dict[str, Any]:
        """Detached copies of the torchmetrics states (its ``_defaults`` names) and
        its update count: what checkpoints store and :meth:`set_state` takes back."""
        inner = self.metric
        with torch.no_grad():
            values = {name: _copied(getattr(inner, name)) for name in inner._defaults}
        return {"torchmetrics": values, "update_count": int(getattr(inner, "_update_count", 0))}

    def set_state(self, state: Dict[str, Any]) -> None:
        """Replace the torchmetrics states with ``state`` as :meth:`get_state`
        returned it (copies are kept). A bad ``state`` changes nothing."""
        inner = self.metric
        values = state.get("torchmetrics") if isinstance(state, dict) else None
        count = state.get("update_count", 0) if isinstance(state, dict) else None
        if (not isinstance(values, dict) or set(values) != set(inner._defaults)
                or isinstance(count, bool) or not isinstance(count, int)):
            raise ValueError(
                f"TorchMetricAdapter.set_state: argument `state` must be a dict "
                "{'torchmetrics': {name: tensor}, 'update_count': int} with the states "
                f"{sorted(inner._defaults)} (as get_state() returns). Received: {_received(state)}."
            )
        with torch.no_grad():
            copies = {name: _copied(value) for name, value in values.items()}
        for name, value in copies.items():
            setattr(inner, name, value)
        inner._update_count = count
        inner._computed = None  # the cached result belongs to the replaced states

    def __repr__(self) -> str:
        return f"<TorchMetricAdapter name={self.name} metric={type(self.metric).__name__}>"


def _copied(value: Any) -> Any:
    """A detached copy of a torchmetrics state (a tensor, or a list of them)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value
