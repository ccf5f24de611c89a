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
from typing import Dict, FrozenSet, Iterator, List, Optional, Set, Tuple

import torchfit

ROOT = Path(torchfit.__file__).resolve().parent

#: Today's cycles (strongly connected modules), each held by function-level
#: imports. Shrink only.
KNOWN_CYCLES: Set[FrozenSet[str]] = set()

#: (importing module, imported module) for every function-level import of a
#: torchfit module. Shrink only: each one is needed to break a cycle (the
#: import points up a layer) or to keep an optional dependency lazy.
KNOWN_FUNCTION_IMPORTS: Set[Tuple[str, str]] = {
    ("torchfit.testing", "torchfit.testing.pytest_plugin"),  # imports pytest: lazy
}


#: ARCHITECTURE.md's layers, lowest first: a module may import its own layer or
#: a lower one. The longest matching prefix decides (``torchfit.distributed`` is
#: a component, its ``session`` module belongs to the loop layer).
LAYERS: List[Tuple[str, Tuple[str, ...]]] = [
    ("leaves", ("torchfit.tree", "torchfit.logs", "torchfit.validation", "torchfit.batch",
                "torchfit.naming", "torchfit.name_gate", "torchfit.state",
                "torchfit.utils.training_mode")),
    ("components", ("torchfit.data", "torchfit.metrics", "torchfit.losses", "torchfit.optimizers",
                    "torchfit.precision", "torchfit.compilation", "torchfit.torch_loss",
                    "torchfit.compile_utils", "torchfit.summary", "torchfit.distributed",
                    "torchfit.utils")),
    ("saving", ("torchfit.saving",)),
    ("callbacks", ("torchfit.callbacks",)),
    ("loop", ("torchfit.loop", "torchfit.distributed.session")),
    ("module", ("torchfit.module", "torchfit.keras_style")),
    ("top", ("torchfit.__init__", "torchfit.testing")),
]

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


def layer_of(module: str) -> Optional[int]:
    """The index in ``LAYERS`` of a module (None: not placed in any layer)."""
    if module == "torchfit":
        module = "torchfit.__init__"
    best: Optional[Tuple[int, int]] = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                    best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def upward_imports(edges: Dict[str, Set[str]]) -> List[str]:
    """Every import that points to a higher layer than its importer's."""
    found = []
    for module, targets in sorted(edges.items()):
        for target in sorted(targets):
            low, high = layer_of(module), layer_of(target)
            if low is not None and high is not None and high > low:
                found.append(f"{module} ({LAYERS[low][0]}) imports {target} ({LAYERS[high][0]})")
    return found


def test_every_module_has_a_layer():
    unplaced = sorted(name for name in _module_names() if layer_of(name) is None)
    assert not unplaced, (
        f"Modules in no layer: {unplaced}. Add each to LAYERS here and to ARCHITECTURE.md.")


def test_imports_point_down_the_layers():
    edges, _ = import_graph()
    upward = upward_imports(edges)
    assert not upward, (
        f"Imports pointing up the layers of ARCHITECTURE.md: {upward}. Move the shared piece "
        "down, or hand the higher object to the lower one (as module.py registers keras_style).")


def test_an_upward_import_is_found():
    edges = {"torchfit.saving.files": {"torchfit.module", "torchfit.tree"},
             "torchfit.loop": {"torchfit.distributed.session", "torchfit.callbacks"},
             "torchfit.distributed.strategies": {"torchfit.distributed.session"}}
    assert upward_imports(edges) == [
        "torchfit.distributed.strategies (components) imports torchfit.distributed.session (loop)",
        "torchfit.saving.files (saving) imports torchfit.module (module)"]
    assert layer_of("torchfit") == layer_of("torchfit.testing.assertions") == len(LAYERS) - 1
    assert layer_of("torchfit.elsewhere") is None
