"""The one walker over nested structures: ``x``, ``y``, weights, outputs, batches.

A structure is leaves (tensors, arrays, ``None``, anything else) inside lists,
tuples and dicts. The rules, the same for every caller, follow ``keras.tree``:

* **namedtuples** (and other tuple/list subclasses) are structures: walked
  like tuples and rebuilt as their own type (``P(a=..., b=...)`` stays a
  ``P``). Only ``unpack_x_y_sample_weight`` refuses a namedtuple, and only as
  a whole batch, where ``(x, y, sample_weight)`` by position is ambiguous.
* **dicts** (subclasses included) are flattened in sorted key order, so the
  flat order of an output dict does not depend on insertion order; every
  dict that is rebuilt keeps its type and the caller's key order.
* **None** is a leaf: ``flatten`` keeps it, ``map_structure`` passes it to ``fn``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List

__all__ = ["is_nested", "is_namedtuple", "flatten", "map_structure", "pack_sequence_as",
           "first_leaf"]


def is_nested(structure: Any) -> bool:
    """True for lists, tuples (namedtuples included) and dicts."""
    return isinstance(structure, (list, tuple, dict))


def is_namedtuple(value: Any) -> bool:
    """A ``collections.namedtuple``/``typing.NamedTuple`` instance."""
    return isinstance(value, tuple) and hasattr(value, "_fields")


def _children(structure: Any) -> list:
    """Direct children in flat order (dict values by sorted key)."""
    if isinstance(structure, dict):
        return [structure[k] for k in sorted(structure)]
    return list(structure)


def _rebuild(template: Any, children: list) -> Any:
    """``template``'s container refilled with ``children`` (given in flat order)."""
    if isinstance(template, dict):
        by_key = dict(zip(sorted(template), children))
        rebuilt = {k: by_key[k] for k in template}  # keep the caller's key order
        return rebuilt if type(template) is dict else type(template)(rebuilt.items())
    if is_namedtuple(template):
        return type(template)(*children)
    return type(template)(children)


def flatten(structure: Any) -> List[Any]:
    """Leaves of ``structure`` in a fixed order (``None`` leaves included)."""
    if not is_nested(structure):
        return [structure]
    leaves: List[Any] = []
    for child in _children(structure):
        leaves.extend(flatten(child))
    return leaves


def _map_one(fn: Callable[[Any], Any], structure: Any) -> Any:
    """``map_structure`` over one structure. Runs on every batch (device
    placement), so the plain containers are rebuilt without the general path."""
    if not isinstance(structure, (list, tuple, dict)):
        return fn(structure)
    kind = type(structure)
    if kind is tuple:
        return tuple([_map_one(fn, child) for child in structure])
    if kind is list:
        return [_map_one(fn, child) for child in structure]
    if kind is dict:
        return {key: _map_one(fn, value) for key, value in structure.items()}
    if isinstance(structure, dict):
        return kind((key, _map_one(fn, value)) for key, value in structure.items())
    return _rebuild(structure, [_map_one(fn, child) for child in structure])


def _check_same_kind(structure: Any, other: Any) -> None:
    if isinstance(structure, dict):
        if not isinstance(other, dict) or set(other) != set(structure):
            raise ValueError(
                f"Structures do not match: expected a dict with keys {sorted(structure)}, "
                f"received {sorted(other) if isinstance(other, dict) else type(other).__name__}.")
    elif not isinstance(other, (list, tuple)) or len(other) != len(structure):
        raise ValueError(
            "Structures do not match: expected a sequence of length "
            f"{len(structure)}, received {type(other).__name__}."
        )


def map_structure(fn: Callable[..., Any], structure: Any, *others: Any) -> Any:
    """Apply ``fn`` leaf-wise over ``structure`` (and structures shaped like it,
    whose leaves become ``fn``'s further arguments); the result has
    ``structure``'s containers."""
    if not others:
        return _map_one(fn, structure)
    if not is_nested(structure):
        return fn(structure, *others)
    for other in others:
        _check_same_kind(structure, other)
    columns = [_children(structure)] + [_children(other) for other in others]
    return _rebuild(structure, [map_structure(fn, *parts) for parts in zip(*columns)])


def _pack(template: Any, values: Iterator[Any]) -> Any:
    if not is_nested(template):
        return next(values)
    return _rebuild(template, [_pack(child, values) for child in _children(template)])


def pack_sequence_as(template: Any, flat: List[Any]) -> Any:
    """Inverse of :func:`flatten`: refill ``template``'s shape from ``flat``."""
    flat = list(flat)
    expected = len(flatten(template))
    if len(flat) != expected:
        raise ValueError(
            f"Cannot pack {len(flat)} values into a structure with {expected} leaves."
        )
    return _pack(template, iter(flat))


def first_leaf(structure: Any) -> Any:
    """The first non-``None`` leaf, or ``None``."""
    for leaf in flatten(structure):
        if leaf is not None:
            return leaf
    return None
