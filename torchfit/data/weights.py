"""``class_weight`` → per-sample weights, and sample-weight shape checks."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from .. import tree
from ..batch import Batch
from .adapter import DataAdapter, WrappedAdapter


def validate_class_weight(class_weight: Any) -> None:
    """Check a ``class_weight`` mapping before anything is trained."""
    if class_weight is None:
        return
    if not isinstance(class_weight, Mapping):
        raise TypeError(
            "Argument `class_weight` must be a dict mapping class indices "
            f"(int) to weights (float). Received: {type(class_weight).__name__}."
        )
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
            raise ValueError(
                "Argument `class_weight` must have non-negative integer class "
                f"indices as keys. Received key: {key!r}."
            )
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(
                "Argument `class_weight` must map to numeric weights. "
                f"Received: class_weight[{key!r}]={value!r}."
            )


def class_indices(y: torch.Tensor) -> torch.Tensor:
    """Integer class of each sample: argmax of one-hot rows, else rounded labels."""
    if y.dtype == torch.bool or y.is_complex():
        y = y.real.long() if y.is_complex() else y.long()  # argmax/round take neither
    if y.ndim > 1 and y.shape[-1] == 0:
        raise ValueError(
            "Argument `class_weight` needs targets of shape (N,), (N, 1) or "
            f"one-hot (N, C). Received targets of shape {tuple(y.shape)}."
        )
    if y.ndim > 1:
        y = y.argmax(dim=-1) if y.shape[-1] != 1 else y.squeeze(-1)
    if y.ndim > 1:
        raise ValueError(
            "Argument `class_weight` needs targets of shape (N,), (N, 1) or "
            f"one-hot (N, C). Received targets of shape {tuple(y.shape)}."
        )
    if y.is_floating_point():
        y = torch.round(y)
    return y.long()


def class_weight_table(class_weight: Mapping[int, float]) -> torch.Tensor:
    """Dense lookup table: weight of class ``c`` at index ``c`` (1.0 if absent)."""
    size = int(max(class_weight, default=-1)) + 1
    table = torch.ones(size, dtype=torch.float32)
    for cls, weight in class_weight.items():
        table[int(cls)] = float(weight)
    return table


def class_weight_to_sample_weight(y: Any, class_weight: Mapping[int, float]) -> torch.Tensor:
    """Per-sample weights for targets ``y`` (one output only)."""
    if tree.is_nested(y):
        raise ValueError(
            "Argument `class_weight` is only supported for models with a "
            f"single output. Received targets of structure {type(y).__name__}."
        )
    if y is None:
        raise ValueError(
            "Argument `class_weight` needs targets: expected batches (x, y), "
            "received batches without y."
        )
    y = torch.as_tensor(np.asarray(y)) if not isinstance(y, torch.Tensor) else y
    labels = class_indices(y)
    table = class_weight_table(class_weight).to(labels.device)
    # Classes beyond the table get weight 1.0, as in Keras.
    in_table = labels < table.numel()
    safe = torch.where(in_table, labels, torch.zeros_like(labels)).clamp_min(0)
    return torch.where(in_table & (labels >= 0), table[safe], torch.ones((), device=labels.device))


def check_class_weight_keys(class_weight: Mapping[int, float], num_classes: int) -> None:
    """Raise if a ``class_weight`` key cannot be a class of a ``num_classes`` output."""
    bad = sorted(k for k in class_weight if int(k) >= max(num_classes, 2))
    if bad:
        raise ValueError(
            "Argument `class_weight` has class indices outside the model's "
            f"{max(num_classes, 2)} classes (expected keys in "
            f"[0, {max(num_classes, 2) - 1}]). Received keys: {bad}."
        )


class ClassWeighted(WrappedAdapter):
    """Turns ``class_weight`` into the third batch element, batch by batch.

    This is how ``class_weight`` works for inputs that batch themselves
    (DataLoaders, generators, PyDatasets, tf.data): the weights come out the
    same as for the same samples given as arrays.
    """

    def __init__(self, inner: DataAdapter, class_weight: Mapping[int, float]) -> None:
        super().__init__(inner)
        self.class_weight = class_weight

    def transform(self, batch: Batch) -> Batch:
        x, y, sample_weight = batch
        if sample_weight is not None:
            raise ValueError(
                "Argument `class_weight` cannot be combined with batches that already "
                "carry sample weights. Expected (x, y) batches; received (x, y, "
                "sample_weight) batches."
            )
        return x, y, class_weight_to_sample_weight(y, self.class_weight)
