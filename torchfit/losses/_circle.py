"""The Circle loss for metric learning."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F

from ._loss import _WrappedLoss
from ._utils import (
    TensorLike,
    _check_bool,
    _check_number,
    _set_mask,
    _to_float_tensor,
    _to_tensor,
)


def circle(
    y_true: TensorLike,
    y_pred: TensorLike,
    ref_labels: Optional[TensorLike] = None,
    ref_embeddings: Optional[TensorLike] = None,
    remove_diagonal: bool = True,
    gamma: float = 80,
    margin: float = 0.4,
) -> torch.Tensor:
    """Circle loss (Sun et al. 2020) for metric learning, one value per sample.

    ``y_true`` holds integer labels ``(batch,)`` and ``y_pred`` L2-normalised
    embeddings ``(batch, dim)``; each sample is compared with
    ``ref_embeddings``/``ref_labels`` (default: the batch itself, without
    the sample's pair with itself when ``remove_diagonal``). Samples whose
    loss is 0 are masked out of the mean, as in Keras.
    """
    y_pred = _to_float_tensor(y_pred)
    labels = _to_tensor(y_true, device=y_pred.device).to(torch.int32)
    refs = y_pred if ref_embeddings is None else _to_tensor(
        ref_embeddings, dtype=y_pred.dtype, device=y_pred.device
    )
    ref_labels_t = labels if ref_labels is None else _to_tensor(
        ref_labels, device=y_pred.device
    ).to(torch.int32)
    if y_pred.dim() != 2 or refs.dim() != 2:
        raise ValueError(
            "Argument `y_pred` of the Circle loss must be a 2-D tensor of "
            "embeddings (batch_size, dim); received "
            f"y_pred.shape={tuple(y_pred.shape)}"
            + ("" if ref_embeddings is None else f", ref_embeddings.shape={tuple(refs.shape)}")
            + "."
        )
    distances = torch.clamp_min(1 - y_pred @ refs.transpose(0, 1), 0.0)
    query = labels.reshape(-1, 1) if labels.dim() == 1 else labels
    keys = ref_labels_t.reshape(-1, 1) if ref_labels_t.dim() == 1 else ref_labels_t
    positive = query == keys.transpose(0, 1)
    negative = ~positive
    if remove_diagonal:
        eye = torch.eye(query.numel(), keys.numel(), dtype=torch.bool, device=y_pred.device)
        positive = positive & ~eye
    pos_mask = positive.to(distances.dtype)
    neg_mask = negative.to(distances.dtype)
    pos_weights = torch.clamp_min((margin + distances) * pos_mask, 0.0)
    neg_weights = torch.clamp_min((1 + margin - distances) * neg_mask, 0.0)
    pos_terms = -1 * gamma * pos_weights * (margin - distances)
    neg_terms = gamma * neg_weights * ((1 - margin) - distances)
    neg_inf = torch.tensor(float("-inf"), dtype=distances.dtype, device=distances.device)
    p_loss = torch.logsumexp(torch.where(positive, pos_terms, neg_inf), dim=1)
    n_loss = torch.logsumexp(torch.where(negative, neg_terms, neg_inf), dim=1)
    loss = F.softplus(p_loss + n_loss)
    _set_mask(loss, loss > 0)
    return loss


class Circle(_WrappedLoss):
    """Circle loss for metric learning (see :func:`circle`).

    Args:
        gamma (float): scale of the similarities, default 80.0.
        margin (float): relaxation margin, default 0.4.
        remove_diagonal (bool): ignore each sample's pair with itself.
        reduction, name, dtype: see :class:`Loss`.
    """

    _config_keys = ("gamma", "margin", "remove_diagonal")

    def __init__(
        self,
        gamma: float = 80.0,
        margin: float = 0.4,
        remove_diagonal: bool = True,
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = "circle",
        dtype: Any = None,
    ) -> None:
        _check_number("gamma", gamma)
        _check_number("margin", margin)
        remove_diagonal = _check_bool("remove_diagonal", remove_diagonal)
        super().__init__(
            circle,
            name=name,
            reduction=reduction,
            dtype=dtype,
            gamma=gamma,
            margin=margin,
            remove_diagonal=remove_diagonal,
        )
