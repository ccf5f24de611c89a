"""Reduction metrics: ``Sum``, ``Mean`` and ``MeanMetricWrapper``."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import torch

from .. import name_gate
from ._registry import FUNCTIONS
from .base import (
    Metric,
    apply_mask,
    divide_no_nan,
    get_mask,
    squeeze_or_expand_to_same_rank,
    to_snake_case,
    to_tensor,
    _detached,
)
from .pending import DeferredRows

__all__ = ["Sum", "Mean", "MeanMetricWrapper", "reduce_to_samplewise_values"]


def _reduce(fn: Callable, x: torch.Tensor, dims: list) -> torch.Tensor:
    return fn(x, dim=dims) if dims else x


def reduce_to_samplewise_values(
    values: torch.Tensor,
    sample_weight: Optional[Any],
    reduce_fn: Callable,
    dtype: torch.dtype,
    mask: Optional[torch.Tensor] = None,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Weight ``values`` and reduce them to one value per sample (Keras rules).

    ``sample_weight`` may have any rank up to that of ``values``: trailing axes
    of ``values`` beyond the weight's rank are reduced with ``reduce_fn``
    first (so a ``(batch,)`` weight on ``(batch, time)`` values weights the
    per-sample mean), then the weight is broadcast and multiplied in, and the
    weight itself is reduced to one number per sample.
    """
    values = values.to(dtype)
    if sample_weight is not None:
        sample_weight = to_tensor(sample_weight, dtype=dtype, device=values.device)
        if mask is not None:
            sample_weight = apply_mask(sample_weight, mask, dtype)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        weight_ndim = sample_weight.dim()
        values_ndim = values.dim()
        if values_ndim > weight_ndim:
            values = _reduce(reduce_fn, values, list(range(weight_ndim, values_ndim)))
        sample_weight = torch.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if weight_ndim > 1:
            sample_weight = _reduce(reduce_fn, sample_weight, list(range(1, weight_ndim)))
    if values.dim() > 1:
        values = _reduce(reduce_fn, values, list(range(1, values.dim())))
    return values, sample_weight


