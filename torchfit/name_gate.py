"""The one way a name read from a file becomes a Python object.

Loading never imports or runs code that a file names. A string from a file
(a class name, a ``"module:qualname"`` function path, a Keras or torchfit
module path...) resolves only to

* an object of torchfit's own catalogs (losses, metrics, optimizers,
  schedules, the allow-listed torch classes), found by a dictionary lookup
  in a registry built from imported code, never by ``importlib`` or
  ``getattr`` on a module; or
* an object the caller passes in ``custom_objects``.

Anything else is a ``ValueError`` that says the name is not allowed and
what to pass in ``custom_objects``. This module is a leaf: the registries
are handed in by the components that own them.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional


def short_name(name: str) -> str:
    """The key a user would write in ``custom_objects`` for ``name``: the last
    part of ``"module:qualname"`` / ``"module.attr"`` / ``"Class.method"``."""
    return name.rpartition(":")[2].rpartition(".")[2] or name


def candidate_keys(name: str) -> Iterable[str]:
    """The ``custom_objects`` keys that may hold ``name``: the whole name, its
    qualified name (after ``":"``) and its last part, in that order."""
    qualname = name.rpartition(":")[2]
    seen = []
    for key in (name, qualname, short_name(name)):
        if key and key not in seen:
            seen.append(key)
    return seen


def not_allowed(name: Any, what: str, source: str = "The file") -> ValueError:
    """The error for a name that neither a registry nor ``custom_objects`` holds."""
    key = short_name(name) if isinstance(name, str) else repr(name)
    return ValueError(
        f"{source} names the {what} {name!r}, which is not allowed: loading never imports "
        "or runs code named by a file, and resolves only torchfit's registered names and "
        f"objects given in `custom_objects`. If you trust it, pass it as "
        f"custom_objects={{{key!r}: <the {what}>}}."
    )


def resolve(name: Any, registry: Mapping[str, Any], custom_objects: Optional[Mapping[str, Any]],
            what: str, source: str = "The file") -> Any:
    """``custom_objects`` first (by whole name, qualified name or last part),
    then ``registry`` (exact key); else :func:`not_allowed`."""
    if not isinstance(name, str):
        raise not_allowed(name, what, source)
    custom = custom_objects or {}
    for key in candidate_keys(name):
        if key in custom:
            return custom[key]
    if name in registry:
        return registry[name]
    raise not_allowed(name, what, source)
