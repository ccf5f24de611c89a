"""Turns ``compile``'s ``loss``/``metrics`` arguments into objects matched to the outputs.

``CompileLoss`` and ``CompileMetrics`` are built on the first batch, when the
structure and shapes of ``y`` and ``y_pred`` are known: that is when
``"accuracy"``/``"crossentropy"`` are resolved to their binary, categorical or
sparse variant, per-output names are fixed and targets are checked against the
outputs (before any weight changes).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from . import losses as losses_module
from . import metrics as metrics_module
from . import tree
from .naming import object_name
from .compilation import eager_only
from .metrics.torchmetrics_adapter import TorchMetricAdapter, is_torchmetrics  # noqa: F401 (public here)
from .torch_loss import KerasOrder, TorchLossAdapter, is_torch_order

ACCURACY_ALIASES = ("accuracy", "acc")
CROSSENTROPY_ALIASES = ("crossentropy", "ce")
SPARSE_LOSSES = ("sparse_categorical_crossentropy",)


def binary_or_sparse(y_true: torch.Tensor, y_pred: torch.Tensor) -> Tuple[bool, bool]:
    """Keras's shape rule: binary if one output unit; sparse if labels lack the class axis."""
    is_binary = y_pred.shape[-1] == 1 if y_pred.ndim else True
    is_sparse = y_true.ndim < y_pred.ndim or (
        y_true.ndim > 0 and y_true.shape[-1] == 1 and y_pred.ndim > 0 and y_pred.shape[-1] > 1
    )
    return is_binary, is_sparse


# ----------------------------------------------------------------------------- losses


def instantiate_loss_class(identifier: Any) -> Any:
    """A loss given as a class (``loss=nn.CrossEntropyLoss``) is instantiated with
    no arguments, as Keras's ``losses.get`` does; one that needs arguments is refused."""
    if not inspect.isclass(identifier):
        return identifier
    try:
        return identifier()
    except TypeError as error:
        raise TypeError(
            f"Argument `loss` must be a loss instance, name or function. Received the class "
            f"{identifier.__name__}, which cannot be instantiated without arguments ({error}); "
            f"pass an instance, e.g. loss={identifier.__name__}(...)."
        ) from None


def resolve_loss(identifier: Any, y_true: Any, y_pred: Any) -> Any:
    """One user loss entry → a callable ``(y_true, y_pred, sample_weight)``."""
    if identifier is None:
        return None
    if isinstance(identifier, str) and identifier.lower() in CROSSENTROPY_ALIASES:
        is_binary, is_sparse = binary_or_sparse(y_true, y_pred)
        fn = (
            losses_module.binary_crossentropy if is_binary
            else losses_module.sparse_categorical_crossentropy if is_sparse
            else losses_module.categorical_crossentropy
        )
        return losses_module.LossFunctionWrapper(fn, name=identifier)
    if isinstance(identifier, nn.Module) or is_torch_order(identifier):
        return TorchLossAdapter(identifier)
    resolved = losses_module.get(identifier)
    if isinstance(resolved, losses_module.Loss):
        return resolved
    name = identifier if isinstance(identifier, str) else object_name(resolved)
    return losses_module.LossFunctionWrapper(resolved, name=name)


# Built-in losses whose targets have the output's shape (after Keras's
# squeeze/expand of a trailing 1), and those that take class indices instead.
# Other losses (CTC, Circle, user functions) define their own target layout.
SAME_SHAPE_LOSSES = frozenset({
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "cosine_similarity", "huber", "log_cosh", "hinge",
    "squared_hinge", "categorical_hinge", "kl_divergence", "poisson", "binary_crossentropy",
    "binary_focal_crossentropy", "categorical_crossentropy", "categorical_focal_crossentropy",
    "dice", "tversky",
})
INDEX_TARGET_LOSSES = frozenset({"sparse_categorical_crossentropy",
                                 "categorical_generalized_cross_entropy"})
