"""The connectionist temporal classification (CTC) loss."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F

from ._loss import _WrappedLoss
from ._utils import TensorLike, _to_float_tensor, _to_tensor


def ctc(y_true: TensorLike, y_pred: TensorLike) -> torch.Tensor:
    """Connectionist temporal classification loss, one value per sample.

    ``y_true`` is ``(batch, max_label_length)``: integer labels padded with
    0, which is also the blank class; a sample's label length is its number
    of non-zero entries. ``y_pred`` is ``(batch, time, num_classes)``
    *logits* (a log-softmax is applied here), every sample using all
    ``time`` steps. Computed with :func:`torch.nn.functional.ctc_loss`, as
    Keras's torch backend does. (On CUDA, torch copies the lengths to the
    host, so this loss is the one that synchronises.)
    """
    y_pred = _to_float_tensor(y_pred)
    y_true = _to_tensor(y_true, device=y_pred.device)
    if y_true.dim() != 2:
        raise ValueError(
            "Argument `y_true` of the CTC loss must be a 2-D tensor of shape "
            "(batch_size, max_label_length) holding integer labels; received "
            f"y_true.shape={tuple(y_true.shape)}."
        )
    if y_pred.dim() != 3:
        raise ValueError(
            "Argument `y_pred` of the CTC loss must be a 3-D tensor of logits "
            "of shape (batch_size, max_time, num_classes); received "
            f"y_pred.shape={tuple(y_pred.shape)}."
        )
    if y_true.shape[0] != y_pred.shape[0]:
        raise ValueError(
            "Arguments `y_true` and `y_pred` of the CTC loss must have the same "
            f"batch size; received y_true.shape={tuple(y_true.shape)} and "
            f"y_pred.shape={tuple(y_pred.shape)}."
        )
    if y_pred.dtype in (torch.float16, torch.bfloat16):
        y_pred = y_pred.to(torch.float32)
    batch, time = y_pred.shape[0], y_pred.shape[1]
    targets = y_true.to(torch.long)
    target_lengths = torch.sum(targets != 0, dim=-1)
    input_lengths = torch.full((batch,), time, dtype=torch.long, device=y_pred.device)
    log_probs = F.log_softmax(y_pred.transpose(0, 1), dim=-1)
    return F.ctc_loss(
        log_probs, targets, input_lengths, target_lengths, blank=0, reduction="none"
    )


class CTC(_WrappedLoss):
    """Connectionist temporal classification loss (see :func:`ctc`).

    ``y_true``: ``(batch, max_label_length)`` labels padded with the blank
    class 0; ``y_pred``: ``(batch, time, num_classes)`` logits.
    """

    def __init__(
        self,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "ctc",
        dtype: Any = None,
    ) -> None:
        super().__init__(ctc, name=name, reduction=reduction, dtype=dtype)
