"""Loss identifiers and configs: ``get``, ``serialize`` and ``deserialize``."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Dict, Optional, Union

import torch

from ..validation import is_config
from ._categorical import (
    CategoricalCrossentropy,
    CategoricalFocalCrossentropy,
    CategoricalGeneralizedCrossEntropy,
    SparseCategoricalCrossentropy,
    categorical_crossentropy,
    categorical_focal_crossentropy,
    categorical_generalized_cross_entropy,
    sparse_categorical_crossentropy,
)
from ._circle import Circle, circle
from ._ctc import CTC, ctc
from ._hinge import CategoricalHinge, Hinge, SquaredHinge, categorical_hinge, hinge, squared_hinge
from ._loss import BUILTIN_FUNCTIONS, Loss, LossFunctionWrapper
from ._probabilistic import (
    BinaryCrossentropy,
    BinaryFocalCrossentropy,
    KLDivergence,
    Poisson,
    binary_crossentropy,
    binary_focal_crossentropy,
    kl_divergence,
    poisson,
)
from ._regression import (
    CosineSimilarity,
    Huber,
    LogCosh,
    MeanAbsoluteError,
    MeanAbsolutePercentageError,
    MeanSquaredError,
    MeanSquaredLogarithmicError,
    cosine_similarity,
    huber,
    log_cosh,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    mean_squared_logarithmic_error,
)
from ._segmentation import Dice, Tversky, dice, tversky

_CLASSES: Dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Loss,
        LossFunctionWrapper,
        MeanSquaredError,
        MeanAbsoluteError,
        MeanAbsolutePercentageError,
        MeanSquaredLogarithmicError,
        CosineSimilarity,
        Huber,
        LogCosh,
        Hinge,
        SquaredHinge,
        CategoricalHinge,
        KLDivergence,
        Poisson,
        BinaryCrossentropy,
        BinaryFocalCrossentropy,
        CategoricalCrossentropy,
        CategoricalFocalCrossentropy,
        SparseCategoricalCrossentropy,
        Dice,
        Tversky,
        CTC,
        Circle,
        CategoricalGeneralizedCrossEntropy,
    )
}

_FUNCTIONS: Dict[str, Callable[..., torch.Tensor]] = {
    fn.__name__: fn
    for fn in (
        mean_squared_error,
        mean_absolute_error,
        mean_absolute_percentage_error,
        mean_squared_logarithmic_error,
        cosine_similarity,
        huber,
        log_cosh,
        hinge,
        squared_hinge,
        categorical_hinge,
        kl_divergence,
        poisson,
        binary_crossentropy,
        binary_focal_crossentropy,
        categorical_crossentropy,
        categorical_focal_crossentropy,
        sparse_categorical_crossentropy,
        dice,
        tversky,
        ctc,
        circle,
        categorical_generalized_cross_entropy,
    )
}

# Keras 3's short names plus the Keras 2 legacy aliases.
_ALIASES: Dict[str, Callable[..., torch.Tensor]] = {
    "bce": binary_crossentropy,
    "BCE": binary_crossentropy,
    "kld": kl_divergence,
    "KLD": kl_divergence,
    "kullback_leibler_divergence": kl_divergence,
    "mae": mean_absolute_error,
    "MAE": mean_absolute_error,
    "mse": mean_squared_error,
    "MSE": mean_squared_error,
    "mape": mean_absolute_percentage_error,
    "MAPE": mean_absolute_percentage_error,
    "msle": mean_squared_logarithmic_error,
    "MSLE": mean_squared_logarithmic_error,
    "logcosh": log_cosh,
    "huber_loss": huber,
}

BUILTIN_FUNCTIONS.update(_FUNCTIONS)  # what LossFunctionWrapper's configs name

_ALL_OBJECTS: Dict[str, Any] = {**_CLASSES, **_FUNCTIONS, **_ALIASES}


def _unknown_name_error(value: str) -> ValueError:
    close = difflib.get_close_matches(value, list(_ALL_OBJECTS), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ValueError(
        f"Unknown value for argument `loss`: could not interpret loss identifier "
        f"{value!r}.{hint} Expected a loss class or function name such as "
        f"'mse', 'mean_squared_error' or 'MeanSquaredError' (one of "
        f"{sorted(_ALL_OBJECTS)}). Received: loss={value!r}"
    )


def serialize(loss: Union[Loss, Callable[..., torch.Tensor]]) -> Dict[str, Any]:
    """Config dict for a ``Loss`` instance or a torchfit loss function.

    Uses Keras's layout: ``{"module", "class_name", "config",
    "registered_name"}``; functions are ``class_name="function"`` with their
    name as ``config``.
    """
    if isinstance(loss, Loss):
        return {
            "module": "torchfit.losses",
            "class_name": type(loss).__name__,
            "config": loss.get_config(),
            "registered_name": None,
        }
    name = getattr(loss, "__name__", None)
    if callable(loss) and name is not None and _FUNCTIONS.get(name) is loss:
        return {
            "module": "torchfit.losses",
            "class_name": "function",
            "config": name,
            "registered_name": "function",
        }
    raise TypeError(
        "Invalid value for argument `loss`: expected a torchfit `Loss` instance "
        f"or a torchfit loss function. Received: loss={loss!r}"
    )


def deserialize(
    config: Union[str, Dict[str, Any]], custom_objects: Optional[Dict[str, Any]] = None
) -> Union[Loss, Callable[..., torch.Tensor]]:
    """Inverse of ``serialize``; also accepts a plain name (see ``get``).

    ``custom_objects`` maps extra class/function names to objects.
    """
    custom = dict(custom_objects or {})
    if isinstance(config, str):
        if config in custom:
            obj = custom[config]
            return obj() if inspect.isclass(obj) and issubclass(obj, Loss) else obj
        return get(config)
    if not is_config(config):
        raise ValueError(
            "Invalid value for argument `config`: expected a loss name or a "
            "dict with keys 'class_name' and 'config'. Received: "
            f"config={config!r}"
        )
    class_name = config["class_name"]
    inner = config.get("config", {})
    if class_name == "function":
        if not isinstance(inner, str):
            raise ValueError(
                "Invalid function config: 'config' must be the function name. "
                f"Received: config={config!r}"
            )
        fn = custom.get(inner) or _FUNCTIONS.get(inner) or _ALIASES.get(inner)
        if fn is None:
            raise _unknown_name_error(inner)
        return fn
    cls = custom.get(class_name) or _CLASSES.get(class_name)
    if cls is None:
        raise _unknown_name_error(class_name)
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise ValueError(
            "Invalid loss config: 'config' must be a dict of constructor "
            f"arguments. Received: config={config!r}"
        )
    if not inspect.isclass(cls):
        return cls
    if issubclass(cls, LossFunctionWrapper) and "fn" in inner:
        return cls.from_config(inner, custom_objects=custom)
    return cls.from_config(inner)


def get(identifier: Any) -> Optional[Union[Loss, Callable[..., torch.Tensor]]]:
    """Resolves a loss identifier, like ``keras.losses.get``.

    * ``None`` -> ``None``;
    * a name: a function name or alias (``"mse"``, ``"MSE"``,
      ``"mean_squared_error"``, ``"kld"``, ``"logcosh"``, ``"huber_loss"``, ...)
      gives the function; a class name (``"MeanSquaredError"``) an instance;
    * a config dict (see ``serialize``) -> the deserialised loss;
    * a ``Loss`` subclass -> an instance; any other callable as is.

    Raises ``ValueError`` for unknown names (with suggestions) and
    ``TypeError`` for other kinds of values.
    """
    if identifier is None:
        return None
    if isinstance(identifier, str):
        obj = _ALL_OBJECTS.get(identifier)
        if obj is None:
            raise _unknown_name_error(identifier)
    elif isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif callable(identifier):
        obj = identifier
    else:
        raise TypeError(
            "Invalid type for argument `loss`: could not interpret loss "
            "identifier. Expected None, a string, a config dict or a callable. "
            f"Received: loss={identifier!r} of type {type(identifier).__name__}"
        )
    if inspect.isclass(obj):
        if issubclass(obj, Loss) and obj not in (Loss, LossFunctionWrapper):
            return obj()
        if obj in (Loss, LossFunctionWrapper):
            raise ValueError(
                "Invalid value for argument `loss`: the abstract class "
                f"{obj.__name__!r} cannot be used as a loss. Received: "
                f"loss={identifier!r}"
            )
    return obj
