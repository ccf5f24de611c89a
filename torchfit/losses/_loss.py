"""The ``Loss`` base classes and Keras's reductions."""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import torch

from .. import name_gate
from ..naming import to_snake_case
from ._utils import (
    TensorLike,
    _FLOAT_DTYPES,
    _check_name,
    _divide_no_nan,
    _get_mask,
    _standardize_dtype,
    _to_tensor,
    squeeze_or_expand_to_same_rank,
)

# Accepted values of ``reduction`` (documented where ``torchfit.losses``
# exports it).
REDUCTIONS = (
    "sum_over_batch_size",
    "sum",
    "mean",
    "mean_with_sample_weight",
    "none",
    None,
)


def standardize_reduction(reduction: Optional[str]) -> Optional[str]:
    """Returns ``reduction`` if it is allowed, else raises ``ValueError``."""
    if not (reduction is None or isinstance(reduction, str)) or reduction not in REDUCTIONS:
        raise ValueError(
            "Invalid value for argument `reduction`. Expected one of "
            f"{list(REDUCTIONS)}. Received: reduction={reduction!r}"
        )
    return reduction


# --------------------------------------------------------------------------
# Reduction
# --------------------------------------------------------------------------


def reduce_values(
    values: torch.Tensor,
    sample_weight: Optional[torch.Tensor] = None,
    reduction: Optional[str] = "sum_over_batch_size",
) -> torch.Tensor:
    """Reduces already-weighted ``values`` (``sample_weight`` only serves
    ``"mean_with_sample_weight"`` as the divisor)."""
    if reduction is None or reduction == "none" or values.dim() == 0:
        return values
    if tuple(values.shape) == (0,):
        return values
    loss = torch.sum(values)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return _divide_no_nan(loss, torch.sum(sample_weight).to(loss.dtype))
    count = values.numel()
    if count == 0:
        return torch.zeros_like(loss)
    return loss / count


def _apply_mask(
    sample_weight: Optional[torch.Tensor],
    mask: Optional[torch.Tensor],
    dtype: torch.dtype,
    reduction: Optional[str],
) -> Optional[torch.Tensor]:
    """Folds a boolean mask into ``sample_weight`` like Keras."""
    if mask is None:
        return sample_weight
    if reduction in ("mean", "sum_over_batch_size"):
        # Valid entries weigh total/valid so that the mean runs over them only.
        # (The total is a Python number: building a device tensor from it
        # would cost a host-to-device copy.)
        mask_bool = mask.to(torch.bool)
        valid = torch.sum(mask_bool.to(dtype))  # may be 0
        none_valid = valid == 0
        weight = float(mask.numel()) / torch.where(none_valid, torch.ones_like(valid), valid)
        weight = torch.where(none_valid, torch.zeros_like(weight), weight)
        float_mask = torch.where(mask_bool, weight, torch.zeros_like(weight))
    else:
        float_mask = mask.to(dtype)
    if sample_weight is None:
        return float_mask
    sample_weight = sample_weight.to(dtype)
    float_mask, sample_weight = squeeze_or_expand_to_same_rank(float_mask, sample_weight)
    return sample_weight * float_mask


