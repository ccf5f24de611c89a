"""Sphinx configuration for torchfit's documentation.

Build: ``pip install -e '.[docs]' && sphinx-build -W -b html docs docs/_build/html``.

The API reference (``api.rst``) is generated at build time from the ``__all__``
lists of torchfit's public namespaces: the line ``.. torchfit-api-reference::``
in that page is replaced by ``autoclass``/``autofunction``/``autodata``
directives, one per public object, so a new public object appears without
editing the docs. An object re-exported by several namespaces (``torchfit.Callback``
is ``torchfit.callbacks.Callback``) is documented once, in the most specific
namespace that exports it (the one whose package defines it, else the deepest).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import types
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import torchfit  # noqa: E402

project = "torchfit"
author = "torchfit contributors"
copyright = "torchfit contributors"
release = version = torchfit.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

API_PLACEHOLDER = ".. torchfit-api-reference::"

# Public namespaces that torchfit.__all__ does not list as modules.
EXTRA_NAMESPACES = ["torchfit.utils", "torchfit.distributed"]


def public_namespaces() -> List[Tuple[types.ModuleType, List[str]]]:
    """``[(module, names it is reachable under)]``: torchfit first, then its public
    submodules (those in ``torchfit.__all__`` and ``EXTRA_NAMESPACES``), sorted."""
    found: Dict[str, Tuple[types.ModuleType, List[str]]] = {}
    for name in torchfit.__all__:
        value = getattr(torchfit, name)
        if isinstance(value, types.ModuleType):
            found.setdefault(value.__name__, (value, []))[1].append(f"torchfit.{name}")
    for dotted in EXTRA_NAMESPACES:
        module = importlib.import_module(dotted)
        found.setdefault(module.__name__, (module, []))[1].append(dotted)
    return [(torchfit, ["torchfit"])] + [found[key] for key in sorted(found)]


def _has_doc_comment(module_name: str, name: str) -> bool:
    """Whether ``name`` has a ``#:`` comment or a docstring below it in its module."""
    from sphinx.pycode import ModuleAnalyzer

    try:
        return ("", name) in ModuleAnalyzer.for_module(module_name).find_attr_docs()
    except Exception:  # no source available
        return False


def _directive(module_name: str, name: str, value: object) -> List[str]:
    target = f"{module_name}.{name}"
    if inspect.isclass(value):
        return [f".. autoclass:: {target}", "   :members:", "   :show-inheritance:", ""]
    if inspect.isroutine(value):
        return [f".. autofunction:: {target}", ""]
    if _has_doc_comment(module_name, name):
        return [f".. autodata:: {target}", "   :no-value:", ""]
    # Without a doc comment autodoc would show the docstring of the value's type.
    return [f".. py:data:: {target}", f"   :type: {type(value).__name__}", ""]


def api_reference() -> str:
    namespaces = public_namespaces()
    # Owner of each object: the namespace whose package defines it, else the deepest one.
    candidates: Dict[int, List[Tuple[Tuple[bool, int], str, str]]] = {}
    for module, _ in namespaces:
        for name in getattr(module, "__all__", []):
            value = getattr(module, name)
            if isinstance(value, types.ModuleType):
                continue
            home = getattr(value, "__module__", None) or ""
            is_home = home == module.__name__ or home.startswith(module.__name__ + ".")
            is_home = is_home and module is not torchfit
            rank = (is_home, module.__name__.count("."))
            candidates.setdefault(id(value), []).append((rank, module.__name__, name))
    owner: Dict[int, Tuple[str, str]] = {}
    aliases: Dict[int, List[str]] = {}
    for key, found in candidates.items():
        best = max(found, key=lambda item: item[0])  # max keeps the first of equals
        owner[key] = (best[1], best[2])
        aliases[key] = [f"{m}.{n}" for _, m, n in found if (m, n) != owner[key]]

    lines: List[str] = []
    for module, names in namespaces:
        title = module.__name__
        lines += [title, "-" * len(title), ""]
        others = [n for n in names if n != module.__name__]
        if others:
            lines += ["Also reachable as " + ", ".join(f"``{n}``" for n in others) + ".", ""]
        lines += [f".. automodule:: {module.__name__}", "   :no-members:", ""]
        for name in getattr(module, "__all__", []):
            value = getattr(module, name)
            if isinstance(value, types.ModuleType) or owner.get(id(value)) != (module.__name__, name):
                continue
            lines += _directive(module.__name__, name, value)
            other_names = sorted(set(aliases.get(id(value), [])))
            if other_names:
                lines += ["   Also exported as " + ", ".join(f"``{n}``" for n in other_names) + ".", ""]
    return "\n".join(lines)


def _insert_api_reference(app, docname: str, source: List[str]) -> None:
    if API_PLACEHOLDER in source[0]:
        source[0] = source[0].replace(API_PLACEHOLDER, api_reference())


def setup(app):
    app.connect("source-read", _insert_api_reference)
    return {"parallel_read_safe": True}
