"""Confusion-matrix metrics: counts, precision/recall, AUC and friends.

All of them accumulate weighted true/false positive/negative counts at a list
of thresholds (``prediction > threshold`` is a positive). When the thresholds
are evenly spaced over [0, 1] (as AUC's are by default), predictions are
bucketed with one scatter-add instead of being compared with every
threshold, exactly as Keras does; both paths give Keras's numbers.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from .base import (
    EPSILON,
    Metric,
    divide_no_nan,
    squeeze_or_expand_to_same_rank,
    to_tensor,
)

__all__ = [
    "TruePositives",
    "FalsePositives",
    "TrueNegatives",
    "FalseNegatives",
    "Precision",
    "Recall",
    "SensitivityAtSpecificity",
    "SpecificityAtSensitivity",
    "PrecisionAtRecall",
    "RecallAtPrecision",
    "AUC",
    "update_confusion_matrix_variables",
]

NEG_INF = -1e10

TP, FP, TN, FN = "tp", "fp", "tn", "fn"
_KEYS = (TP, FP, TN, FN)


# --------------------------------------------------------------------------- #
# Threshold helpers
# --------------------------------------------------------------------------- #
def _to_list(x: Any) -> list:
    if isinstance(x, (list, tuple)):
        return list(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return [x]


def _parse_thresholds(thresholds: Any, default: float) -> List[float]:
    if thresholds is not None:
        bad = [t for t in _to_list(thresholds) if t is None or t < 0 or t > 1]
        if bad:
            raise ValueError(f"Threshold values must be in [0, 1]. Received: {bad}")
        return _to_list(thresholds)
    return [default]


def _evenly_distributed(thresholds: Sequence[float]) -> bool:
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(np.asarray(thresholds), even, atol=EPSILON))


def _filter_top_k(x: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the top ``k`` entries of the last axis; push the rest to ``NEG_INF``."""
    idx = torch.topk(x, k).indices
    keep = torch.zeros_like(x).scatter_(-1, idx, 1.0)
    return x * keep + NEG_INF * (1 - keep)


def _bucket_sum(values: torch.Tensor, buckets: torch.Tensor, n: int) -> torch.Tensor:
    """Sum ``values`` per bucket along the last axis; out-of-range ids dropped."""
    valid = (buckets >= 0) & (buckets < n)
    buckets = torch.where(valid, buckets, torch.full_like(buckets, n))
    out = torch.zeros(
        values.shape[:-1] + (n + 1,), dtype=torch.float32, device=values.device
    )
    out.scatter_add_(-1, buckets, values.to(torch.float32))
    return out[..., :n].to(values.dtype)


