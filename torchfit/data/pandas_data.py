"""pandas ``DataFrame`` and ``Series`` inputs (optional dependency, imported lazily).

pandas objects are array-likes to Keras: a ``DataFrame`` is an ``(N, columns)``
array and a ``Series`` an ``(N, 1)`` one. They are converted to NumPy once, up
front, and then sliced in whole batches like any other array
(:class:`~torchfit.data.arrays.ArrayDataAdapter`). They may appear anywhere in
``x``, ``y`` and ``sample_weight``, alone or inside lists/tuples/dicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import tree
from .arrays import ArrayDataAdapter

PANDAS_EXTRA_HINT = "Install it with `pip install torchfit[pandas]` (or `pip install pandas`)."


def import_pandas() -> Any:
    """``import pandas``, or an ``ImportError`` naming the extra to install."""
    try:
        import pandas
    except ImportError as error:
        raise ImportError(
            f"pandas is required to use pandas DataFrame/Series inputs. {PANDAS_EXTRA_HINT}"
        ) from error
    return pandas


def is_pandas_object(value: Any) -> bool:
    """A pandas ``DataFrame`` or ``Series``, recognised without importing pandas."""
    for cls in type(value).__mro__:
        if cls.__name__ in ("DataFrame", "Series") and cls.__module__.split(".")[0] == "pandas":
            return True
    return False


def contains_pandas(*structures: Any) -> bool:
    return any(is_pandas_object(leaf) for s in structures for leaf in tree.flatten(s))


def pandas_to_numpy(value: Any, argument: str = "x") -> np.ndarray:
    """One ``DataFrame`` → ``(N, columns)`` array; one ``Series`` → ``(N, 1)``."""
    pandas = import_pandas()
    api = pandas.api.types
    if isinstance(value, pandas.Series):
        columns = {value.name: value.dtype}
    else:
        columns = dict(value.dtypes.items())
    bad = {name: str(dtype) for name, dtype in columns.items()
           if not (api.is_numeric_dtype(dtype) or api.is_bool_dtype(dtype))}
    if bad:
        raise TypeError(
            f"Argument `{argument}` must hold numeric pandas columns (int, float or bool). "
            f"Received non-numeric columns {bad}; encode them as numbers first."
        )
    array = value.to_numpy()
    if array.dtype == object:  # nullable extension dtypes (Int64, boolean) with NA
        array = value.to_numpy(dtype="float64", na_value=np.nan)
    if isinstance(value, pandas.Series):
        array = array[:, None]
    return np.ascontiguousarray(array)


def convert_pandas(structure: Any, argument: str) -> Any:
    """Replace every pandas leaf of ``structure`` by its NumPy array."""
    return tree.map_structure(
        lambda leaf: pandas_to_numpy(leaf, argument) if is_pandas_object(leaf) else leaf,
        structure,
    )


class PandasDataAdapter(ArrayDataAdapter):
    """pandas leaves converted to NumPy once, then sliced like arrays."""

    def __init__(self, x: Any, y: Any = None, sample_weight: Any = None, *args: Any,
                 names: Any = None, **kwargs: Any) -> None:
        names = names or {}
        super().__init__(
            convert_pandas(x, names.get("x", "x")),
            convert_pandas(y, names.get("y", "y")),
            convert_pandas(sample_weight, names.get("sample_weight", "sample_weight")),
            *args, names=names, **kwargs,
        )