def reduce_weighted_values(
    values: TensorLike,
    sample_weight: Optional[TensorLike] = None,
    mask: Optional[TensorLike] = None,
    reduction: Optional[str] = "sum_over_batch_size",
    dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Applies ``mask`` and ``sample_weight`` to ``values`` and reduces them."""
    reduction = standardize_reduction(reduction)
    values = _to_tensor(values, dtype=dtype)
    device = values.device
    if sample_weight is not None:
        sample_weight = _to_tensor(sample_weight, dtype=values.dtype, device=device)
    if mask is not None:
        mask = _to_tensor(mask, device=device)
    sample_weight = _apply_mask(sample_weight, mask, values.dtype, reduction)
    if sample_weight is not None:
        sample_weight = sample_weight.to(values.dtype)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        values = values * sample_weight
    return reduce_values(values, sample_weight, reduction)


# --------------------------------------------------------------------------
# Base classes
# --------------------------------------------------------------------------


class Loss:
    """Base class of all losses.

    Subclasses must provide: ``call(y_true, y_pred)`` returning the
    per-sample (unreduced) losses; ``__call__`` applies ``sample_weight``,
    the mask and ``reduction``. They may provide: ``__init__`` passing
    ``name``/``reduction``/``dtype`` on to ``super().__init__``, and
    ``get_config()`` with their own arguments (for saving).

    Args:
        name: Name of the loss (defaults to the snake_case class name).
        reduction: ``"sum_over_batch_size"`` (default; sum divided by the number
            of loss values), ``"sum"``, ``"mean"`` (same as the default),
            ``"mean_with_sample_weight"`` (sum divided by the sum of the sample
            weights) or ``None``/``"none"`` (no reduction).
        dtype: Compute dtype; ``y_true``, ``y_pred`` and the losses are cast to
            it. Defaults to ``"float32"``.
    """

    def __init__(
        self,
        name: Optional[str] = None,
        reduction: Optional[str] = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        _check_name(name)
        self.name = name or to_snake_case(type(self).__name__)
        self.reduction = standardize_reduction(reduction)
        self._dtype_arg = dtype
        self._dtype = _standardize_dtype(dtype)
        self._torch_dtype = _FLOAT_DTYPES[self._dtype]

    @property
    def dtype(self) -> str:
        """Compute dtype name, e.g. ``"float32"``."""
        return self._dtype

    def __call__(
        self,
        y_true: TensorLike,
        y_pred: TensorLike,
        sample_weight: Optional[TensorLike] = None,
    ) -> torch.Tensor:
        """Returns the weighted, reduced loss of a batch."""
        in_mask = _get_mask(y_pred)
        y_pred = _to_tensor(y_pred, dtype=self._torch_dtype)
        y_true = _to_tensor(y_true, dtype=self._torch_dtype, device=y_pred.device)
        losses = self.call(y_true, y_pred)
        out_mask = _get_mask(losses)
        if in_mask is not None and out_mask is not None:
            mask = in_mask.to(torch.bool) & out_mask.to(torch.bool)
        else:
            mask = in_mask if in_mask is not None else out_mask
        return reduce_weighted_values(
            losses,
            sample_weight=sample_weight,
            mask=mask,
            reduction=self.reduction,
            dtype=self._torch_dtype,
        )

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        """Per-sample (unreduced) losses; to be implemented by subclasses."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `call(y_true, y_pred)`."
        )

    def get_config(self) -> Dict[str, Any]:
        """Constructor arguments (as Keras: ``name`` and ``reduction``, plus
        ``dtype`` when one was given)."""
        config: Dict[str, Any] = {"name": self.name, "reduction": self.reduction}
        if self._dtype_arg is not None:
            config["dtype"] = self._dtype
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Loss":
        """Rebuilds a loss from ``get_config()``'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} reduction={self.reduction!r}>"


#: ``{name: function}`` of torchfit's loss functions, filled in by
#: ``_registry`` when the package loads (it imports the modules that subclass
#: the classes below, so this module does not import it).
BUILTIN_FUNCTIONS: Dict[str, Callable[..., torch.Tensor]] = {}


class LossFunctionWrapper(Loss):
    """A ``Loss`` computing ``fn(y_true, y_pred, **kwargs)``.

    Before ``fn`` runs, ``y_true`` and ``y_pred`` are brought to the same rank
    with ``squeeze_or_expand_to_same_rank`` (as Keras does).

    Args:
        fn: Loss function ``fn(y_true, y_pred, **kwargs)`` returning per-sample
            losses.
        reduction, name, dtype: See ``Loss``.
        **kwargs: Extra keyword arguments passed to ``fn``.
    """

    def __init__(
        self,
        fn: Callable[..., torch.Tensor],
        reduction: Optional[str] = "sum_over_batch_size",
        name: Optional[str] = None,
        dtype: Any = None,
        **kwargs: Any,
    ) -> None:
        if not callable(fn):
            raise TypeError(
                "Invalid type for argument `fn`. Expected a callable "
                f"fn(y_true, y_pred, **kwargs). Received: fn={fn!r} of type "
                f"{type(fn).__name__}"
            )
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = kwargs

    def call(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self) -> Dict[str, Any]:
        """Adds ``fn`` (its registered name, or the callable itself when it is
        not a torchfit loss function) and the ``fn`` keyword arguments."""
        config = super().get_config()
        name = getattr(self.fn, "__name__", None)
        config["fn"] = name if BUILTIN_FUNCTIONS.get(name) is self.fn else self.fn
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(
        cls, config: Dict[str, Any], custom_objects: Optional[Dict[str, Any]] = None
    ) -> "LossFunctionWrapper":
        config = dict(config)
        if "fn" in config:
            fn = config["fn"]
            if isinstance(fn, dict) and fn.get("class_name") == "function":
                fn = fn.get("config")
            if isinstance(fn, str):  # never imported: torchfit's or custom_objects'
                fn = name_gate.resolve(fn, BUILTIN_FUNCTIONS, custom_objects,
                                       "loss function", "The loss config's `fn`")
            config["fn"] = fn
        return cls(**config)

    def __repr__(self) -> str:
        return f"<LossFunctionWrapper({self.fn}, kwargs={self._fn_kwargs})>"


class _WrappedLoss(LossFunctionWrapper):
    """Base of the concrete loss classes: the ``fn`` keyword arguments named
    in ``_config_keys`` become attributes, and the config holds them (the
    constructor's own arguments) instead of ``fn``."""

    _config_keys: Tuple[str, ...] = ()

    def __init__(
        self,
        fn: Callable[..., torch.Tensor],
        reduction: Optional[str],
        name: Optional[str],
        dtype: Any,
        **kwargs: Any,
    ) -> None:
        super().__init__(fn, reduction=reduction, name=name, dtype=dtype, **kwargs)
        for key in self._config_keys:
            setattr(self, key, kwargs[key])

    def get_config(self) -> Dict[str, Any]:
        config = Loss.get_config(self)
        for key in self._config_keys:
            config[key] = getattr(self, key)
        return config

    @classmethod
    def from_config(cls, config: Dict[str, Any], custom_objects: Any = None) -> "Loss":
        return cls(**config)

    def __repr__(self) -> str:
        return Loss.__repr__(self)
