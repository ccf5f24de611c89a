"""Nested-structure helpers used everywhere torchfit walks ``x``/``y``/weights.

Structures are tensors (or any leaf) inside lists, tuples and dicts. Dicts are
flattened in sorted key order, like Keras's tree utilities, so the flat order
of an output dict does not depend on insertion order.
"""

from __future__ import annotations

from typing import Any, Callable, List

__all__ = ["is_nested", "flatten", "map_structure", "pack_sequence_as", "first_leaf"]


def is_nested(structure: Any) -> bool:
    """True for lists, tuples (namedtuples included) and dicts."""
    return isinstance(structure, (list, tuple, dict))


def _children(structure: Any) -> list:
    if isinstance(structure, dict):
        return [structure[k] for k in sorted(structure)]
    return list(structure)


def flatten(structure: Any) -> List[Any]:
    """Leaves of ``structure`` in a fixed order (``None`` leaves included)."""
    if not is_nested(structure):
        return [structure]
    leaves: List[Any] = []
    for child in _children(structure):
        leaves.extend(flatten(child))
    return leaves


def _rebuild(template: Any, children: list) -> Any:
    if isinstance(template, dict):
        by_key = dict(zip(sorted(template), children))
        rebuilt = {k: by_key[k] for k in template}  # keep the caller's key order
        return rebuilt if type(template) is dict else type(template)(rebuilt.items())
    if isinstance(template, tuple) and hasattr(template, "_fields"):
        return type(template)(*children)
    return type(template)(children)


def map_structure(fn: Callable[..., Any], structure: Any, *others: Any) -> Any:
    """Apply ``fn`` leaf-wise over ``structure`` and structures shaped like it."""
    if not is_nested(structure):
        return fn(structure, *others)
    if isinstance(structure, dict):
        keys = sorted(structure)
        children = [
            map_structure(fn, structure[k], *(o[k] for o in others)) for k in keys
        ]
    else:
        for other in others:
            if not is_nested(other) or len(other) != len(structure):
                raise ValueError(
                    "Structures do not match: expected a sequence of length "
                    f"{len(structure)}, received {type(other).__name__}."
                )
        children = [
            map_structure(fn, child, *(o[i] for o in others))
            for i, child in enumerate(structure)
        ]
    return _rebuild(structure, children)


def pack_sequence_as(template: Any, flat: List[Any]) -> Any:
    """Inverse of :func:`flatten`: refill ``template``'s shape from ``flat``."""
    flat = list(flat)
    if len(flat) != len(flatten(template)):
        raise ValueError(
            f"Cannot pack {len(flat)} values into a structure with "
            f"{len(flatten(template))} leaves."
        )
    iterator = iter(flat)
    return map_structure(lambda _: next(iterator), template)


def first_leaf(structure: Any) -> Any:
    """The first non-``None`` leaf, or ``None``."""
    for leaf in flatten(structure):
        if leaf is not None:
            return leaf
    return None
