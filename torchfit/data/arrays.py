"""NumPy arrays, torch tensors and array-likes, alone or in lists/tuples/dicts."""

from __future__ import annotations

import itertools
import math
from typing import Any, Dict, Iterator, Optional

import numpy as np
import torch

from .. import tree
from .adapter import Batch, DataAdapter

#: Batches cut per ``Tensor.split`` call: one call instead of a slice per batch
#: per leaf, without holding a view object for every batch of a large array.
SPLIT_BATCHES = 256

DEFAULT_NAMES = {"x": "x", "y": "y", "sample_weight": "sample_weight"}


def is_array_leaf(value: Any) -> bool:
    """Leaves this adapter can slice: tensors, arrays and array-likes."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return True
    return hasattr(value, "__array__") and not isinstance(value, (str, bytes))


def is_array_structure(value: Any) -> bool:
    """True when every leaf of ``value`` is ``None`` or an array-like."""
    leaves = tree.flatten(value)
    return any(leaf is not None for leaf in leaves) and all(
        leaf is None or is_array_leaf(leaf) for leaf in leaves
    )


def to_tensor(value: Any, argument: str) -> Optional[torch.Tensor]:
    """One leaf as a CPU tensor, sharing memory with NumPy where possible."""
    if value is None or isinstance(value, torch.Tensor):
        return value
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind in "USV":
        raise TypeError(
            f"Argument `{argument}` must contain numeric arrays or tensors. "
            f"Received an array of dtype {array.dtype}."
        )
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.ascontiguousarray(array).copy()
    return torch.from_numpy(array)


def convert_structure(value: Any, argument: str) -> Any:
    return tree.map_structure(lambda leaf: to_tensor(leaf, argument), value)


def check_lengths(named: dict) -> int:
    """All leaves must share the first dimension; return it."""
    sizes = {}
    for name, structure in named.items():
        for leaf in tree.flatten(structure):
            if leaf is None:
                continue
            if leaf.ndim == 0:
                raise ValueError(
                    f"Argument `{name}` must hold arrays with a batch dimension. "
                    "Received a scalar (0-d) value."
                )
            sizes.setdefault(name, set()).add(int(leaf.shape[0]))
    distinct = set().union(*sizes.values()) if sizes else set()
    if len(distinct) > 1:
        detail = ", ".join(f"{n}: {sorted(s)}" for n, s in sizes.items())
        raise ValueError(
            "Data cardinality is ambiguous: all arrays of "
            f"{', '.join(f'`{n}`' for n in named)} must have the same number of samples. "
            f"Received sizes {detail}."
        )
    if not distinct:
        first = next(iter(named), "x")
        raise ValueError(f"Argument `{first}` must contain at least one array. Received none.")
    return distinct.pop()


def broadcast_sample_weight(y: Any, sample_weight: Any) -> Any:
    """One weight array for several outputs applies to each output."""
    if sample_weight is None or not tree.is_nested(y) or tree.is_nested(sample_weight):
        return sample_weight
    return tree.map_structure(lambda _: sample_weight, y)


def check_sample_weight_shape(sample_weight: Any, y: Any, argument: str = "sample_weight") -> None:
    """``sample_weight`` is (N,) or, for temporal targets, (N, T) matching y."""
    flat_w, flat_y = tree.flatten(sample_weight), tree.flatten(y)
    if len(flat_w) != len(flat_y):
        raise ValueError(
            f"Argument `{argument}` must have one array per output in the targets "
            f"({len(flat_y)}). Received {len(flat_w)} arrays."
        )
    for w, t in zip(flat_w, flat_y):
        if w is None:
            continue
        if w.ndim == 2 and w.shape[1] == 1:
            continue
        ok = w.ndim == 1 or (
            t is not None and w.ndim <= t.ndim and tuple(w.shape) == tuple(t.shape[: w.ndim])
        )
        if not ok:
            raise ValueError(
                f"Argument `{argument}` must have shape (samples,) or, for "
                "temporal data, (samples, sequence_length) matching `y`. "
                f"Received shape {tuple(w.shape)} for targets of shape "
                f"{None if t is None else tuple(t.shape)}."
            )


class ArrayDataAdapter(DataAdapter):
    """Slices whole batches out of in-memory tensors (no per-sample indexing).

    ``names`` maps ``"x"``, ``"y"`` and ``"sample_weight"`` to the argument
    names used in error messages (``validation_data`` reuses this adapter).
    """

    can_split = True

    def __init__(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        batch_size: Optional[int] = None,
        steps: Optional[int] = None,
        shuffle: bool | str = False,
        names: Optional[Dict[str, str]] = None,
    ) -> None:
        names = {**DEFAULT_NAMES, **(names or {})}
        self._x = convert_structure(x, names["x"])
        self._y = convert_structure(y, names["y"])
        self._sw = convert_structure(broadcast_sample_weight(y, sample_weight), names["sample_weight"])
        self._num_samples = check_lengths(
            {names["x"]: self._x, names["y"]: self._y, names["sample_weight"]: self._sw})
        if self._num_samples == 0:
            raise ValueError(
                f"Argument `{names['x']}` holds no samples: expected arrays with at least "
                "one row, received arrays of 0 rows."
            )
        if self._sw is not None:
            check_sample_weight_shape(self._sw, self._y, names["sample_weight"])
        if batch_size is None:
            batch_size = math.ceil(self._num_samples / steps) if steps else 32
        self._batch_size = int(batch_size)
        self._shuffle = shuffle

    @property
    def num_samples(self) -> int:
        return self._num_samples

    @property
    def num_batches(self) -> int:
        return math.ceil(self._num_samples / self._batch_size)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def arrays(self) -> Batch:
        return self._x, self._y, self._sw

    def _permutation(self) -> Optional[torch.Tensor]:
        """This epoch's sample order, or ``None`` for the stored order."""
        if not self._shuffle:
            return None
        if self._shuffle == "batch":
            # Keras's "batch": batches keep their place, samples are shuffled
            # inside each batch-sized chunk (for data read chunk by chunk).
            # Keys in [chunk, chunk + 1) sort chunk by chunk, randomly inside.
            chunk = torch.arange(self._num_samples, dtype=torch.float64) // self._batch_size
            return (chunk + torch.rand(self._num_samples, dtype=torch.float64)).argsort()
        return torch.randperm(self._num_samples)

    def _epoch_arrays(self) -> Batch:
        permutation = self._permutation()
        if permutation is None:
            return self.arrays
        # One gather per epoch, then batches are cheap contiguous views.
        return tree.map_structure(
            lambda t: None if t is None else t.index_select(0, permutation), self.arrays
        )

    @property
    def sliced_from(self) -> Batch:
        return self.arrays  # a shuffled epoch gathers them into same-typed copies

    def get_iterator(self) -> Iterator[Batch]:
        arrays = self._epoch_arrays()
        size = self._batch_size
        leaves = tree.flatten(arrays)
        flat = all(not tree.is_nested(part) for part in arrays)
        span = size * SPLIT_BATCHES
        for start in range(0, self._num_samples, span):
            # Views of the flat leaves, SPLIT_BATCHES batches per C call
            # (``split``), then the structure refilled: no copies.
            columns = [itertools.repeat(None) if t is None else t[start:start + span].split(size)
                       for t in leaves]
            for sliced in zip(*columns):
                yield sliced if flat else tree.pack_sequence_as(arrays, list(sliced))
