"""F-scores: ``FBetaScore`` and ``F1Score`` (Keras's numbers).

States are per-class (or, with ``average="micro"``, global) weighted counts
of true positives, false positives, false negatives and true instances;
they are created on the first ``update_state`` once the number of classes is
known, and all of them are sum-reducible across processes.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import torch

from .base import EPSILON, Metric, dtype_name, to_tensor

__all__ = ["FBetaScore", "F1Score"]

_AVERAGES = (None, "micro", "macro", "weighted")
_STATES = ("true_positives", "false_positives", "false_negatives", "intermediate_weights")


def _check_arguments(owner: str, average: Any, beta: Any, threshold: Any) -> None:
    """Keras's checks and wording: ``ValueError`` for every bad value, a
    ``beta``/``threshold`` that is not a Python float included."""
    if average not in _AVERAGES:
        raise ValueError(
            f"{owner}: Invalid `average` argument value. Expected one of: "
            f"{{None, 'micro', 'macro', 'weighted'}}. Received: average={average}"
        )
    if not isinstance(beta, float):
        raise ValueError(
            f"{owner}: Invalid `beta` argument value. It should be a Python float. "
            f"Received: beta={beta} of type '{type(beta)}'"
        )
    if not 0.0 < beta < float("inf"):
        raise ValueError(
            f"{owner}: Invalid `beta` argument value. It should be > 0. Received: beta={beta}"
        )
    if threshold is None:
        return
    if not isinstance(threshold, float):
        raise ValueError(
            f"{owner}: Invalid `threshold` argument value. It should be a Python float. "
            f"Received: threshold={threshold} of type '{type(threshold)}'"
        )
    if not 0.0 < threshold <= 1.0:
        raise ValueError(
            f"{owner}: Invalid `threshold` argument value. It should verify "
            f"0 < threshold <= 1. Received: threshold={threshold}"
        )


class FBetaScore(Metric):
    r"""F-beta score, the weighted harmonic mean of precision and recall.

    ``(1 + beta**2) * precision * recall / (beta**2 * precision + recall)``,
    for multi-class and multi-label problems. Inputs are 2-D
    ``(batch, num_classes)``: one-hot / multi-hot ``y_true`` and scores
    ``y_pred``.

    Args:
        average: ``None`` (one score per class, the default), ``"micro"``
            (global counts), ``"macro"`` (unweighted mean of the class scores)
            or ``"weighted"`` (mean weighted by each class's support).
        beta (float): a Python float > 0, weight of recall. Default 1.0.
        threshold (float, optional): a Python float in ``(0, 1]``; ``y_pred > threshold``
            is a positive. ``None``: the largest score of each row (if
            non-zero) is the positive.
        name (str): default ``"fbeta_score"``.
        dtype: dtype of the states and result; default float32.
    """

    def __init__(
        self,
        average: Optional[str] = None,
        beta: float = 1.0,
        threshold: Optional[float] = None,
        name: str = "fbeta_score",
        dtype: Any = None,
    ) -> None:
        _check_arguments(type(self).__name__, average, beta, threshold)
        super().__init__(name=name, dtype=dtype)
        self.average = average
        self.beta = float(beta)
        self.threshold = threshold
        self.axis = None if average == "micro" else 0
        self._built = False

    def _build(self, true_shape: torch.Size, pred_shape: torch.Size) -> None:
        # Keras's wording (Keras code matches on it).
        shapes = (f"Received input shapes: y_pred.shape={tuple(pred_shape)} and "
                  f"y_true.shape={tuple(true_shape)}.")
        if len(pred_shape) != 2 or len(true_shape) != 2:
            raise ValueError(
                f"{type(self).__name__} expects 2D inputs with shape "
                f"(batch_size, output_dim). {shapes}"
            )
        if pred_shape[-1] is None or true_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__} expects 2D inputs with shape (batch_size, "
                f"output_dim), with output_dim fully defined (not None). {shapes}"
            )
        shape = () if self.average == "micro" else (pred_shape[-1],)
        for state in _STATES:
            self.add_state(state, shape, 0.0)
        self._built = True

    def _build_like(self, state: Sequence[Any]) -> None:
        first = to_tensor(state[0])
        outputs = first.shape[-1] if first.ndim else 1  # micro averaging: scalar states
        self._build((1, outputs), (1, outputs))

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = to_tensor(y_pred)
        device = self._follow(y_pred)
        y_pred = y_pred.to(self.torch_dtype)
        y_true = to_tensor(y_true, dtype=self.torch_dtype, device=device)
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        if self.threshold is None:
            top = torch.amax(y_pred, dim=-1, keepdim=True)
            y_pred = (y_pred >= top) & (torch.abs(y_pred) > 1e-9)
        else:
            y_pred = y_pred > self.threshold
        y_pred = y_pred.to(self.torch_dtype)
        if sample_weight is not None:
            sample_weight = to_tensor(sample_weight, dtype=self.torch_dtype, device=device)
            if sample_weight.dim() == 1:
                sample_weight = sample_weight.unsqueeze(1)

        def weighted_sum(values: torch.Tensor) -> torch.Tensor:
            if sample_weight is not None:
                values = values * sample_weight
            return values.sum() if self.axis is None else values.sum(dim=self.axis)

        self.true_positives.add_(weighted_sum(y_pred * y_true))
        self.false_positives.add_(weighted_sum(y_pred * (1 - y_true)))
        self.false_negatives.add_(weighted_sum((1 - y_pred) * y_true))
        self.intermediate_weights.add_(weighted_sum(y_true))

    def result(self) -> torch.Tensor:
        if not self._built:
            # Nothing seen yet (Keras cannot even be asked before a build).
            return torch.zeros((), dtype=self.torch_dtype, device=self.device)
        tp = self.true_positives
        precision = tp / (tp + self.false_positives + EPSILON)
        recall = tp / (tp + self.false_negatives + EPSILON)
        beta2 = self.beta**2
        score = (precision * recall) / (beta2 * precision + recall + EPSILON)
        score = score * (1 + beta2)
        if self.average == "weighted":
            weights = self.intermediate_weights / (self.intermediate_weights.sum() + EPSILON)
            return torch.sum(score * weights)
        if self.average is not None:
            return torch.mean(score)
        return score

    def get_config(self) -> Dict[str, Any]:
        return {
            "name": self.name,
            "dtype": dtype_name(self.torch_dtype),
            "average": self.average,
            "beta": self.beta,
            "threshold": self.threshold,
        }


class F1Score(FBetaScore):
    r"""F-1 score: :class:`FBetaScore` with ``beta=1``.

    Args:
        average: ``None``, ``"micro"``, ``"macro"`` or ``"weighted"``.
        threshold (float, optional): see :class:`FBetaScore`.
        name (str): default ``"f1_score"``.
        dtype: default float32.
    """

    def __init__(
        self,
        average: Optional[str] = None,
        threshold: Optional[float] = None,
        name: str = "f1_score",
        dtype: Any = None,
    ) -> None:
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        del config["beta"]
        return config
