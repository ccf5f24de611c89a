"""Intersection-over-union metrics (Keras's numbers).

All of them accumulate one ``(num_classes, num_classes)`` confusion matrix
(rows: true class, columns: predicted class), sum-reducible across
processes, with a single ``index_add_`` per update. Class ids outside
``[0, num_classes)`` and pixels of ``ignore_class`` are skipped, on the
device, without a host sync.

As in Keras, the states default to an integer dtype (int32): fractional
sample weights are truncated (a warning says so once per metric); pass
``dtype="float32"`` to weight with fractions.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

from .base import EPSILON, Metric, dtype_name, standardize_dtype, to_tensor

__all__ = ["IoU", "MeanIoU", "BinaryIoU", "OneHotIoU", "OneHotMeanIoU"]


def _check_int(owner: str, name: str, value: Any, low: int, allow_none: bool = False) -> Optional[int]:
    if value is None and allow_none:
        return None
    expected = f"an int >= {low}" + (" or None" if allow_none else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{owner}: argument `{name}` must be {expected}; received "
            f"{name}={value!r} of type {type(value).__name__}."
        )
    if value < low:
        raise ValueError(f"{owner}: argument `{name}` must be {expected}; received {name}={value!r}.")
    return int(value)


def _check_flag(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(
            f"{owner}: argument `{name}` must be a bool; received {name}={value!r} "
            f"of type {type(value).__name__}."
        )
    return value


class _IoUBase(Metric):
    """The shared confusion-matrix state and update."""

    #: The config's keys, in order (``dtype`` by name).
    _config_keys: Tuple[str, ...] = ("name", "dtype")

    def __init__(
        self,
        num_classes: int,
        name: Optional[str] = None,
        dtype: Any = None,
        ignore_class: Optional[int] = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ) -> None:
        owner = type(self).__name__
        num_classes = _check_int(owner, "num_classes", num_classes, 1)
        if ignore_class is not None:
            if isinstance(ignore_class, bool) or not isinstance(ignore_class, numbers.Integral):
                raise TypeError(
                    f"{owner}: argument `ignore_class` must be an int or None; "
                    f"received ignore_class={ignore_class!r} of type "
                    f"{type(ignore_class).__name__}."
                )
            ignore_class = int(ignore_class)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(
                f"{owner}: argument `axis` must be an int; received axis={axis!r} "
                f"of type {type(axis).__name__}."
            )
        if dtype is None or (isinstance(dtype, str) and dtype.lower() == "int"):
            dtype = torch.int32
        super().__init__(name=name, dtype=standardize_dtype(dtype))
        self.num_classes = num_classes
        self.ignore_class = ignore_class
        self.sparse_y_true = _check_flag(owner, "sparse_y_true", sparse_y_true)
        self.sparse_y_pred = _check_flag(owner, "sparse_y_pred", sparse_y_pred)
        self.axis = int(axis)
        self._warned_float_weights = False
        self.add_state("total_confusion_matrix", (num_classes, num_classes), 0)

    def get_config(self) -> Dict[str, Any]:
        config = {}
        for key in self._config_keys:
            value = getattr(self, key)
            if key == "dtype":
                value = dtype_name(value)
            elif key == "target_class_ids":
                value = list(value)
            config[key] = value
        return config

    @property
    def total_cm(self) -> torch.Tensor:
        return self.total_confusion_matrix

    def _class_ids(self, y: Any, sparse: bool, device: torch.device) -> torch.Tensor:
        y = to_tensor(y, device=device)
        if not sparse:
            y = torch.argmax(y, dim=self.axis)
        return y.to(self.torch_dtype).reshape(-1)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred_t = to_tensor(y_pred)
        device = self._follow(y_pred_t)
        y_pred_t = self._class_ids(y_pred_t, self.sparse_y_pred, device)
        y_true_t = self._class_ids(y_true, self.sparse_y_true, device)
        if y_true_t.shape != y_pred_t.shape:
            raise ValueError(
                f"{type(self).__name__}: `y_true` and `y_pred` must hold the same "
                f"number of class ids; received {y_true_t.numel()} and "
                f"{y_pred_t.numel()}."
            )
        if sample_weight is None:
            weights = torch.ones_like(y_true_t)
        else:
            sample_weight = to_tensor(sample_weight, device=device)
            if (
                sample_weight.is_floating_point()
                and not self.torch_dtype.is_floating_point
                and not self._warned_float_weights
            ):
                warnings.warn(
                    f"{type(self).__name__} '{self.name}': `sample_weight` is "
                    f"floating point but the metric's dtype is {dtype_name(self.torch_dtype)}, "
                    "so the weights are truncated to integers by type casting; pass "
                    "dtype='float32' to the metric for fractional weights.",
                    stacklevel=3,
                )
                self._warned_float_weights = True
            weights = sample_weight.to(self.torch_dtype)
            if weights.dim() > 1:
                weights = weights.reshape(-1)
            if weights.numel() not in (1, y_true_t.numel()):
                raise ValueError(
                    f"{type(self).__name__}: `sample_weight` must be a scalar or "
                    f"have one weight per class id ({y_true_t.numel()}); received "
                    f"sample_weight of shape {tuple(sample_weight.shape)}."
                )
            weights = torch.broadcast_to(weights.reshape(-1)[:1] if weights.numel() == 1
                                         else weights, y_true_t.shape)
        n = self.num_classes
        valid = (y_true_t >= 0) & (y_true_t < n) & (y_pred_t >= 0) & (y_pred_t < n)
        if self.ignore_class is not None:
            valid = valid & (y_true_t != self.ignore_class)
        index = y_true_t.to(torch.int64) * n + y_pred_t.to(torch.int64)
        index = torch.where(valid, index, torch.zeros_like(index))
        weights = torch.where(valid, weights, torch.zeros_like(weights))
        self.total_confusion_matrix.view(-1).index_add_(0, index, weights)


class IoU(_IoUBase):
    r"""Intersection over union, averaged over ``target_class_ids``.

    Per class, ``IoU = TP / (TP + FP + FN)`` from the confusion matrix of
    everything seen; the result is the mean over the target classes that
    occurred at all (in labels or predictions).

    Args:
        num_classes (int): number of classes (>= 1).
        target_class_ids (list of int): the classes to average over.
        name (str, optional): default ``"io_u"`` (made unique, as Keras).
        dtype: dtype of the confusion matrix; default int32.
        ignore_class (int, optional): a label id whose pixels are skipped.
        sparse_y_true (bool): ``y_true`` holds class ids (default) rather
            than one-hot scores (then ``argmax`` along ``axis`` is taken).
        sparse_y_pred (bool): same for ``y_pred``.
        axis (int): the class axis for non-sparse inputs. Default -1.
    """

    _config_keys = ("name", "dtype", "num_classes", "target_class_ids", "ignore_class",
                    "sparse_y_true", "sparse_y_pred", "axis")

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Sequence[int],
        name: Optional[str] = None,
        dtype: Any = None,
        ignore_class: Optional[int] = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ) -> None:
        super().__init__(
            num_classes=num_classes,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=sparse_y_true,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )
        owner = type(self).__name__
        if isinstance(target_class_ids, (str, bytes)) or not hasattr(target_class_ids, "__iter__"):
            raise TypeError(
                f"{owner}: argument `target_class_ids` must be a list of ints; "
                f"received target_class_ids={target_class_ids!r} of type "
                f"{type(target_class_ids).__name__}."
            )
        ids = list(target_class_ids)
        if not ids:
            raise ValueError(
                f"{owner}: argument `target_class_ids` must hold at least one class "
                f"id; received target_class_ids={target_class_ids!r}."
            )
        for i in ids:
            if isinstance(i, bool) or not isinstance(i, numbers.Integral):
                raise TypeError(
                    f"{owner}: argument `target_class_ids` must be a list of ints; "
                    f"received the entry {i!r} of type {type(i).__name__}."
                )
            if not 0 <= i < self.num_classes:
                raise ValueError(
                    f"{owner}: every entry of `target_class_ids` must be in "
                    f"[0, {self.num_classes}) (num_classes={self.num_classes}); "
                    f"received target_class_ids={ids!r}."
                )
        self.target_class_ids = [int(i) for i in ids]
        self._target_index: Dict[torch.device, torch.Tensor] = {}

    def _target_index_on(self, device: torch.device) -> torch.Tensor:
        index = self._target_index.get(device)
        if index is None:
            index = torch.tensor(self.target_class_ids, dtype=torch.int64).to(device)
            self._target_index[device] = index
        return index

    def result(self) -> torch.Tensor:
        cm = self.total_confusion_matrix
        predicted = cm.sum(dim=0).to(self.torch_dtype)
        actual = cm.sum(dim=1).to(self.torch_dtype)
        true_positives = torch.diagonal(cm).to(self.torch_dtype)
        denominator = predicted + actual - true_positives
        index = self._target_index_on(cm.device)
        true_positives = true_positives.index_select(0, index).to(torch.float32)
        denominator = denominator.index_select(0, index).to(torch.float32)
        valid = denominator > 1e-9
        iou = true_positives / (denominator + EPSILON)
        iou = torch.where(valid, iou, torch.zeros_like(iou))
        return iou.sum() / (valid.to(torch.float32).sum() + EPSILON)


class BinaryIoU(IoU):
    r"""IoU of a binary problem: ``y_pred >= threshold`` is class 1.

    Args:
        target_class_ids (list of int): ``[0]``, ``[1]`` or ``[0, 1]``
            (default: the mean of both).
        threshold (float): default 0.5.
        name (str, optional): default ``"binary_io_u"``.
        dtype: default int32.
    """

    _config_keys = ("target_class_ids", "threshold", "name", "dtype")

    def __init__(
        self,
        target_class_ids: Sequence[int] = (0, 1),
        threshold: float = 0.5,
        name: Optional[str] = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name, dtype=dtype)
        if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
            raise TypeError(
                f"BinaryIoU: argument `threshold` must be a float; received "
                f"threshold={threshold!r} of type {type(threshold).__name__}."
            )
        self.threshold = float(threshold)

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred = to_tensor(y_pred).to(torch.float32)
        y_pred = (y_pred >= self.threshold).to(self.torch_dtype)
        y_true = to_tensor(y_true, device=y_pred.device).to(self.torch_dtype)
        super().update_state(y_true, y_pred, sample_weight)


class MeanIoU(IoU):
    r"""IoU averaged over all ``num_classes`` classes.

    Args:
        num_classes (int): number of classes.
        name (str, optional): default ``"mean_io_u"``.
        dtype, ignore_class, sparse_y_true, sparse_y_pred, axis: see
            :class:`IoU`.
    """

    _config_keys = ("num_classes", "name", "dtype", "ignore_class",
                    "sparse_y_true", "sparse_y_pred", "axis")

    def __init__(
        self,
        num_classes: int,
        name: Optional[str] = None,
        dtype: Any = None,
        ignore_class: Optional[int] = None,
        sparse_y_true: bool = True,
        sparse_y_pred: bool = True,
        axis: int = -1,
    ) -> None:
        num_classes = _check_int(type(self).__name__, "num_classes", num_classes, 1)
        super().__init__(
            num_classes=num_classes,
            target_class_ids=list(range(num_classes)),
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=sparse_y_true,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )


class OneHotIoU(IoU):
    r""":class:`IoU` for one-hot ``y_true`` (and, by default, score ``y_pred``).

    Args:
        num_classes, target_class_ids, name, dtype, ignore_class, axis: see
            :class:`IoU`.
        sparse_y_pred (bool): default False (``argmax`` of the scores).
    """

    _config_keys = ("num_classes", "target_class_ids", "name", "dtype",
                    "ignore_class", "sparse_y_pred", "axis")

    def __init__(
        self,
        num_classes: int,
        target_class_ids: Sequence[int],
        name: Optional[str] = None,
        dtype: Any = None,
        ignore_class: Optional[int] = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ) -> None:
        super().__init__(
            num_classes=num_classes,
            target_class_ids=target_class_ids,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=False,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )


class OneHotMeanIoU(MeanIoU):
    r""":class:`MeanIoU` for one-hot ``y_true``.

    Args:
        num_classes, name, dtype, ignore_class, axis: see :class:`MeanIoU`.
        sparse_y_pred (bool): default False.
    """

    _config_keys = ("num_classes", "name", "dtype", "ignore_class", "sparse_y_pred", "axis")

    def __init__(
        self,
        num_classes: int,
        name: Optional[str] = None,
        dtype: Any = None,
        ignore_class: Optional[int] = None,
        sparse_y_pred: bool = False,
        axis: int = -1,
    ) -> None:
        super().__init__(
            num_classes=num_classes,
            name=name,
            dtype=dtype,
            ignore_class=ignore_class,
            sparse_y_true=False,
            sparse_y_pred=sparse_y_pred,
            axis=axis,
        )