# Element-wise losses: Keras aligns the ranks of targets and outputs, then
# broadcasts them (targets (N, 1) against outputs (N, 2) are valid there).
BROADCASTING_LOSSES = frozenset({
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "cosine_similarity", "huber", "log_cosh", "hinge",
    "squared_hinge", "kl_divergence", "poisson",
})


def _broadcasts_like_keras(y_true: torch.Tensor, y_pred: torch.Tensor) -> bool:
    """Whether ``y_true`` and ``y_pred`` broadcast once their ranks are aligned."""
    aligned_true, aligned_pred = losses_module.squeeze_or_expand_to_same_rank(
        torch.empty(tuple(y_true.shape), device="meta"),
        torch.empty(tuple(y_pred.shape), device="meta"),
    )
    try:
        torch.broadcast_shapes(aligned_true.shape, aligned_pred.shape)
    except RuntimeError:
        return False
    return True


def loss_kind(loss: Any) -> str:
    """The built-in loss function behind ``loss`` (``""`` for anything else)."""
    fn = getattr(loss, "fn", None)
    if fn is None or not str(getattr(fn, "__module__", "")).startswith(losses_module.__name__):
        return ""
    return fn.__name__


def check_targets(loss: Any, y_true: Any, y_pred: torch.Tensor, output: str, argument: str = "y") -> None:
    """Catch targets that cannot fit the loss before anything is trained.

    ``argument`` names the data in messages (``validation_data`` for validation).
    """
    if isinstance(y_true, torch.Tensor) and y_true.is_complex() and (
            isinstance(loss, TorchLossAdapter) or loss_kind(loss)):
        where = f" for output '{output}'" if output else ""
        raise TypeError(
            f"Argument `{argument}`{where} must hold real numbers (integer, float or bool "
            f"targets). Received complex targets of dtype {y_true.dtype}; losses would "
            "silently drop the imaginary part."
        )
    if isinstance(loss, TorchLossAdapter) or not isinstance(y_true, torch.Tensor):
        if isinstance(loss, TorchLossAdapter) and isinstance(y_true, torch.Tensor):
            _check_torch_class_targets(loss.module, y_true, y_pred, output, argument)
        return
    where = f" for output '{output}'" if output else ""
    if y_true.shape[:1] != y_pred.shape[:1]:
        raise ValueError(
            f"Argument `{argument}`{where} must have one target per sample: expected "
            f"{y_pred.shape[0]} samples like the model output {tuple(y_pred.shape)}, "
            f"received targets of shape {tuple(y_true.shape)}."
        )
    kind = loss_kind(loss)
    if kind not in SAME_SHAPE_LOSSES | INDEX_TARGET_LOSSES:
        return
    if kind in INDEX_TARGET_LOSSES:
        labels_shape = tuple(y_pred.shape[:-1])
        ok = tuple(y_true.shape) in (labels_shape, labels_shape + (1,))
        if not ok:
            raise ValueError(
                f"Argument `{argument}`{where} does not fit loss '{kind}': expected integer "
                f"class indices of shape {labels_shape} for outputs of shape "
                f"{tuple(y_pred.shape)}, received shape {tuple(y_true.shape)}. "
                "For one-hot targets use 'categorical_crossentropy'."
            )
        if y_true.numel() and (bool((y_true < 0).any()) or bool((y_true >= y_pred.shape[-1]).any())):
            raise ValueError(
                f"Argument `{argument}`{where} holds class indices outside [0, "
                f"{y_pred.shape[-1] - 1}] for an output with {y_pred.shape[-1]} classes. "
                f"Received labels from {int(y_true.min())} to {int(y_true.max())}."
            )
        return
    if kind in BROADCASTING_LOSSES and _broadcasts_like_keras(y_true, y_pred):
        return
    squeezed_true = tuple(s for s in y_true.shape[1:] if s != 1)
    squeezed_pred = tuple(s for s in y_pred.shape[1:] if s != 1)
    if squeezed_true != squeezed_pred:
        hint = (
            " Integer class labels need 'sparse_categorical_crossentropy'."
            if "categorical" in kind and y_true.ndim < y_pred.ndim else ""
        )
        raise ValueError(
            f"Argument `{argument}`{where} does not fit loss '{kind}': expected targets shaped "
            f"like the model output {tuple(y_pred.shape)}, received shape "
            f"{tuple(y_true.shape)}.{hint}"
        )


