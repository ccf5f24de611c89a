"""Loading never imports or runs what a file names (issue 15, part 1).

A module with an import-time side effect (it writes a marker file) sits on
``sys.path``; files name it, in every form and through every route that reads
names from a file. The marker never appears, the module is never imported,
the call raises a ValueError saying the name is not allowed and how to pass
it through ``custom_objects``, and the model is left as it was.
"""

from __future__ import annotations

import ast
import pathlib
import sys
import types
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import callbacks as tcb
from torchfit import losses, metrics, name_gate, optimizers, saving
from torchfit.optimizers import schedules

from test_hardening_bad_input import assert_unchanged, snapshot
from test_hardening_security import Net

X = np.random.default_rng(3).normal(size=(12, 4)).astype("float32")
Y = np.arange(12) % 3
EVIL = "evil_gate_mod"
NOT_ALLOWED = r"which is not allowed.*custom_objects=\{"


@pytest.fixture
def marker(tmp_path, monkeypatch):
    """The path the evil module writes when it is imported."""
    path = tmp_path / "imported"
    (tmp_path / f"{EVIL}.py").write_text(
        f"open({str(path)!r}, 'w').close()\n"
        "def score(y_true, y_pred):\n    return y_pred.sum(-1)\n"
        "class Loss:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield path
    sys.modules.pop(EVIL, None)


def assert_not_imported(marker):
    assert not marker.exists(), "the module named by the file was imported"
    assert EVIL not in sys.modules


def saved_model(path, fit=True, **compile_kwargs):
    torch.manual_seed(0)
    model = Net()
    compile_kwargs.setdefault("optimizer", "adam")
    compile_kwargs.setdefault("loss", "sparse_categorical_crossentropy")
    model.compile(**compile_kwargs)
    if fit:
        model.fit(X, Y, batch_size=4, verbose=0)
    model.save(path)
    return torch.load(path, weights_only=True)


def sgd_schedule(name, module):
    return {"kind": "torchfit", "class_name": "SGD", "config": {
        "learning_rate": {"module": module, "class_name": name, "config": {}}}}


# Each edit puts a name of the evil module into a saved compile config.
EDITS = {
    "metric-fn-colon": lambda c: c.update(metrics=[{"__torchfit__": "metric", "class_name": "MeanMetricWrapper",
                                                  "config": {"name": "m", "fn": f"{EVIL}:score"}}]),
    "metric-fn-dotted": lambda c: c.update(metrics=[{"__torchfit__": "metric", "class_name": "MeanMetricWrapper",
                                                   "config": {"name": "m", "fn": f"{EVIL}.score"}}]),
    "metric-fn-module": lambda c: c.update(metrics=[{"__torchfit__": "metric", "class_name": "MeanMetricWrapper",
                                                   "config": {"name": "m", "fn": EVIL}}]),
    "metric-fn-keras-dict": lambda c: c.update(metrics=[{
        "__torchfit__": "metric", "class_name": "MeanMetricWrapper",
        "config": {"name": "m", "fn": {"module": EVIL, "class_name": "function", "config": "score"}}}]),
    "metric-class": lambda c: c.update(metrics=[{"__torchfit__": "metric", "class_name": f"{EVIL}.Score",
                                               "config": {}}]),
    "loss-class": lambda c: c.update(loss={"__torchfit__": "loss", "module": EVIL,
                                           "class_name": f"{EVIL}:Loss", "config": {}}),
    "loss-function": lambda c: c.update(loss={"__torchfit__": "loss", "module": EVIL,
                                              "class_name": "function", "config": f"{EVIL}:score"}),
    "loss-wrapper-fn": lambda c: c.update(loss={"__torchfit__": "loss", "class_name": "LossFunctionWrapper",
                                                "config": {"fn": f"{EVIL}:score", "name": "l"}}),
    "torch-loss": lambda c: c.update(loss={"__torch__": "loss", "class_name": f"{EVIL}.Loss", "config": {}}),
    "torch-function": lambda c: c.update(loss={"__torch__": "function", "name": f"{EVIL}.score"}),
    "torchmetrics": lambda c: c.update(metrics=[{"__torchmetrics__": f"{EVIL}.Metric", "config": {}}]),
    "custom": lambda c: c.update(loss={"__custom__": "loss", "name": f"{EVIL}.score", "instance": False,
                                       "config": None}),
    "torchfit-optimizer": lambda c: c.update(optimizer={"kind": "torchfit", "class_name": f"{EVIL}.Opt",
                                                        "config": {}}),
    "torch-optimizer": lambda c: c.update(optimizer={"kind": "torch", "class_name": f"{EVIL}:Opt",
                                                     "defaults": {}, "groups": []}),
    "schedule-module": lambda c: c.update(optimizer=sgd_schedule("Sched", EVIL)),
    "schedule-keras-path": lambda c: c.update(optimizer=sgd_schedule(f"{EVIL}.Sched", "keras.src.evil")),
    "schedule-torchfit-path": lambda c: c.update(optimizer=sgd_schedule("atomic_save", "torchfit.saving")),
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_load_model_never_imports_a_name_from_the_file(tmp_path, marker, edit):
    path = tmp_path / "m.pt"
    archive = saved_model(path)
    EDITS[edit](archive["compile_config"])
    torch.save(archive, path)
    model = Net()
    before = snapshot(model)
    with pytest.raises(ValueError, match=NOT_ALLOWED):
        torchfit.load_model(path, model=model)
    assert_not_imported(marker)
    assert_unchanged(model, before)
    assert not model.compiled


def test_a_module_named_as_a_schedule_module_is_not_imported_for_a_known_class(tmp_path, marker):
    """The class name is looked up in torchfit's catalog; the module is never read."""
    path = tmp_path / "m.pt"
    archive = saved_model(path)
    archive["compile_config"]["optimizer"] = sgd_schedule("ExponentialDecay", EVIL)
    archive["compile_config"]["optimizer"]["config"]["learning_rate"]["config"] = {
        "initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}
    archive["optimizer"] = None
    torch.save(archive, path)
    model = torchfit.load_model(path, model=Net())
    assert isinstance(model.optimizer.learning_rate_schedule if hasattr(
        model.optimizer, "learning_rate_schedule") else model.optimizer._lr_schedule,
        schedules.ExponentialDecay)
    assert_not_imported(marker)


@pytest.mark.parametrize("call", [
    lambda: metrics.deserialize({"class_name": "MeanMetricWrapper", "config": {"fn": f"{EVIL}:score"}}),
    lambda: metrics.MeanMetricWrapper.from_config({"fn": f"{EVIL}:score"}),
    lambda: metrics.get({"class_name": "MeanMetricWrapper", "config": {"fn": f"{EVIL}.score"}}),
    lambda: losses.LossFunctionWrapper.from_config({"fn": f"{EVIL}:score"}),
    lambda: losses.deserialize({"class_name": "LossFunctionWrapper", "config": {"fn": f"{EVIL}:score"}}),
    lambda: optimizers.deserialize({"class_name": "SGD", "config": {"learning_rate": {
        "module": EVIL, "class_name": "Sched", "config": {}}}}),
    lambda: optimizers.SGD.from_config({"learning_rate": {"module": f"torchfit.{EVIL}",
                                                          "class_name": f"{EVIL}.Sched", "config": {}}}),
], ids=["metrics.deserialize", "MeanMetricWrapper.from_config", "metrics.get",
        "LossFunctionWrapper.from_config", "losses.deserialize", "optimizers.deserialize",
        "Optimizer.from_config"])
def test_the_catalog_deserializers_never_import_a_name(marker, call):
    with pytest.raises(ValueError, match="which is not allowed"):
        call()
    assert_not_imported(marker)


def test_custom_objects_let_the_callers_own_objects_in(tmp_path, marker):
    class Halving(schedules.LearningRateSchedule):
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, step):
            return self.rate / 2

        def get_config(self):
            return {"rate": self.rate}

    path = tmp_path / "m.pt"
    archive = saved_model(path)
    archive["compile_config"]["optimizer"] = sgd_schedule("Halving", EVIL)
    archive["compile_config"]["optimizer"]["config"]["learning_rate"]["config"] = {"rate": 0.2}
    archive["optimizer"] = None
    torch.save(archive, path)
    model = torchfit.load_model(path, model=Net(), custom_objects={"Halving": Halving})
    assert model.optimizer.learning_rate == pytest.approx(0.1)
    assert_not_imported(marker)


def test_a_named_user_loss_comes_back_only_through_custom_objects(tmp_path):
    def my_loss(y_true, y_pred):
        return nn.functional.cross_entropy(y_pred, y_true.long(), reduction="none")

    my_loss.__qualname__ = "my_loss"  # a module-level function of the user's
    path = tmp_path / "m.pt"
    archive = saved_model(path, loss=my_loss)
    assert archive["compile_config"]["loss"]["__custom__"] == "loss"
    with pytest.raises(ValueError, match=r"custom_objects=\{'my_loss': <the custom loss>\}"):
        torchfit.load_model(path, model=Net())
    model = torchfit.load_model(path, model=Net(), custom_objects={"my_loss": my_loss})
    assert model.compiled and model.loss is my_loss


# ------------------------------------------------------------- jit_compile
UNSAFE_JIT = {"mode": "max-autotune", "fullgraph": True, "backend": EVIL,
              "options": {"cpp.cxx": ("/bin/sh",)}, "disable": False}


def test_jit_compile_options_are_never_written(tmp_path):
    unsafe = {k: v for k, v in UNSAFE_JIT.items() if k != "mode"}  # torch: mode or options
    archive = saved_model(tmp_path / "m.pt", fit=False, jit_compile=unsafe)
    assert archive["compile_config"]["jit_compile"] == {"fullgraph": True}


@pytest.mark.parametrize("saved, restored", [
    (UNSAFE_JIT, {"mode": "max-autotune", "fullgraph": True}),
    ({"options": {"cpp.cxx": ("/bin/sh",)}}, {}),
    ({"mode": "/bin/sh", "dynamic": "yes"}, {}),
    (f"{EVIL}.backend", "auto"),
])
def test_jit_compile_from_a_file_keeps_only_the_allow_list(tmp_path, marker, saved, restored):
    path = tmp_path / "m.pt"
    archive = saved_model(path)
    archive["compile_config"]["jit_compile"] = saved
    torch.save(archive, path)
    with pytest.warns(UserWarning, match="were not restored"):
        model = torchfit.load_model(path, model=Net())
    assert model.jit_compile == restored
    assert_not_imported(marker)


@pytest.mark.parametrize("value", [True, False, "auto", {"mode": "default", "dynamic": None}])
def test_safe_jit_compile_values_come_back_silently(tmp_path, value):
    path = tmp_path / "m.pt"
    archive = saved_model(path)
    archive["compile_config"]["jit_compile"] = value  # not fitted: nothing is compiled
    torch.save(archive, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = torchfit.load_model(path, model=Net())
    assert model.jit_compile == value


# ------------------------------------------------ pickled globals, every reader
def write_file_naming_the_module(path, wrap):
    """A torch file whose pickle refers to ``evil_gate_mod.score`` (the module is
    faked in ``sys.modules`` while writing, so it is never really imported)."""
    fake = types.ModuleType(EVIL)

    def score(y_true, y_pred):
        return y_pred

    score.__module__, score.__qualname__ = EVIL, "score"
    fake.score = score
    sys.modules[EVIL] = fake
    try:
        torch.save(wrap(score), path)
    finally:
        del sys.modules[EVIL]


READERS = {
    "read_checkpoint": lambda path, model: saving.read_checkpoint(path),
    "load_weights": lambda path, model: model.load_weights(path),
    "load_model": lambda path, model: torchfit.load_model(path, model=model),
    "BackupAndRestore": lambda path, model: model.fit(
        X, Y, verbose=0, callbacks=[tcb.BackupAndRestore(path.parent)]),
}


@pytest.mark.parametrize("reader", list(READERS), ids=list(READERS))
def test_a_pickled_global_is_refused_by_every_reader(tmp_path, marker, reader):
    path = tmp_path / "latest.pt"
    write_file_naming_the_module(path, lambda fn: {
        "format": "torchfit.backup" if reader == "BackupAndRestore" else "torchfit.model",
        "version": 1, "weights": {"fc.weight": torch.zeros(3, 4), "fc.bias": torch.zeros(3)},
        "compile_config": {"loss": fn}})
    model = Net()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    before = snapshot(model)
    with pytest.raises(ValueError, match=f"weights_only=False explicitly.*GLOBAL {EVIL}.score"):
        READERS[reader](path, model)
    assert_not_imported(marker)
    assert_unchanged(model, before)


def test_torch_lr_schedulers_resolve_by_name_only(marker):
    allowed = saving.torch_lr_schedulers()
    assert allowed["StepLR"] is torch.optim.lr_scheduler.StepLR
    assert allowed["ReduceLROnPlateau"] is torch.optim.lr_scheduler.ReduceLROnPlateau
    assert "LRScheduler" not in allowed and "Optimizer" not in allowed
    assert name_gate.resolve("OneCycleLR", allowed, None, "torch LR scheduler") is \
        torch.optim.lr_scheduler.OneCycleLR
    for name in (f"{EVIL}.Sched", f"torch.optim.lr_scheduler:{EVIL}", "LRScheduler"):
        with pytest.raises(ValueError, match=NOT_ALLOWED):
            name_gate.resolve(name, allowed, None, "torch LR scheduler")
    assert_not_imported(marker)


def test_no_loader_can_import_by_name():
    """``importlib``/``__import__`` appear only in ``torchfit.testing``'s lazy
    attribute lookup (its own constant submodule names), never on a path that
    reads files."""
    import ast
    import pathlib

    package = pathlib.Path(torchfit.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom))
                     else [node.id] if isinstance(node, ast.Name) else [])
            if any(name in ("importlib", "__import__", "import_module") for name in names):
                found.append(str(path.relative_to(package)))
    assert sorted(set(found)) == ["testing/__init__.py"]