class Sum(Metric):
    """Weighted sum of all the values seen (state: ``total``)."""

    def __init__(self, name: str = "sum", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.add_state("total", (), 0.0)

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        mask = get_mask(values)
        values = to_tensor(values)
        self._follow(values)
        values, _ = reduce_to_samplewise_values(
            values, sample_weight, torch.sum, self.torch_dtype, mask
        )
        self.total.add_(values.sum())

    def result(self) -> torch.Tensor:
        return self.total.clone()


class Mean(Metric):
    """Weighted mean of all the values seen (states: ``total``, ``count``)."""

    def __init__(self, name: str = "mean", dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.add_state("total", (), 0.0)
        self.add_state("count", (), 0.0)

    def update_state(self, values: Any, sample_weight: Any = None) -> None:
        mask = get_mask(values)
        values = to_tensor(values)
        self._follow(values)
        values, sample_weight = reduce_to_samplewise_values(
            values, sample_weight, torch.mean, self.torch_dtype, mask
        )
        self.total.add_(values.sum())
        if sample_weight is not None:
            self.count.add_(sample_weight.sum())
        else:
            self.add_host_value("count", values.shape[0] if values.dim() >= 1 else 1)

    def update_batch_mean(self, value: torch.Tensor, count: int) -> None:
        """Add a batch's mean ``value`` with weight ``count`` (the training loop's
        loss tracker): equal to ``update_state(value, sample_weight=count)``,
        with the additions held back (see :mod:`.pending`)."""
        if torch.compiler.is_compiling():  # a traced step: added to the states in the graph
            self.add_tensor_sum("total", value, weight=count)
            self.add_host_value("count", count)
            return
        # Runs every step: the two held-back additions without the general helpers' checks.
        self._follow(value)
        self._pending_sum("count").host += count
        if self._pending_sum("total").add_tensor(_detached(value), count):
            self._apply_pending("total")

    def result(self) -> torch.Tensor:
        return divide_no_nan(self.total, self.count)


def _function_path(fn: Callable) -> Optional[str]:
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def _resolve_function(fn: Any, custom_objects: Optional[Dict[str, Any]] = None) -> Callable:
    """A function named in a config: by ``custom_objects`` or torchfit's
    registry, never by importing the module the name gives (see ``name_gate``)."""
    if isinstance(fn, dict) and fn.get("class_name") == "function":  # Keras's layout
        fn = fn.get("config")
    return name_gate.resolve(fn, FUNCTIONS, custom_objects, "function")


class MeanMetricWrapper(Mean):
    """Mean of a per-sample function ``fn(y_true, y_pred, **kwargs)``.

    ``fn`` receives tensors (``y_pred`` as given, ``y_true`` as a tensor on
    ``y_pred``'s device) and returns one value per sample (or per timestep);
    the result is their (sample-weighted) mean over everything seen.
    """

    def __init__(
        self,
        fn: Callable,
        name: Optional[str] = None,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if name is None:
            name = to_snake_case(getattr(fn, "__name__", type(fn).__name__))
        super().__init__(name=name, dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    #: True when ``fn`` gives each sample a value computed from that sample
    #: alone: unweighted batches are then queued and evaluated together
    #: (see :mod:`.pending`). Built-in per-sample functions are; a custom
    #: ``fn`` may not be (e.g. one that normalises over the batch).
    rows_independent = False
    #: True when ``y_true`` may hold class indices, one rank below ``y_pred``.
    sparse_labels = False

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if self.rows_independent and sample_weight is None and self._defer(y_true, y_pred):
            return
        self._update_now(y_true, y_pred, sample_weight)

    def _defer(self, y_true: Any, y_pred: Any) -> bool:
        """Queue a plain batch of tensors; False for anything else (updated now)."""
        # CPU only: on CUDA an output can live in a CUDA-graph buffer (a module
        # compiled with mode="reduce-overhead") that the next step overwrites.
        # Runs every step: each shape is read once (a tensor attribute read costs
        # more than indexing the torch.Size it returns).
        if (not isinstance(y_pred, torch.Tensor) or not isinstance(y_true, torch.Tensor)
                or not (y_pred.is_cpu and y_true.is_cpu) or get_mask(y_pred) is not None
                or torch.compiler.is_compiling()):
            return False
        true_shape, pred_shape = y_true.shape, y_pred.shape
        if not true_shape or not pred_shape or true_shape[0] != pred_shape[0]:
            return False
        if len(true_shape) != len(pred_shape) and not (
                self.sparse_labels and len(true_shape) == len(pred_shape) - 1):
            return False  # (N,) against (N, 1) broadcasts across samples: not per sample
        rows = self.__dict__.get("_deferred_rows")
        if rows is None:
            rows = self.__dict__["_deferred_rows"] = DeferredRows()
        # Batches concatenate when everything but their length agrees.
        signature = (y_true.dtype, y_pred.dtype, true_shape[1:], pred_shape[1:])
        if not rows.accepts(signature):
            self._flush_deferred()
        self._follow(y_pred)
        if rows.add(_detached(y_true), _detached(y_pred), signature):
            self._flush_deferred()
        return True

    def _flush_deferred(self) -> None:
        rows = self.__dict__.get("_deferred_rows")
        if rows:
            y_true, y_pred = rows.take()
            with torch.no_grad():
                self._update_now(y_true, y_pred, None)

    def _update_now(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        y_pred_t = to_tensor(y_pred)
        device = self._follow(y_pred_t)
        mask = get_mask(y_pred)
        y_true_t = to_tensor(y_true, device=device)
        values = self._fn(y_true_t, y_pred_t, **self._fn_kwargs)
        if sample_weight is None and mask is None and values.dim() == 1:
            # Unweighted per-sample values (accuracy and friends, every step):
            # the same sums as the general path, held back (see .pending).
            self.add_tensor_sum("total", values)
            self.add_host_value("count", values.shape[0])
            return
        sample_weight = apply_mask(
            None if sample_weight is None else to_tensor(sample_weight, device=device),
            mask,
            self.torch_dtype,
        )
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self) -> Dict[str, Any]:
        config = super().get_config()
        path = _function_path(self._fn)
        config["fn"] = path if path is not None else self._fn
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any],
                    custom_objects: Optional[Dict[str, Any]] = None) -> "MeanMetricWrapper":
        """Rebuild from :meth:`get_config`; a function named by a string comes
        from ``custom_objects`` or torchfit's own functions (nothing is imported)."""
        config = dict(config)
        if isinstance(config.get("fn"), (str, dict)):
            config["fn"] = _resolve_function(config["fn"], custom_objects)
        return cls(**config)


class _FunctionMetric(MeanMetricWrapper):
    """Base of the metric classes around one built-in per-sample function.

    The ``fn`` keyword arguments named in ``_config_keys`` become attributes
    and, after ``name`` and ``dtype``, make up the config (which, unlike
    :class:`MeanMetricWrapper`'s, leaves ``fn`` out: the class implies it).
    """

    _config_keys: Tuple[str, ...] = ()
    rows_independent = True  # every built-in function is per sample

    def __init__(self, fn: Callable, name: Optional[str], dtype: Any, **kwargs: Any) -> None:
        super().__init__(fn=fn, name=name, dtype=dtype, **kwargs)
        for key in self._config_keys:
            setattr(self, key, kwargs[key])

    def get_config(self) -> Dict[str, Any]:
        config = Metric.get_config(self)
        config.update((key, getattr(self, key)) for key in self._config_keys)
        return config
