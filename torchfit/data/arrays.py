"""NumPy arrays, torch tensors and array-likes, alone or in lists/tuples/dicts."""

from __future__ import annotations

import math
from typing import Any, Dict, Iterator, List, Optional, Union

import numpy as np
import torch

from .. import tree
from ..batch import Batch
from .adapter import DataAdapter

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


#: Upper bound on the bytes of one group of rows copied out of an array at a
#: time (a shuffled epoch's gather, or rows of an array read in place): memory
#: stays bounded by the group, not by the data.
GROUP_BYTES = 16 * 2**20

Leaf = Union[torch.Tensor, np.ndarray]


def _check_dense(value: torch.Tensor, argument: str) -> torch.Tensor:
    if value.layout != torch.strided:
        raise TypeError(
            f"Argument `{argument}` must hold dense tensors (torch.strided layout). Received a "
            f"tensor of layout {value.layout} with shape {tuple(value.shape)}; convert it "
            "with `.to_dense()` first (batches are cut by rows from dense storage)."
        )
    # Batches are slices: gathering them must not build a graph across steps
    # (nor accumulate .grad into the caller's tensor), as Keras's are data.
    return value.detach() if value.requires_grad else value


def to_leaf(value: Any, argument: str) -> Optional[Leaf]:
    """One leaf as a tensor (a NumPy array's memory shared where possible), or as
    the NumPy array itself.

    A NumPy array that cannot be shared as it is (read-only, e.g. memory-mapped
    with ``mmap_mode="r"``, or not C-contiguous, e.g. Fortran-ordered) stays a
    NumPy array: batches are then copied out of it group by group
    (:func:`rows_of`), never the whole array at once.
    """
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return _check_dense(value, argument)
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.dtype == object or array.dtype.kind in "USV":
        raise TypeError(
            f"Argument `{argument}` must contain numeric arrays or tensors. "
            f"Received an array of dtype {array.dtype}."
        )
    if not array.flags.writeable or not array.flags.c_contiguous:
        return array
    return torch.from_numpy(array)


def to_tensor(value: Any, argument: str) -> Optional[torch.Tensor]:
    """One leaf as a whole CPU tensor (see :func:`to_leaf`; arrays it keeps in place are copied once)."""
    leaf = to_leaf(value, argument)
    return leaf if leaf is None or isinstance(leaf, torch.Tensor) else rows_of(leaf, 0, len(leaf))


def rows_of(leaf: Leaf, start: int, stop: int) -> torch.Tensor:
    """Rows ``start:stop`` of a leaf as a tensor: a view of a tensor, a C-contiguous
    writable copy of just those rows of a NumPy array kept in place."""
    if isinstance(leaf, torch.Tensor):
        return leaf[start:stop]
    return torch.from_numpy(np.array(leaf[start:stop], order="C"))


def as_tensors(structure: Any) -> Any:
    """Every leaf of ``structure`` as a whole tensor (NumPy leaves read in place are copied)."""
    return tree.map_structure(lambda t: None if t is None else rows_of(t, 0, len(t)), structure)


def gather_rows(leaf: Leaf, index: torch.Tensor) -> torch.Tensor:
    """The rows at ``index`` (in that order) as a new tensor.

    CPU data is gathered with ``np.take``: on a group of rows it runs at memory
    speed, where ``Tensor.index_select`` with a short index into a long tensor
    is many times slower.
    """
    if isinstance(leaf, torch.Tensor):
        if leaf.device.type != "cpu":
            return leaf.index_select(0, index.to(leaf.device))
        try:
            leaf = leaf.numpy()
        except (TypeError, RuntimeError):  # dtypes NumPy lacks (bfloat16, float8), conj views
            return leaf.index_select(0, index)
    return torch.from_numpy(np.take(leaf, index.numpy(), axis=0))


def group_rows(leaves: List[Any], batch_size: int) -> int:
    """Rows per group: whole batches, at most ``SPLIT_BATCHES`` of them and at
    most ``GROUP_BYTES`` (at least one batch)."""
    row_bytes = sum(leaf[:1].nbytes if isinstance(leaf, np.ndarray) else
                    leaf[:1].numel() * leaf.element_size() for leaf in leaves if leaf is not None)
    batches = min(SPLIT_BATCHES, GROUP_BYTES // max(1, row_bytes * batch_size))
    return batch_size * max(1, batches)


def convert_structure(value: Any, argument: str) -> Any:
    """Every leaf as a whole CPU tensor (:func:`to_tensor`)."""
    return tree.map_structure(lambda leaf: to_tensor(leaf, argument), value)


def convert_leaves(value: Any, argument: str) -> Any:
    """Every leaf as a tensor or an array read in place (:func:`to_leaf`): no copies."""
    return tree.map_structure(lambda leaf: to_leaf(leaf, argument), value)


def check_string_keys(value: Any, argument: str) -> None:
    """A dict ``x`` is passed as keyword arguments (``model(**x)``): its keys must be names."""
    if not isinstance(value, dict):
        return
    bad = [key for key in value if not isinstance(key, str)]
    if bad:
        raise TypeError(
            f"Argument `{argument}` is a dict, so its keys must be strings (they become the "
            f"model's keyword arguments). Received keys {bad[:5]!r} of type "
            f"{type(bad[0]).__name__}."
        )


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

    Arrays it cannot share as tensors (read-only or non-C-contiguous NumPy
    arrays) are read in place, a bounded group of rows at a time; a shuffled
    epoch gathers its rows group by group too (``GROUP_BYTES``), so no input is
    ever copied whole.

    ``names`` maps ``"x"``, ``"y"`` and ``"sample_weight"`` to the argument
    names used in error messages (``validation_data`` reuses this adapter).
    """

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
        check_string_keys(x, names["x"])
        self._x = convert_leaves(x, names["x"])
        self._y = convert_leaves(y, names["y"])
        self._sw = convert_leaves(broadcast_sample_weight(y, sample_weight), names["sample_weight"])
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
        """``(x, y, sample_weight)``: tensors, or NumPy arrays read in place (see :func:`rows_of`)."""
        return self._x, self._y, self._sw

    def whole_batch(self) -> Batch:
        """Every sample as one batch of tensors (for the ``*_on_batch`` methods)."""
        return as_tensors(self.arrays)

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

    @property
    def sliced_from(self) -> Batch:
        return self.arrays  # every batch is rows of these, as tensors of the same dtypes

    def get_iterator(self) -> Iterator[Batch]:
        permutation = self._permutation()  # drawn when the pass starts, as before
        arrays = self.arrays
        size = self._batch_size
        leaves = tree.flatten(arrays)
        flat = all(not tree.is_nested(part) for part in arrays)
        span = group_rows(leaves, size)
        for start in range(0, self._num_samples, span):
            # One group of rows per leaf (views, or a bounded copy: a shuffled
            # gather or rows of an array read in place), cut into batches by
            # one ``split`` call, then the structure refilled.
            stop = min(start + span, self._num_samples)
            index = None if permutation is None else permutation[start:stop]
            columns = [[None] * math.ceil((stop - start) / size) if t is None
                       else (rows_of(t, start, stop) if index is None else gather_rows(t, index)).split(size)
                       for t in leaves]
            for sliced in zip(*columns):
                yield sliced if flat else tree.pack_sequence_as(arrays, list(sliced))