# Built-in losses that reduce the last axis only: one loss value per sample
# (per timestep for temporal outputs), which sample weights must broadcast to.
PER_SAMPLE_LOSSES = (SAME_SHAPE_LOSSES - {"dice", "tversky"}) | {"sparse_categorical_crossentropy"}


def check_sample_weight(loss: Any, sample_weight: Any, y_pred: Any, output: str,
                        argument: str = "sample_weight") -> None:
    """Sample weights that cannot weight the per-sample losses (e.g. (N, 2) for a
    (N, C) output) fail here, clearly, instead of inside the loss."""
    if (not isinstance(sample_weight, torch.Tensor) or not isinstance(y_pred, torch.Tensor)
            or y_pred.ndim < 2 or loss_kind(loss) not in PER_SAMPLE_LOSSES):
        return
    values = torch.empty(tuple(y_pred.shape[:-1]), device="meta")
    weights = torch.empty(tuple(sample_weight.shape), device="meta")
    aligned_values, aligned_weights = losses_module.squeeze_or_expand_to_same_rank(values, weights)
    try:
        torch.broadcast_shapes(aligned_values.shape, aligned_weights.shape)
    except RuntimeError:
        where = f" for output '{output}'" if output else ""
        raise ValueError(
            f"Argument `{argument}`{where} does not fit loss '{loss_kind(loss)}': expected "
            f"one weight per sample, shape ({y_pred.shape[0]},), or per loss value, shape "
            f"{tuple(values.shape)}, for outputs of shape {tuple(y_pred.shape)}; received "
            f"shape {tuple(sample_weight.shape)}."
        ) from None


def _check_torch_class_targets(module: Any, y_true: torch.Tensor, y_pred: Any, output: str,
                               argument: str = "y") -> None:
    """Class indices for ``nn.CrossEntropyLoss``/``nn.NLLLoss`` (classes on dim 1)
    must exist in the output, else torch fails later with a bare IndexError."""
    if (not isinstance(module, (nn.CrossEntropyLoss, nn.NLLLoss)) or y_true.is_floating_point()
            or not isinstance(y_pred, torch.Tensor) or y_pred.ndim == 0 or not y_true.numel()):
        return
    classes = int(y_pred.shape[1] if y_pred.ndim >= 2 else y_pred.shape[0])
    labels = y_true[y_true != module.ignore_index].long()
    if labels.numel() and (bool((labels < 0).any()) or bool((labels >= classes).any())):
        where = f" for output '{output}'" if output else ""
        raise ValueError(
            f"Argument `{argument}`{where} holds class indices outside [0, {classes - 1}] for "
            f"{type(module).__name__} on an output with {classes} classes. Received labels "
            f"from {int(labels.min())} to {int(labels.max())}."
        )


def default_output_names(model: Any, y_pred: Any) -> List[str]:
    """Names of a multi-output model's outputs, in flat order."""
    if isinstance(y_pred, dict):
        return sorted(y_pred)
    declared = getattr(model, "output_names", None)
    count = len(tree.flatten(y_pred))
    if isinstance(declared, (list, tuple)) and len(declared) == count:
        return [str(n) for n in declared]
    return [f"output_{i + 1}" for i in range(count)]