def _reverse_cumsum(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(torch.cumsum(torch.flip(x, dims=(-1,)), dim=-1), dims=(-1,))


def _update_bucketed(
    states: Dict[str, torch.Tensor],
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    num_thresholds: int,
    multi_label: bool,
    sample_weight: Optional[torch.Tensor],
    label_weights: Optional[torch.Tensor],
    with_epsilon: bool,
) -> None:
    # Bucket i holds predictions in (t[i], t[i+1]]; a reverse cumulative sum
    # over buckets then counts predictions above each threshold.
    weights: Any = 1.0
    if sample_weight is not None:
        sw = torch.broadcast_to(sample_weight.to(y_pred.dtype), y_pred.shape)
        weights = sw if multi_label else sw.reshape(-1)
    if label_weights is not None:
        lw = torch.broadcast_to(label_weights.unsqueeze(0), y_pred.shape)
        lw = lw if multi_label else lw.reshape(-1)
        weights = weights * lw
    if isinstance(weights, torch.Tensor):
        weights = weights.to(y_true.dtype)

    y_pred = torch.clamp(y_pred, 0.0, 1.0)
    y_true = (y_true != 0).to(y_true.dtype)
    if not multi_label:
        y_true = y_true.reshape(-1)
        y_pred = y_pred.reshape(-1)
    true_labels = y_true * weights
    false_labels = (1.0 - y_true) * weights

    buckets = torch.ceil(y_pred * float(num_thresholds - 1)) - 1
    if with_epsilon:
        buckets = torch.relu(buckets)
    buckets = buckets.to(torch.int64)
    if multi_label:
        true_labels = true_labels.transpose(0, 1)
        false_labels = false_labels.transpose(0, 1)
        buckets = buckets.transpose(0, 1)

    tp = _reverse_cumsum(_bucket_sum(true_labels, buckets, num_thresholds))
    fp = _reverse_cumsum(_bucket_sum(false_labels, buckets, num_thresholds))
    if multi_label:
        tp, fp = tp.transpose(0, 1), fp.transpose(0, 1)

    if TP in states:
        states[TP].add_(tp)
    if FP in states:
        states[FP].add_(fp)
    if TN in states or FN in states:
        dim = 1 if multi_label else None
        total_true = true_labels.sum(dim=dim) if dim else true_labels.sum()
        total_false = false_labels.sum(dim=dim) if dim else false_labels.sum()
        if TN in states:
            states[TN].add_(total_false - fp)
        if FN in states:
            states[FN].add_(total_true - tp)


def _update_compared(
    states: Dict[str, torch.Tensor],
    y_true: torch.Tensor,
    y_pred: torch.Tensor,
    thresholds: torch.Tensor,
    multi_label: bool,
    sample_weight: Optional[torch.Tensor],
    label_weights: Optional[torch.Tensor],
) -> None:
    # Compare every prediction with every threshold: (T, N * L) or (T, N, L).
    num_thresholds = thresholds.shape[0]
    if multi_label:
        preds = y_pred.unsqueeze(0)
        labels = (y_true != 0).unsqueeze(0)
        thresh = thresholds.reshape(num_thresholds, *([1] * y_pred.dim()))
    else:
        preds = y_pred.reshape(1, -1)
        labels = (y_true != 0).reshape(1, -1)
        thresh = thresholds.reshape(num_thresholds, 1)
    pred_pos = preds > thresh

    weights = None
    if sample_weight is not None:
        sw = torch.broadcast_to(sample_weight.to(y_pred.dtype), y_pred.shape)
        weights = sw.unsqueeze(0) if multi_label else sw.reshape(1, -1)
    if label_weights is not None and not multi_label:
        lw = torch.broadcast_to(label_weights.unsqueeze(0), y_pred.shape).reshape(1, -1)
        weights = lw if weights is None else weights * lw

    def add(key: str, label: torch.Tensor, pred: torch.Tensor) -> None:
        state = states[key]
        both = label & pred
        if weights is not None:
            counted = torch.where(both, weights.to(state.dtype), torch.zeros((), dtype=state.dtype, device=state.device))
        else:
            counted = both.to(state.dtype)
        state.add_(counted.sum(dim=1))

    if TP in states:
        add(TP, labels, pred_pos)
    if FP in states:
        add(FP, ~labels, pred_pos)
    if TN in states:
        add(TN, ~labels, ~pred_pos)
    if FN in states:
        add(FN, labels, ~pred_pos)


def update_confusion_matrix_variables(
    states: Dict[str, torch.Tensor],
    y_true: Any,
    y_pred: Any,
    thresholds: Sequence[float],
    top_k: Optional[int] = None,
    class_id: Optional[int] = None,
    sample_weight: Any = None,
    multi_label: bool = False,
    label_weights: Optional[torch.Tensor] = None,
    thresholds_distributed_evenly: bool = False,
    thresholds_tensor: Optional[torch.Tensor] = None,
) -> None:
    """Add this batch's weighted confusion counts to ``states`` in place.

    ``states`` maps some of ``"tp"``, ``"fp"``, ``"tn"``, ``"fn"`` to tensors
    of shape ``(num_thresholds,)`` (or ``(num_thresholds, num_labels)`` with
    ``multi_label``).
    """
    if multi_label and label_weights is not None:
        raise ValueError(
            "`label_weights` for multilabel data should be handled outside of "
            "`update_confusion_matrix_variables` when `multi_label` is True."
        )
    invalid = [k for k in states if k not in _KEYS]
    if not states or invalid:
        raise ValueError(
            f"Invalid confusion matrix keys: {invalid or list(states)}. "
            f"Valid keys are: {list(_KEYS)}"
        )
    first = next(iter(states.values()))
    dtype, device = first.dtype, first.device
    y_true = to_tensor(y_true, device=device).to(dtype)
    y_pred = to_tensor(y_pred, device=device).to(dtype)
    if thresholds_tensor is None:
        thresholds_tensor = torch.as_tensor(
            np.asarray(thresholds, dtype=np.float64), dtype=dtype, device=device
        )

    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = to_tensor(sample_weight, dtype=dtype, device=device).unsqueeze(-1)
        _, sample_weight = squeeze_or_expand_to_same_rank(
            y_true, sample_weight, expand_rank_1=False
        )
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.dim() == 1:
            raise ValueError(
                "When class_id is provided, y_pred must be a 2D array with shape "
                f"(num_samples, num_classes), found shape: {tuple(y_pred.shape)}"
            )
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]

    if thresholds_distributed_evenly:
        with_epsilon = bool(thresholds[0] < 0.0 or thresholds[-1] > 1.0)
        _update_bucketed(
            states,
            y_true,
            y_pred,
            int(thresholds_tensor.shape[0]),
            multi_label,
            sample_weight,
            label_weights,
            with_epsilon,
        )
    else:
        _update_compared(
            states,
            y_true,
            y_pred,
            thresholds_tensor,
            multi_label,
            sample_weight,
            label_weights,
        )


