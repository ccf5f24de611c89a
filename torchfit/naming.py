"""Names as Keras writes them: snake_case class names and process-unique defaults.

One home for the rules, so every log name, metric, loss and optimizer name
comes out the same way Keras's ``keras.src.utils.naming`` spells it.
"""

from __future__ import annotations

import re
from typing import Any, MutableMapping

__all__ = ["to_snake_case", "object_name", "auto_name"]


def to_snake_case(name: str) -> str:
    """``"SparseTopKCategoricalAccuracy"`` -> ``"sparse_top_k_categorical_accuracy"``;
    characters that are not word characters are dropped (``"<lambda>"`` -> ``"lambda"``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def object_name(obj: Any) -> str:
    """The name Keras gives a loss/metric object or function in the logs: its
    ``name`` string if it has one, else its snake_cased function or class name."""
    if isinstance(getattr(obj, "name", None), str):
        return obj.name
    if hasattr(obj, "__name__"):
        return to_snake_case(obj.__name__)
    return to_snake_case(type(obj).__name__)


def auto_name(class_name: str, counts: MutableMapping[str, int]) -> str:
    """A default name unique within ``counts`` (one counter per kind of object,
    as Keras keeps them): ``adam``, ``adam_1``, ... ``counts`` is updated."""
    base = to_snake_case(class_name)
    count = counts.get(base, 0)
    counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"