def flatten_like_outputs(value: Any, names: Sequence[str], argument: str) -> List[Any]:
    """Put a per-output structure (dict by name, or sequence) in output order."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(
                f"Argument `{argument}` has keys {unknown} that are not model "
                f"outputs. Expected keys among {list(names)}."
            )
        return [value.get(name) for name in names]
    flat = tree.flatten(value) if tree.is_nested(value) else [value]
    if len(flat) != len(names):
        raise ValueError(
            f"Argument `{argument}` must have one entry per model output "
            f"({len(names)}: {list(names)}). Received {len(flat)} entries."
        )
    return flat


def flatten_outputs(y_pred: Any, names: Sequence[str]) -> List[Any]:
    """Model outputs in output-name order."""
    if isinstance(y_pred, dict):
        return [y_pred[n] for n in names]
    return tree.flatten(y_pred)


#: The key of a single-output model's entry in a per-output dict (``loss``,
#: ``loss_weights``, ``y``).
SINGLE_OUTPUT_KEY = "output"


def _check_single_output_dict(value: dict, name: str, argument: str) -> None:
    """A dict for a single-output model must be keyed by that output; weights never are."""
    key = name or SINGLE_OUTPUT_KEY
    if argument.endswith("sample_weight"):
        raise ValueError(
            f"Argument `{argument}` must be one array for a single-output model (a dict "
            f"gives the weights of each output of a multi-output model). Received a dict "
            f"with keys {sorted(map(str, value))}."
        )
    if list(value) != [key]:
        raise ValueError(
            f"Argument `{argument}` is a dict with keys {sorted(map(str, value))}, which do not "
            f"match the model's single output: expected a single array, or a dict with the "
            f"one key {key!r}."
        )


def flatten_targets(value: Any, names: Sequence[str], argument: str = "y") -> List[Any]:
    """Targets (or per-output sample weights) in output-name order."""
    if value is None:
        return [None] * len(names)
    if len(names) == 1:
        if isinstance(value, dict):
            _check_single_output_dict(value, names[0], argument)
        flat = tree.flatten(value) if tree.is_nested(value) else [value]
        if len(flat) != 1:
            raise ValueError(
                f"Argument `{argument}` must be a single array for a single-output "
                f"model. Received a {type(value).__name__} of {len(flat)} arrays."
            )
        return flat
    return flatten_like_outputs(value, names, argument)


def per_output_weights(sample_weight: Any, names: Sequence[str],
                       argument: str = "sample_weight") -> List[Any]:
    """One sample-weight array for every output, or one per output."""
    if sample_weight is not None and tree.is_nested(sample_weight):
        return flatten_targets(sample_weight, names, argument)
    return [sample_weight] * len(names)


def check_per_output_weights(weights: Any, names: Sequence[str], losses: Sequence[Any]) -> None:
    """A ``loss_weights`` dict must weight every output that has a loss (Keras
    looks each one up and fails on a missing key)."""
    if not isinstance(weights, dict):
        return
    missing = [name for name, loss in zip(names, losses) if loss is not None and name not in weights]
    if missing:
        raise ValueError(
            f"Argument `loss_weights` must have a weight for every output with a loss: "
            f"expected keys {list(names)}, received keys {sorted(map(str, weights))} "
            f"(missing {missing})."
        )


class CompileLoss:
    """The compiled loss: per-output losses, weights and per-output loss trackers."""

    def __init__(self, loss: Any, loss_weights: Any = None, model: Any = None) -> None:
        self._user_loss = tree.map_structure(instantiate_loss_class, loss)
        self._user_loss_weights = loss_weights
        self._model = model
        self.built = False
        self.output_names: Optional[List[str]] = None
        self._losses: List[Any] = []
        self._weights: List[Optional[float]] = []
        self.metrics: List[Any] = []
        # Set by the loop when a fit/evaluation starts, to the name of the data
        # (``"y"``, ``"validation_data"``): the targets of its first batch are
        # checked again (new data may not fit the built losses).
        self.check_next_targets: Any = None

    @eager_only
    def recheck_targets(self, y_true: Any, y_pred: Any, sample_weight: Any = None,
                        argument: str = "y") -> None:
        """``check_targets`` on a batch of an already built loss (new data)."""
        self.check_next_targets = None
        self._check_data(self._losses, self.output_names, y_true, y_pred, sample_weight, argument)

    @eager_only
    def check_data(self, y_true: Any, y_pred: Any, sample_weight: Any, argument: str) -> None:
        """Check targets and weights named ``argument`` against the losses, building
        nothing (e.g. validation data before training starts)."""
        if self.built:
            names, losses = self.output_names, self._losses
        else:
            names, losses, _ = self._resolve(y_true, y_pred, argument)
        self._check_data(losses, names, y_true, y_pred, sample_weight, argument)

    @staticmethod
    def _check_data(losses: Sequence[Any], names: Sequence[str], y_true: Any, y_pred: Any,
                    sample_weight: Any, argument: str) -> None:
        weights_argument = "sample_weight" if argument == "y" else argument
        flat_true = flatten_targets(y_true, names, argument)
        flat_pred = flatten_outputs(y_pred, names)
        flat_sw = per_output_weights(sample_weight, names, weights_argument)
        for loss, yt, yp, sw, name in zip(losses, flat_true, flat_pred, flat_sw, names):
            if loss is None:
                continue
            if yt is None:
                raise ValueError(
                    f"Argument `{argument}` is required: a loss is set for output "
                    f"'{name or SINGLE_OUTPUT_KEY}' but no targets were given. Received None."
                )
            check_targets(loss, yt, yp, name, argument)
            check_sample_weight(loss, sw, yp, name, weights_argument)

    def _resolve(self, y_true: Any, y_pred: Any,
                 argument: str = "y") -> Tuple[List[str], List[Any], List[Any]]:
        """Output names, resolved losses and weights for outputs like ``y_pred``
        (``argument`` names the targets in messages)."""
        if not tree.is_nested(y_pred):
            names = [""]
            user = self._user_loss
            if tree.is_nested(user):
                user = flatten_like_outputs(user, [SINGLE_OUTPUT_KEY], "loss")[0]
            losses = [user]
            weights = self._single_weight()
        else:
            names = default_output_names(self._model, y_pred)
            user = self._user_loss
            losses = flatten_like_outputs(user, names, "loss") if tree.is_nested(user) else [user] * len(names)
            weights = (
                flatten_like_outputs(self._user_loss_weights, names, "loss_weights")
                if self._user_loss_weights is not None else [None] * len(names)
            )
        flat_true = flatten_targets(y_true, names, argument)
        flat_pred = flatten_outputs(y_pred, names)
        resolved = [resolve_loss(loss, yt, yp) for loss, yt, yp in zip(losses, flat_true, flat_pred)]
        if len(names) > 1:
            check_per_output_weights(self._user_loss_weights, names, resolved)
        return names, resolved, weights

    @eager_only
    def build(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        # Runs once, eagerly (its shape checks read values; never traced).
        names, losses, weights = self._resolve(y_true, y_pred)
        self._check_data(losses, names, y_true, y_pred, sample_weight, "y")
        self.output_names = names
        self._losses = losses
        self._weights = [None if w is None else float(w) for w in weights]
        active = [n for n, l in zip(names, self._losses) if l is not None]
        if len(active) > 1:
            self.metrics = [metrics_module.Mean(name=f"{n}_loss") for n in active]
        self.built = True

    def _single_weight(self) -> List[Optional[float]]:
        w = self._user_loss_weights
        if w is None:
            return [None]
        if isinstance(w, dict) and list(w) != [SINGLE_OUTPUT_KEY]:
            raise ValueError(
                f"Argument `loss_weights` is a dict with keys {sorted(map(str, w))}, which do not "
                f"match the model's single output: expected a float, or a dict with the one "
                f"key {SINGLE_OUTPUT_KEY!r}."
            )
        flat = tree.flatten(w) if tree.is_nested(w) else [w]
        if len(flat) != 1:
            raise ValueError(
                "Argument `loss_weights` must have one entry for a single-output "
                f"model. Received {len(flat)} entries."
            )
        return flat

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Optional[torch.Tensor]:
        if not self.built:
            self.build(y_true, y_pred, sample_weight)
        elif self.check_next_targets and y_true is not None:
            argument = self.check_next_targets
            self.recheck_targets(y_true, y_pred, sample_weight, argument if isinstance(argument, str) else "y")
        if y_true is None and any(loss is not None for loss in self._losses):
            raise ValueError(
                "Argument `y` is required: a loss is set for the model's output(s) "
                f"{[n or 'output' for n, l in zip(self.output_names, self._losses) if l is not None]} "
                "but this batch has no targets. Received y=None."
            )
        if (isinstance(y_pred, torch.Tensor) and self._losses[0] is not None and not tree.is_nested(y_true)
                and not isinstance(sample_weight, dict)):
            return self._single_output(y_true, y_pred, sample_weight)
        names = self.output_names
        flat_true = flatten_targets(y_true, names)
        flat_pred = flatten_outputs(y_pred, names)
        flat_sw = per_output_weights(sample_weight, names)
        total = None
        trackers = iter(self.metrics)
        for loss, weight, yt, yp, sw in zip(self._losses, self._weights, flat_true, flat_pred, flat_sw):
            if loss is None:
                continue
            value = loss(yt, yp, sw).float()
            if self.metrics:
                next(trackers).update_state(value.detach(), sample_weight=yp.shape[0])
            if weight is not None:
                value = value * weight
            total = value if total is None else total + value
        return total


    def _single_output(self, y_true: Any, y_pred: torch.Tensor, sample_weight: Any) -> torch.Tensor:
        """The per-batch fast path for the common one-output model."""
        value = self._losses[0](y_true, y_pred, sample_weight).float()
        weight = self._weights[0]
        return value if weight is None else value * weight


# ---------------------------------------------------------------------------- metrics


def resolve_metric(identifier: Any, y_true: Any, y_pred: Any) -> Any:
    """One user metric entry → a named ``torchfit.metrics.Metric``-like object."""
    if identifier is None:
        raise ValueError("Argument `metrics` contains None. Expected a metric name, object or function.")
    if isinstance(identifier, str) and identifier.lower() in ACCURACY_ALIASES + CROSSENTROPY_ALIASES:
        is_binary, is_sparse = binary_or_sparse(y_true, y_pred)
        if identifier.lower() in ACCURACY_ALIASES:
            cls = (metrics_module.BinaryAccuracy if is_binary
                   else metrics_module.SparseCategoricalAccuracy if is_sparse
                   else metrics_module.CategoricalAccuracy)
        else:
            cls = (metrics_module.BinaryCrossentropy if is_binary
                   else metrics_module.SparseCategoricalCrossentropy if is_sparse
                   else metrics_module.CategoricalCrossentropy)
        return cls(name=identifier)
    if is_torchmetrics(identifier):
        return TorchMetricAdapter(identifier)
    if is_torch_order(identifier):
        return metrics_module.MeanMetricWrapper(KerasOrder(identifier), name=object_name(identifier))
    metric = metrics_module.get(identifier)
    if not isinstance(metric, metrics_module.Metric):
        metric = metrics_module.MeanMetricWrapper(metric, name=object_name(metric))
    if isinstance(identifier, str):
        metric.name = identifier
    return metric


class CompileMetrics:
    """The compiled ``metrics`` and ``weighted_metrics``, one list per output.

    Like Keras's, it appears in ``model.metrics`` as one metric named
    ``"compile_metrics"``: ``update_state`` builds it on first use and
    ``result()`` is a dict of the per-output, per-metric results.
    """

    name = "compile_metrics"

    def __init__(self, metrics: Any, weighted_metrics: Any, model: Any = None) -> None:
        self._user_metrics = metrics
        self._user_weighted = weighted_metrics
        self._model = model
        self.built = False
        self.output_names: List[str] = []
        self._plain: List[List[Any]] = []
        self._weighted: List[List[Any]] = []
        self._names: List[Tuple[str, Any]] = []

    @staticmethod
    def _per_output(spec: Any, names: Sequence[str], argument: str) -> List[List[Any]]:
        """Keras's layouts: a dict by output name, or a list with one entry per
        output; anything else applies to every output (each gets its own copy)."""
        if not spec:
            return [[] for _ in names]
        if len(names) == 1:
            return [tree.flatten(spec) if tree.is_nested(spec) else [spec]]
        if isinstance(spec, dict):
            return [_as_list(v) for v in flatten_like_outputs(spec, names, argument)]
        if isinstance(spec, (list, tuple)) and len(spec) == len(names):
            return [_as_list(s) for s in spec]
        shared = _as_list(spec)
        return [shared] + [copy.deepcopy(shared) for _ in names[1:]]

    @eager_only
    def build(self, y_true: Any, y_pred: Any) -> None:
        multi = tree.is_nested(y_pred)
        names = default_output_names(self._model, y_pred) if multi else [""]
        flat_pred = flatten_outputs(y_pred, names)
        flat_true = flatten_targets(y_true, names)
        plain = self._per_output(self._user_metrics, names, "metrics")
        weighted = self._per_output(self._user_weighted, names, "weighted_metrics")
        self.output_names = names
        self._plain = [[resolve_metric(m, yt, yp) for m in ms] for ms, yt, yp in zip(plain, flat_true, flat_pred)]
        self._weighted = [[resolve_metric(m, yt, yp) for m in ms] for ms, yt, yp in zip(weighted, flat_true, flat_pred)]
        self._names = self._unique_names()
        self.built = True

    def _unique_names(self) -> List[Tuple[str, Any]]:
        """Log names as Keras forms them, ``weighted_`` for clashes of weighted ones."""
        seen: Dict[str, int] = {}
        named: List[Tuple[str, Any]] = []
        for output, metrics in zip(self.output_names, self._plain):
            for m in metrics:
                name = f"{output}_{m.name}" if output else m.name
                if name in seen:
                    seen[name] += 1
                    name = f"{name}_{seen[name] - 1}"
                else:
                    seen[name] = 1
                named.append((name, m))
        for output, metrics in zip(self.output_names, self._weighted):
            for m in metrics:
                name = f"{output}_{m.name}" if output else m.name
                if name in seen:
                    name = f"{output}_weighted_{m.name}" if output else f"weighted_{m.name}"
                    if name in seen:
                        seen[name] += 1
                        name = f"{name}_{seen[name] - 1}"
                    else:
                        seen[name] = 1
                else:
                    seen[name] = 1
                named.append((name, m))
        return named

    @property
    def metrics(self) -> List[Any]:
        return [m for _, m in self._names]

    @property
    def names(self) -> List[str]:
        return [n for n, _ in self._names]

    @property
    def variables(self) -> List[torch.Tensor]:
        """Every sub-metric's state tensors (empty until built)."""
        return [v for m in self.metrics for v in getattr(m, "variables", [])]

    @property
    def state_reduce_ops(self) -> List[str]:
        return [op for m in self.metrics for op in getattr(m, "state_reduce_ops", [])]

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if not self.built:
            self.build(y_true, y_pred)
        if isinstance(y_pred, torch.Tensor) and not tree.is_nested(y_true) and not tree.is_nested(sample_weight):
            # One output (the per-step common case): no structure walking.
            for m in self._plain[0]:
                m.update_state(y_true, y_pred)
            for m in self._weighted[0]:
                m.update_state(y_true, y_pred, sample_weight=sample_weight)
            return
        names = self.output_names
        flat_pred = flatten_outputs(y_pred, names)
        flat_true = flatten_targets(y_true, names)
        flat_sw = per_output_weights(sample_weight, names)
        for metrics, yt, yp in zip(self._plain, flat_true, flat_pred):
            for m in metrics:
                m.update_state(yt, yp)
        for metrics, yt, yp, sw in zip(self._weighted, flat_true, flat_pred, flat_sw):
            for m in metrics:
                m.update_state(yt, yp, sample_weight=sw)

    def reset_state(self) -> None:
        for m in self.metrics:
            m.reset_state()

    def result(self) -> Dict[str, torch.Tensor]:
        return {name: m.result() for name, m in self._names}


def _as_list(spec: Any) -> List[Any]:
    if spec is None:
        return []
    return list(spec) if isinstance(spec, (list, tuple)) else [spec]
