"""Import layers, enforced: no new import cycle among torchfit's modules and
no new function-level import of a torchfit module (see ARCHITECTURE.md).

Every module is parsed with ``ast`` (nothing is imported). An import inside a
function counts as an edge too: it only postpones the cycle to the first call.
Both lists below are ratchets: an entry that no longer matches the code makes
the test fail as well, so they can only shrink. To remove a cycle, move the
shared piece down a layer; never add an entry to make the test pass.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, FrozenSet, Iterator, List, Set, Tuple

import torchfit

ROOT = Path(torchfit.__file__).resolve().parent

#: Today's cycles (strongly connected modules), each held by function-level
#: imports. Shrink only.
KNOWN_CYCLES: Set[FrozenSet[str]] = {
    # saving reaches up to module (load_model wraps and compiles),
    # BackupAndRestore and ModelCheckpoint save through saving,
    # distributed/__init__ imports session (which needs callbacks),
    # keras_style <-> module.
    frozenset({
        "torchfit.callbacks", "torchfit.callbacks.backup_and_restore",
        "torchfit.callbacks.model_checkpoint", "torchfit.distributed",
        "torchfit.distributed.session", "torchfit.keras_style", "torchfit.loop",
        "torchfit.module", "torchfit.saving", "torchfit.saving.model_file",
    }),
    # MeanMetricWrapper resolves stored function names through the package.
    frozenset({
        "torchfit.metrics", "torchfit.metrics.accuracy_metrics",
        "torchfit.metrics.correlation_metrics", "torchfit.metrics.hinge_metrics",
        "torchfit.metrics.probabilistic_metrics", "torchfit.metrics.reduction_metrics",
        "torchfit.metrics.regression_metrics",
    }),
    # The wrapper optimizers (de)serialize their inner optimizers through the package.
    frozenset({
        "torchfit.optimizers", "torchfit.optimizers.loss_scale_optimizer",
        "torchfit.optimizers.multi_optimizer",
    }),
}

#: (importing module, imported module) for every function-level import of a
#: torchfit module. Shrink only: each one is needed to break a cycle (the
#: import points up a layer) or to keep an optional dependency lazy.
KNOWN_FUNCTION_IMPORTS: Set[Tuple[str, str]] = {
    ("torchfit.distributed.session", "torchfit.callbacks"),  # callbacks -> distributed package
    ("torchfit.metrics.reduction_metrics", "torchfit.metrics"),  # package being built
    ("torchfit.optimizers.loss_scale_optimizer", "torchfit.optimizers"),  # package imports it
    ("torchfit.optimizers.multi_optimizer", "torchfit.optimizers"),  # package imports it
    ("torchfit.saving.model_file", "torchfit.module"),  # load_model wraps and compiles
    ("torchfit.testing", "torchfit.testing.pytest_plugin"),  # imports pytest: lazy
}


def _module_names() -> Dict[str, Path]:
    """``torchfit.x.y`` -> its file, for every module of the package."""
    names = {}
    for path in ROOT.rglob("*.py"):
        parts = ("torchfit",) + path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def _imported(module: str, is_package: bool, node: ast.AST, known: Dict[str, Path]) -> Iterator[str]:
    """The torchfit modules one import statement loads (the nearest known parent
    for ``from package import name``, the submodule where ``name`` is one)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = _absolute(module, is_package, node)
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                   for alias in node.names]
    for target in targets:
        while target not in known and "." in target:
            target = target.rsplit(".", 1)[0]
        if target in known and target != module:
            yield target


def _function_nodes(tree: ast.AST) -> Set[int]:
    """ids of every node inside a function body (its imports run on call)."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            inside.update(id(sub) for sub in ast.walk(node) if sub is not node)
    return inside


def import_graph() -> Tuple[Dict[str, Set[str]], Set[Tuple[str, str]]]:
    """All import edges between torchfit modules, and the function-level ones."""
    known = _module_names()
    edges: Dict[str, Set[str]] = defaultdict(set)
    function_level: Set[Tuple[str, str]] = set()
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        inside = _function_nodes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _imported(module, path.name == "__init__.py", node, known):
                edges[module].add(target)
                if id(node) in inside:
                    function_level.add((module, target))
    return edges, function_level


def cycles(edges: Dict[str, Set[str]]) -> Set[FrozenSet[str]]:
    """The strongly connected groups of two or more modules (iterative Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: Set[FrozenSet[str]] = set()
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.add(frozenset(group))
    return found


def _names(groups: Set[FrozenSet[str]]) -> List[List[str]]:
    return sorted(sorted(group) for group in groups)


def test_no_new_import_cycle():
    edges, _ = import_graph()
    found = cycles(edges)
    new = found - KNOWN_CYCLES
    assert not new, (
        f"New or grown import cycle(s) among torchfit modules: {_names(new)}. Imports must "
        "point down the layers of ARCHITECTURE.md; move the shared piece to a lower module.")
    gone = KNOWN_CYCLES - found
    assert not gone, (
        f"These KNOWN_CYCLES no longer exist as listed: {_names(gone)}. Remove (or shrink) "
        "them in tests/test_import_layers.py so they cannot come back.")


def test_no_new_function_level_import():
    _, function_level = import_graph()
    new = sorted(function_level - KNOWN_FUNCTION_IMPORTS)
    assert not new, (
        f"New function-level import(s) of torchfit modules: {new}. Import at module level; "
        "a function-level import is only for breaking a cycle or keeping an optional "
        "dependency lazy, and then it goes into KNOWN_FUNCTION_IMPORTS with the reason.")
    gone = sorted(KNOWN_FUNCTION_IMPORTS - function_level)
    assert not gone, (
        f"These KNOWN_FUNCTION_IMPORTS are gone: {gone}. Remove them from "
        "tests/test_import_layers.py so they cannot come back.")


def test_the_graph_sees_relative_and_function_level_imports(tmp_path, monkeypatch):
    """The parser itself: a two-module package with one cycle closed inside a function."""
    package = tmp_path / "torchfit"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from . import a\n")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", package)
    edges, function_level = import_graph()
    assert function_level == {("torchfit.sub.b", "torchfit.a")}
    assert cycles(edges) == {frozenset({"torchfit.a", "torchfit.sub.b"})}