# --------------------------------------------------------------------------- #
# Base with cached threshold tensors
# --------------------------------------------------------------------------- #
class _ThresholdMetric(Metric):
    """Keeps a device copy of ``self._threshold_values`` for the updates."""

    _threshold_values: Sequence[float]

    def _thresholds_on(self, device: torch.device) -> torch.Tensor:
        cache = self.__dict__.setdefault("_threshold_cache", {})
        key = (device, self.torch_dtype)
        if key not in cache:
            with torch.inference_mode(False):
                cache[key] = torch.as_tensor(
                    np.asarray(self._threshold_values, dtype=np.float64),
                    dtype=self.torch_dtype,
                    device=device,
                )
        return cache[key]

    def _set_thresholds(self, thresholds: Any, default: float) -> None:
        """Keep the ``thresholds`` argument and the parsed list (``[default]``
        when it is ``None``)."""
        self.init_thresholds = thresholds
        self.thresholds = _parse_thresholds(thresholds, default)
        self._threshold_values = self.thresholds
        self._thresholds_distributed_evenly = _evenly_distributed(self.thresholds)

    def _update(
        self,
        states: Dict[str, str],
        y_true: Any,
        y_pred: Any,
        sample_weight: Any,
        **kwargs: Any,
    ) -> None:
        y_pred = to_tensor(y_pred)
        device = self._follow(y_pred)
        update_confusion_matrix_variables(
            {key: getattr(self, name) for key, name in states.items()},
            y_true,
            y_pred,
            thresholds=self._threshold_values,
            thresholds_distributed_evenly=self._thresholds_distributed_evenly,
            thresholds_tensor=self._thresholds_on(device),
            sample_weight=sample_weight,
            **kwargs,
        )


# --------------------------------------------------------------------------- #
# Counts
# --------------------------------------------------------------------------- #
class _ConfusionMatrixConditionCount(_ThresholdMetric):
    _condition = TP

    def __init__(self, thresholds: Any = None, name: Optional[str] = None, dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self._set_thresholds(thresholds, 0.5)
        self.add_state("accumulator", (len(self.thresholds),), 0.0)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        self._update({self._condition: "accumulator"}, y_true, y_pred, sample_weight)

    def result(self) -> torch.Tensor:
        if len(self.thresholds) == 1:
            return self.accumulator[0].clone()
        return self.accumulator.clone()

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConfusionMatrixConditionCount):
    """Weighted count of positive labels predicted positive, per threshold."""

    _condition = TP


class FalsePositives(_ConfusionMatrixConditionCount):
    """Weighted count of negative labels predicted positive, per threshold."""

    _condition = FP


class TrueNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of negative labels predicted negative, per threshold."""

    _condition = TN


class FalseNegatives(_ConfusionMatrixConditionCount):
    """Weighted count of positive labels predicted negative, per threshold."""

    _condition = FN


# --------------------------------------------------------------------------- #
# Precision / recall
# --------------------------------------------------------------------------- #
class _PrecisionRecallBase(_ThresholdMetric):
    _second = FP

    def __init__(
        self,
        thresholds: Any = None,
        top_k: Optional[int] = None,
        class_id: Optional[int] = None,
        name: Optional[str] = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, dtype=dtype)
        self.top_k = top_k
        self.class_id = class_id
        self._set_thresholds(thresholds, 0.5 if top_k is None else NEG_INF)
        n = len(self.thresholds)
        self.add_state("true_positives", (n,), 0.0)
        second = "false_positives" if self._second == FP else "false_negatives"
        self.add_state(second, (n,), 0.0)
        self._second_name = second

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        self._update(
            {TP: "true_positives", self._second: self._second_name},
            y_true,
            y_pred,
            sample_weight,
            top_k=self.top_k,
            class_id=self.class_id,
        )

    def result(self) -> torch.Tensor:
        tp = self.true_positives
        value = divide_no_nan(tp, tp + getattr(self, self._second_name))
        return value[0] if len(self.thresholds) == 1 else value

    def get_config(self) -> Dict[str, Any]:
        return {
            **super().get_config(),
            "thresholds": self.init_thresholds,
            "top_k": self.top_k,
            "class_id": self.class_id,
        }


class Precision(_PrecisionRecallBase):
    """``tp / (tp + fp)`` at each threshold (or among the top-k predictions)."""

    _second = FP


class Recall(_PrecisionRecallBase):
    """``tp / (tp + fn)`` at each threshold (or among the top-k predictions)."""

    _second = FN


# --------------------------------------------------------------------------- #
# X at fixed Y
# --------------------------------------------------------------------------- #
class _SensitivitySpecificityBase(_ThresholdMetric):
    """Best value of one rate among the thresholds where another one reaches
    ``value``; subclasses name that constraint argument in ``_value_name``."""

    _value_name = "value"

    def __init__(
        self,
        value: float,
        num_thresholds: int = 200,
        class_id: Optional[int] = None,
        name: Optional[str] = None,
        dtype: Any = None,
    ) -> None:
        arg = self._value_name
        if value < 0 or value > 1:
            raise ValueError(
                f"Argument `{arg}` must be in the range [0, 1]. Received: {arg}={value}"
            )
        setattr(self, arg, value)
        self.num_thresholds = num_thresholds
        super().__init__(name=name, dtype=dtype)
        if num_thresholds <= 0:
            raise ValueError(
                "Argument `num_thresholds` must be an integer > 0. "
                f"Received: num_thresholds={num_thresholds}"
            )
        self.value = value
        self.class_id = class_id
        if num_thresholds == 1:
            self.thresholds = [0.5]
            self._thresholds_distributed_evenly = False
        else:
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self.thresholds = [0.0] + inner + [1.0]
            self._thresholds_distributed_evenly = True
        self._threshold_values = self.thresholds
        n = len(self.thresholds)
        for state in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            self.add_state(state, (n,), 0.0)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        self._update(
            {
                TP: "true_positives",
                TN: "true_negatives",
                FP: "false_positives",
                FN: "false_negatives",
            },
            y_true,
            y_pred,
            sample_weight,
            class_id=self.class_id,
        )

    def _rates(self) -> Dict[str, torch.Tensor]:
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        return {
            "sensitivity": divide_no_nan(tp, tp + fn),
            "specificity": divide_no_nan(tn, tn + fp),
            "precision": divide_no_nan(tp, tp + fp),
        }

    def _max_under_constraint(self, constrained: torch.Tensor, dependent: torch.Tensor) -> torch.Tensor:
        feasible = constrained >= self.value
        best = torch.amax(torch.where(feasible, dependent, torch.zeros_like(dependent)))
        return torch.clamp_min(best, 0.0)

    def get_config(self) -> Dict[str, Any]:
        return {**super().get_config(), "class_id": self.class_id,
                "num_thresholds": self.num_thresholds,
                self._value_name: getattr(self, self._value_name)}


class SensitivityAtSpecificity(_SensitivitySpecificityBase):
    """Best sensitivity (recall) among thresholds with specificity >= ``specificity``."""

    _value_name = "specificity"

    def __init__(self, specificity: float, num_thresholds: int = 200, class_id: Optional[int] = None,
                 name: Optional[str] = None, dtype: Any = None) -> None:
        super().__init__(specificity, num_thresholds, class_id, name, dtype)

    def result(self) -> torch.Tensor:
        r = self._rates()
        return self._max_under_constraint(r["specificity"], r["sensitivity"])


class SpecificityAtSensitivity(_SensitivitySpecificityBase):
    """Best specificity among thresholds with sensitivity >= ``sensitivity``."""

    _value_name = "sensitivity"

    def __init__(self, sensitivity: float, num_thresholds: int = 200, class_id: Optional[int] = None,
                 name: Optional[str] = None, dtype: Any = None) -> None:
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)

    def result(self) -> torch.Tensor:
        r = self._rates()
        return self._max_under_constraint(r["sensitivity"], r["specificity"])


class PrecisionAtRecall(_SensitivitySpecificityBase):
    """Best precision among thresholds with recall >= ``recall``."""

    _value_name = "recall"

    def __init__(self, recall: float, num_thresholds: int = 200, class_id: Optional[int] = None,
                 name: Optional[str] = None, dtype: Any = None) -> None:
        super().__init__(recall, num_thresholds, class_id, name, dtype)

    def result(self) -> torch.Tensor:
        r = self._rates()
        return self._max_under_constraint(r["sensitivity"], r["precision"])


class RecallAtPrecision(_SensitivitySpecificityBase):
    """Best recall among thresholds with precision >= ``precision``."""

    _value_name = "precision"

    def __init__(self, precision: float, num_thresholds: int = 200, class_id: Optional[int] = None,
                 name: Optional[str] = None, dtype: Any = None) -> None:
        super().__init__(precision, num_thresholds, class_id, name, dtype)

    def result(self) -> torch.Tensor:
        r = self._rates()
        return self._max_under_constraint(r["precision"], r["sensitivity"])


# --------------------------------------------------------------------------- #
# AUC
# --------------------------------------------------------------------------- #
_CURVES = {"roc": "ROC", "pr": "PR", "prgain": "PRGAIN"}
_SUMMATIONS = {"interpolation": "interpolation", "majoring": "majoring", "minoring": "minoring"}


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


class AUC(_ThresholdMetric):
    """Approximate area under the ROC or precision-recall curve.

    Confusion counts are accumulated at ``num_thresholds`` thresholds
    (``[-eps, 1/(n-1), ..., (n-2)/(n-1), 1 + eps]`` unless ``thresholds`` is
    given) and the curve is integrated with a Riemann sum
    (``summation_method`` "interpolation", "minoring" or "majoring"; the PR
    curve with "interpolation" uses Davis & Goadrich's interpolation). With
    ``multi_label=True`` each label (column) gets its own curve and the
    result is their (``label_weights``-weighted) mean.
    """

    def __init__(
        self,
        num_thresholds: int = 200,
        curve: str = "ROC",
        summation_method: str = "interpolation",
        name: Optional[str] = None,
        dtype: Any = None,
        thresholds: Optional[Sequence[float]] = None,
        multi_label: bool = False,
        num_labels: Optional[int] = None,
        label_weights: Any = None,
        from_logits: bool = False,
    ) -> None:
        curve_key = str(_enum_value(curve))
        if curve_key not in ("ROC", "PR", "PRGAIN", "roc", "pr", "prgain"):
            raise ValueError(
                f'Invalid AUC curve value: "{curve}". Expected values are ["PR", "ROC", "PRGAIN"]'
            )
        summation_key = str(_enum_value(summation_method))
        if summation_key not in ("interpolation", "Interpolation", "majoring", "Majoring",
                                 "minoring", "Minoring"):
            raise ValueError(
                f'Invalid AUC summation method value: "{summation_method}". '
                'Expected values are ["interpolation", "majoring", "minoring"]'
            )
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            thresholds = sorted(_to_list(thresholds))
            self.num_thresholds = len(thresholds) + 2
            self._thresholds_distributed_evenly = _evenly_distributed(
                [0.0] + thresholds + [1.0]
            )
        else:
            if num_thresholds <= 1:
                raise ValueError(
                    "Argument `num_thresholds` must be an integer > 1. "
                    f"Received: num_thresholds={num_thresholds}"
                )
            self.num_thresholds = num_thresholds
            thresholds = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._thresholds_distributed_evenly = True
        self._threshold_values = [0.0 - EPSILON] + list(thresholds) + [1.0 + EPSILON]
        self.curve = _CURVES[curve_key.lower()]
        self.summation_method = _SUMMATIONS[summation_key.lower()]
        super().__init__(name=name, dtype=dtype)
        self.multi_label = multi_label
        self.num_labels = num_labels
        self._label_weights_init = label_weights
        if label_weights is not None:
            self.label_weights = torch.as_tensor(np.asarray(label_weights), dtype=self.torch_dtype)
        else:
            self.label_weights = None
        self._from_logits = from_logits
        self._built = False
        if multi_label:
            if num_labels:
                self._build([None, num_labels])
        else:
            if num_labels:
                raise ValueError("`num_labels` is needed only when `multi_label` is True.")
            self._build(None)

    @property
    def thresholds(self) -> List[float]:
        return list(self._threshold_values)

    def _move_constants(self, device: torch.device) -> None:
        if self.label_weights is not None and self.label_weights.device != device:
            self.label_weights = self.label_weights.to(device)

    def _build(self, shape: Any) -> None:
        if self.multi_label:
            if len(shape) != 2:
                raise ValueError(
                    "`y_pred` must have rank 2 when `multi_label=True`. "
                    f"Found rank {len(shape)}. Full shape received for `y_pred`: "
                    f"{tuple(shape)}"
                )
            self._num_labels = shape[1]
            state_shape = (self.num_thresholds, self._num_labels)
        else:
            state_shape = (self.num_thresholds,)
        self._build_input_shape = shape
        for state in ("true_positives", "false_positives", "true_negatives", "false_negatives"):
            self.add_state(state, state_shape, 0.0)
        self._built = True

    def _build_like(self, state: Sequence[Any]) -> None:
        first = to_tensor(state[0])  # (num_thresholds, num_labels) when multi-label
        self._build([None, first.shape[-1]] if self.multi_label else None)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = to_tensor(y_pred)
        if not self._built:
            self._build(tuple(y_pred.shape))
        if self._from_logits:
            y_pred = torch.sigmoid(y_pred)
        self._follow(y_pred)  # moves label_weights too, before they are read
        self._update(
            {
                TP: "true_positives",
                TN: "true_negatives",
                FP: "false_positives",
                FN: "false_negatives",
            },
            y_true,
            y_pred,
            sample_weight,
            multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights,
        )

    def _average_over_labels(self, by_label: torch.Tensor) -> torch.Tensor:
        if self.label_weights is None:
            return torch.mean(by_label)
        lw = self.label_weights.to(by_label.device)
        return divide_no_nan(torch.sum(by_label * lw), torch.sum(lw))

    def _interpolate_pr_auc(self) -> torch.Tensor:
        n = self.num_thresholds
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[: n - 1] - tp[1:]
        p = tp + fp
        dp = p[: n - 1] - p[1:]
        prec_slope = divide_no_nan(dtp, torch.clamp_min(dp, 0))
        intercept = tp[1:] - prec_slope * p[1:]
        safe_p_ratio = torch.where(
            (p[: n - 1] > 0) & (p[1:] > 0),
            divide_no_nan(p[: n - 1], torch.clamp_min(p[1:], 0)),
            torch.ones_like(p[1:]),
        )
        increments = divide_no_nan(
            prec_slope * (dtp + intercept * torch.log(safe_p_ratio)),
            torch.clamp_min(tp[1:] + fn[1:], 0),
        )
        if self.multi_label:
            return self._average_over_labels(torch.sum(increments, dim=0))
        return torch.sum(increments)

    def result(self) -> torch.Tensor:
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        n = self.num_thresholds
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        recall = divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = divide_no_nan(fp, fp + tn), recall
        elif self.curve == "PR":
            x, y = recall, divide_no_nan(tp, tp + fp)
        else:
            scale = divide_no_nan(tp + fn, tn + fp)
            recall_gain = 1.0 - scale * divide_no_nan(fn, tp)
            precision_gain = 1.0 - scale * divide_no_nan(fp, tp)
            no_tp = tp == 0.0
            recall_gain = torch.where(no_tp, torch.zeros_like(recall_gain), recall_gain)
            precision_gain = torch.where(no_tp, torch.ones_like(precision_gain), precision_gain)
            x, y = torch.clamp_min(recall_gain, 0.0), precision_gain
        if self.summation_method == "interpolation":
            heights = (y[: n - 1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = torch.minimum(y[: n - 1], y[1:])
        else:
            heights = torch.maximum(y[: n - 1], y[1:])
        riemann = (x[: n - 1] - x[1:]) * heights
        if self.multi_label:
            return self._average_over_labels(torch.sum(riemann, dim=0))
        return torch.sum(riemann)

    def reset_state(self) -> None:
        if self._built:
            super().reset_state()

    def get_config(self) -> Dict[str, Any]:
        label_weights = self._label_weights_init
        if isinstance(label_weights, (np.ndarray, torch.Tensor)):
            label_weights = np.asarray(label_weights).tolist()
        config = {
            **super().get_config(),
            "num_thresholds": self.num_thresholds,
            "curve": self.curve,
            "summation_method": self.summation_method,
            "multi_label": self.multi_label,
            "num_labels": self.num_labels,
            "label_weights": label_weights,
            "from_logits": self._from_logits,
        }
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config
