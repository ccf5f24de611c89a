"""Load Keras's own ``*_test.py`` files with their catalog imports redirected.

A Keras test file is read from the installed wheel, parsed, and every import
of a catalog module (``keras.src.losses``, ``metrics``, ``optimizers``,
``callbacks``, ``models``/``layers`` for the models the callbacks train, and
``testing`` for the test base class) is rewritten to the matching module of
``shims``, which serves torchfit's classes. Everything
else the file imports (``numpy``, ``keras.src.ops``, ``metrics_utils``...)
stays Keras's: on the torch backend ``ops`` are plain torch functions.

The file is then compiled under its own path, so tracebacks point into the
Keras source, and executed as a fresh module. Nothing of Keras's source is
copied into this repository.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
import types
from typing import Dict

import keras

#: Where Keras's sources (and its test files) are installed.
KERAS_SRC = os.path.join(os.path.dirname(keras.__file__), "src")

_SHIMS = f"{__package__}.shims"

#: ``from keras.src import NAME`` -> ``from <shims> import NAME``.
_REDIRECTED_NAMES = frozenset(
    {"losses", "metrics", "optimizers", "callbacks", "models", "layers",
     "testing", "backend"}
)

#: ``from keras.src.MODULE import ...`` -> ``from <shims>.<target> import ...``.
_REDIRECTED_MODULES: Dict[str, str] = {
    "keras.src.losses": "losses",
    "keras.src.losses.losses": "losses",
    "keras.src.losses.loss": "losses",
    "keras.src.metrics": "metrics",
    "keras.src.metrics.metric": "metrics",
    "keras.src.optimizers": "optimizers",
    "keras.src.optimizers.schedules": "schedules",
    "keras.src.optimizers.schedules.learning_rate_schedule": "schedules",
    "keras.src.callbacks": "callbacks",
    "keras.src.callbacks.callback": "callbacks",
    "keras.src.models": "models",
    "keras.src.models.sequential": "models",
    "keras.src.layers": "layers",
    "keras.src.testing": "testing",
    "conftest": "keras_conftest",
}

#: Sub-modules of a catalog package that Keras's tests import by name
#: (``from keras.src.metrics import accuracy_metrics``): all of them are
#: served by the package's shim.
_CATALOG_PACKAGES = {
    "keras.src.losses": "losses",
    "keras.src.metrics": "metrics",
    "keras.src.optimizers": "optimizers",
    "keras.src.callbacks": "callbacks",
}

#: Sub-modules that stay Keras's own (helpers the tests use on their side).
_KERAS_OWN = frozenset({"metrics_utils"})


#: Frameworks that Keras's test files import at the top for TF/JAX-only paths.
_OPTIONAL_FRAMEWORKS = frozenset({"tensorflow", "jax"})


#: TensorFlow modules whose names Keras's TensorBoard tests read event files
#: with: served by ``shims.tf_events`` (TensorBoard's reader) when TF is absent.
_EVENT_READING = frozenset({"tensorflow.python.lib.io", "tensorflow.core.util"})


def _is_absent_framework(name: str) -> bool:
    root = name.split(".")[0]
    return root in _OPTIONAL_FRAMEWORKS and importlib.util.find_spec(root) is None


class _RedirectImports(ast.NodeTransformer):
    """Rewrite the catalog imports of one Keras test file."""

    def visit_Import(self, node: ast.Import) -> ast.AST:
        # ``import keras``: the top-level namespace, with its catalog swapped.
        # ``import tensorflow as tf`` without TensorFlow: a placeholder.
        for alias in node.names:
            if alias.name == "keras" and alias.asname is None:
                alias.name, alias.asname = f"{_SHIMS}.keras_namespace", "keras"
            elif _is_absent_framework(alias.name):
                alias.asname = alias.asname or alias.name
                alias.name = f"{_SHIMS}.absent"
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        module = node.module or ""
        if _is_absent_framework(module):
            node.module = f"{_SHIMS}.{'tf_events' if module in _EVENT_READING else 'absent'}"
            return node
        if module == "keras.src":
            return self._split_package_import(node)
        if module in _CATALOG_PACKAGES:
            names = [a for a in node.names if a.name not in _KERAS_OWN]
            if len(names) == len(node.names):
                node.module = f"{_SHIMS}.{_CATALOG_PACKAGES[module]}"
            return node
        if module.startswith("keras.src.optimizers.") and module not in _REDIRECTED_MODULES:
            # ``from keras.src.optimizers.adam import Adam``.
            node.module = f"{_SHIMS}.optimizers"
            return node
        target = _REDIRECTED_MODULES.get(module)
        if target is not None:
            node.module = f"{_SHIMS}.{target}"
        return node

    def _split_package_import(self, node: ast.ImportFrom) -> ast.AST:
        """``from keras.src import losses, ops`` -> one import for each side."""
        ours = [a for a in node.names if a.name in _REDIRECTED_NAMES]
        theirs = [a for a in node.names if a.name not in _REDIRECTED_NAMES]
        nodes = []
        if ours:
            nodes.append(ast.ImportFrom(module=_SHIMS, names=ours, level=0))
        if theirs:
            nodes.append(ast.ImportFrom(module="keras.src", names=theirs, level=0))
        for new in nodes:
            ast.copy_location(new, node)
        return nodes if len(nodes) > 1 else nodes[0]


def load_keras_test_file(relative_path: str) -> types.ModuleType:
    """Import ``keras/src/<relative_path>`` with torchfit as its catalog."""
    path = os.path.join(KERAS_SRC, relative_path)
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), filename=path)
    tree = ast.fix_missing_locations(_RedirectImports().visit(tree))
    name = "keras_test_files." + relative_path[: -len(".py")].replace("/", ".")
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    exec(compile(tree, path, "exec"), module.__dict__)
    return module


def area_test_classes(area: str) -> Dict[str, type]:
    """The test classes of an area's Keras test files (``area`` is a folder
    under ``keras/src``), named ``<file stem>__<class>``."""
    classes = {}
    folder = os.path.join(KERAS_SRC, area)
    for file_name in sorted(os.listdir(folder)):
        if not file_name.endswith("_test.py"):
            continue
        relative_path = f"{area}/{file_name}"
        module = load_keras_test_file(relative_path)
        stem = os.path.basename(relative_path)[: -len("_test.py")]
        for attr, value in vars(module).items():
            if (
                isinstance(value, type)
                and attr.startswith(tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
                and value.__module__ == module.__name__
                and any(n.startswith("test") for n in vars(value))
            ):
                classes[f"{stem}__{attr}"] = value
    return classes
