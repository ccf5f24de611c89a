"""Accuracy metrics and their per-sample functions."""

from __future__ import annotations

from typing import Any, Dict

import torch

from .base import squeeze_or_expand_to_same_rank, to_tensor
from .reduction_metrics import _FunctionMetric

__all__ = [
    "accuracy",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "SparseCategoricalAccuracy",
    "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
]


def _matches(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a == b).to(torch.float32)


def _exact_labels(y_true: torch.Tensor) -> bool:
    """Integer labels (not bool) small enough to compare exactly as floats."""
    return y_true.dtype in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """1.0 where ``y_true`` equals ``y_pred`` exactly, else 0.0."""
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, dtype=y_pred.dtype, device=y_pred.device)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return _matches(y_true, y_pred)


def binary_accuracy(y_true: Any, y_pred: Any, threshold: float = 0.5) -> torch.Tensor:
    """1.0 where ``y_true`` equals ``y_pred > threshold``, else 0.0."""
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, device=y_pred.device)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    y_pred = (y_pred > threshold).to(y_true.dtype)
    return _matches(y_true, y_pred)


def categorical_accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """1.0 where the argmax of one-hot ``y_true`` equals that of ``y_pred``."""
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, device=y_pred.device)
    if y_true.dtype == torch.bool:  # argmax has no bool kernel; one-hot masks are fine
        y_true = y_true.to(torch.uint8)
    y_true = torch.argmax(y_true, dim=-1).to(y_pred.dtype)
    original_shape = y_true.shape
    reshape = False
    if y_true.dim() == y_pred.dim():
        y_true = y_true.squeeze(-1)
        reshape = True
    y_pred = torch.argmax(y_pred, dim=-1).to(y_true.dtype)
    matches = _matches(y_true, y_pred)
    if reshape:
        matches = matches.reshape(original_shape)
    return matches


def sparse_categorical_accuracy(y_true: Any, y_pred: Any) -> torch.Tensor:
    """1.0 where integer label ``y_true`` equals the argmax of ``y_pred``."""
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, device=y_pred.device)
    if not (_exact_labels(y_true) and y_pred.dtype in (torch.float32, torch.float64)):
        # Keras compares in y_pred's dtype; integer labels against float32
        # scores compare the same as integers (labels below 2**24), without casts.
        y_true = y_true.to(y_pred.dtype)
    original_shape = y_true.shape
    reshape = False
    if y_true.dim() == y_pred.dim() and y_true.shape[-1] == 1:
        y_true = y_true.squeeze(-1)
        reshape = True
    matches = _matches(y_true, torch.argmax(y_pred, dim=-1))  # type promotion: no cast kernel
    if reshape:
        matches = matches.reshape(original_shape)
    if matches.dim() > 1 and matches.shape[-1] == 1:
        matches = matches.squeeze(-1)
    return matches


def _in_top_k(targets: torch.Tensor, predictions: torch.Tensor, k: int) -> torch.Tensor:
    # A target counts as "in the top k" when its score reaches the k-th
    # largest score (ties included), as Keras's torch backend does.
    targets = targets.to(torch.int64)[:, None]
    kth = torch.topk(predictions, k).values
    target_scores = torch.take_along_dim(predictions, targets, dim=-1)
    return torch.any(target_scores >= kth, dim=-1)


def top_k_categorical_accuracy(y_true: Any, y_pred: Any, k: int = 5) -> torch.Tensor:
    """1.0 where the one-hot target's class is among the top ``k`` predictions."""
    y_pred = to_tensor(y_pred)
    y_true = to_tensor(y_true, dtype=y_pred.dtype, device=y_pred.device)
    y_true = torch.argmax(y_true, dim=-1)
    original_shape = y_true.shape
    reshape = False
    if y_pred.dim() > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    if y_true.dim() > 1:
        reshape = True
        y_true = y_true.reshape(-1)
    matches = _in_top_k(y_true.to(torch.int32), y_pred, k).to(torch.float32)
    if reshape:
        matches = matches.reshape(original_shape)
    return matches


def sparse_top_k_categorical_accuracy(
    y_true: Any, y_pred: Any, k: int = 5, from_sorted_ids: bool = False
) -> torch.Tensor:
    """1.0 where the integer target is among the top ``k`` predictions.

    With ``from_sorted_ids=True``, ``y_pred`` holds class ids sorted by
    decreasing score (e.g. the output of a top-k layer) instead of scores.
    """
    y_pred = to_tensor(y_pred)
    true_dtype = y_pred.dtype if from_sorted_ids else torch.int32
    y_true = to_tensor(y_true, dtype=true_dtype, device=y_pred.device)
    original_shape = y_true.shape
    reshape = False
    if y_pred.dim() > 2:
        y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    if y_true.dim() > 1:
        reshape = True
        y_true = y_true.reshape(-1)
    if from_sorted_ids:
        matches = torch.any(y_true[:, None] == y_pred[:, :k], dim=1)
    else:
        matches = _in_top_k(y_true, y_pred, k)
    matches = matches.to(torch.float32)
    if reshape:
        matches = matches.reshape(original_shape)
    return matches


class Accuracy(_FunctionMetric):
    """How often predictions equal labels exactly."""

    def __init__(self, name: str = "accuracy", dtype: Any = None) -> None:
        super().__init__(fn=accuracy, name=name, dtype=dtype)


class BinaryAccuracy(_FunctionMetric):
    """How often ``y_pred > threshold`` matches binary labels."""

    _config_keys = ("threshold",)

    def __init__(
        self, name: str = "binary_accuracy", dtype: Any = None, threshold: float = 0.5
    ) -> None:
        super().__init__(fn=binary_accuracy, name=name, dtype=dtype, threshold=threshold)


class CategoricalAccuracy(_FunctionMetric):
    """How often the argmax of predictions matches that of one-hot labels."""

    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(fn=categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(_FunctionMetric):
    """How often the argmax of predictions matches integer labels."""

    sparse_labels = True

    def __init__(
        self, name: str = "sparse_categorical_accuracy", dtype: Any = None
    ) -> None:
        super().__init__(fn=sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(_FunctionMetric):
    """How often the one-hot target is among the top ``k`` predictions."""

    _config_keys = ("k",)

    def __init__(
        self, k: int = 5, name: str = "top_k_categorical_accuracy", dtype: Any = None
    ) -> None:
        super().__init__(fn=top_k_categorical_accuracy, name=name, dtype=dtype, k=k)


class SparseTopKCategoricalAccuracy(_FunctionMetric):
    """How often the integer target is among the top ``k`` predictions."""

    sparse_labels = True

    _config_keys = ("k",)

    def __init__(
        self,
        k: int = 5,
        name: str = "sparse_top_k_categorical_accuracy",
        dtype: Any = None,
        from_sorted_ids: bool = False,
    ) -> None:
        super().__init__(
            fn=sparse_top_k_categorical_accuracy,
            name=name,
            dtype=dtype,
            k=k,
            from_sorted_ids=from_sorted_ids,
        )
        self.from_sorted_ids = from_sorted_ids

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        if self.from_sorted_ids:
            config["from_sorted_ids"] = True
        return config
