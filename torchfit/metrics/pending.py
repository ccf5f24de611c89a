"""Metric updates that are held back and applied in one go.

Every step adds a few values to each metric's states (a batch's loss, its
number of matches, its size), and each addition or per-sample computation is
a kernel launch: at small batch sizes those launches cost as much as the
model. Instead:

* ``PendingSum`` keeps additions to one state: numbers known on the host are
  summed in Python, tensors are kept (one small tensor per step) and reduced
  with a single kernel;
* ``DeferredRows`` keeps the inputs of a metric computed sample by sample
  (accuracy, MAE...), evaluated later on all queued batches at once (CPU
  tensors only: on CUDA an output may sit in a CUDA-graph buffer that the
  next step overwrites).

Both are applied when a state is next read (a result, ``variables``, a
checkpoint) or when enough has gathered. Results equal the step-by-step ones
up to float rounding order (sequential float32 additions become one
tree-shaped reduction); counts and accuracies are exact.
"""

from __future__ import annotations

from typing import List, Tuple

import torch

# Tensors held per state before they are reduced: bounds the memory kept
# (one small tensor per step) while making the launch cost negligible.
MAX_TENSORS = 128


class PendingSum:
    """What is still to be added to one state tensor."""

    __slots__ = ("host", "tensors", "weights")

    def __init__(self) -> None:
        self.host: float = 0
        self.tensors: List[torch.Tensor] = []
        self.weights: List[float] = []

    def add_tensor(self, value: torch.Tensor, weight: float) -> bool:
        """Queue ``weight * value.sum()``; True when the queue should be applied now."""
        self.tensors.append(value)
        self.weights.append(weight)
        return len(self.tensors) >= MAX_TENSORS

    def apply_to(self, state: torch.Tensor) -> None:
        """Add everything queued to ``state`` in place (a few kernels at most)."""
        if self.tensors:
            state.add_(self._tensor_sum(state.dtype))
            self.tensors.clear()
            self.weights.clear()
        if self.host:
            state.add_(self.host)
            self.host = 0

    def _tensor_sum(self, dtype: torch.dtype) -> torch.Tensor:
        tensors, weights = self.tensors, self.weights
        if all(w == 1 for w in weights):
            if len(tensors) == 1:
                return tensors[0].sum(dtype=dtype)
            return torch.cat([t.reshape(-1) for t in tensors]).sum(dtype=dtype)
        if all(t.dim() == 0 for t in tensors):  # e.g. batch losses weighted by batch size
            stacked = torch.stack(tensors).to(dtype)
            factors = torch.tensor(weights, dtype=dtype).to(stacked.device, non_blocking=True)
            return torch.dot(stacked, factors)
        return sum(t.sum(dtype=dtype) * w for t, w in zip(tensors, weights))


# Bytes of queued inputs per metric before they are evaluated: big outputs
# (images, sequences) are evaluated at once, small ones every MAX_TENSORS steps.
MAX_ROW_BYTES = 4 << 20


class DeferredRows:
    """Batches ``(y_true, y_pred)`` of a metric whose value for each sample
    depends on that sample alone: queued, then evaluated as one concatenated
    batch, which gives the same per-sample values in one set of kernels."""

    __slots__ = ("trues", "preds", "nbytes", "_signature")

    def __init__(self) -> None:
        self.trues: List[torch.Tensor] = []
        self.preds: List[torch.Tensor] = []
        self.nbytes = 0
        self._signature: Tuple = ()

    def __len__(self) -> int:
        return len(self.preds)

    def accepts(self, signature: Tuple) -> bool:
        """Whether a batch of ``signature`` (dtypes and shapes past the first
        dimension of ``y_true`` and ``y_pred``) concatenates with those queued."""
        return not self.preds or signature == self._signature

    def add(self, y_true: torch.Tensor, y_pred: torch.Tensor, signature: Tuple) -> bool:
        """Queue one batch; True when the queue should be evaluated now."""
        self._signature = signature
        self.trues.append(y_true)
        self.preds.append(y_pred)
        self.nbytes += y_pred.nbytes
        return len(self.preds) >= MAX_TENSORS or self.nbytes >= MAX_ROW_BYTES

    def take(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The queued batches as one, and an empty queue."""
        trues, preds = self.trues, self.preds
        self.clear()
        if len(preds) == 1:
            return trues[0], preds[0]
        return torch.cat(trues), torch.cat(preds)

    def clear(self) -> None:
        self.trues, self.preds, self.nbytes = [], [], 0
