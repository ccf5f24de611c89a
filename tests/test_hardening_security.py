"""Hardening, part 4: torchfit's loaders never run code from a file unless told to.

Every ``torch.load`` in torchfit uses ``weights_only=True`` unless the caller
passes ``weights_only=False`` explicitly; no other unpickling (``pickle``,
``marshal``, ``eval``...) exists in the package. A malicious pickle is refused
by every loader, and a weights-only file cannot make torchfit import or call
code it names (compile configs name functions) unless ``custom_objects`` says so.
"""

from __future__ import annotations

import ast
import os
import pathlib
import sys

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import callbacks as tcb
from torchfit import saving

from test_hardening_bad_input import assert_unchanged, snapshot

PACKAGE = pathlib.Path(torchfit.__file__).parent
X = np.random.default_rng(2).normal(size=(12, 4)).astype("float32")
Y = np.arange(12) % 3


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


def trained():
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, Y, batch_size=4, verbose=0)
    return model


# ------------------------------------------------------------------ the source
def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = (f"{func.value.id}.{func.attr}" if isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Name) else getattr(func, "id", None))
            yield name, node


def _sources():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE), ast.parse(path.read_text(), filename=str(path))


def test_every_torch_load_in_torchfit_is_weights_only_by_default():
    found = []
    for path, tree in _sources():
        defaults = {}  # parameter defaults of the enclosing functions
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.args + node.args.kwonlyargs
                values = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
                values += node.args.kw_defaults
                for arg, default in zip(args, values):
                    if default is not None:
                        defaults[arg.arg] = default
        for name, call in _calls(tree):
            if name != "torch.load":
                continue
            found.append(f"{path}:{call.lineno}")
            keyword = {k.arg: k.value for k in call.keywords}.get("weights_only")
            assert keyword is not None, f"{path}:{call.lineno} torch.load without weights_only"
            if isinstance(keyword, ast.Name):  # a parameter: it must default to True
                default = defaults.get(keyword.id)
                assert isinstance(default, ast.Constant) and default.value is True, (
                    f"{path}:{call.lineno}: weights_only={keyword.id} does not default to True")
            else:
                assert isinstance(keyword, ast.Constant) and keyword.value is True, (
                    f"{path}:{call.lineno}: weights_only is not True")
    assert any(entry.startswith("saving") for entry in found)  # read_checkpoint's torch.load


def test_no_other_unpickling_or_code_evaluation_in_torchfit():
    forbidden = {"pickle.load", "pickle.loads", "pickle.Unpickler", "marshal.loads", "eval", "exec",
                 "dill.load", "dill.loads", "cloudpickle.load", "cloudpickle.loads", "shelve.open",
                 "numpy.load", "np.load", "yaml.load"}
    hits = [f"{path}:{call.lineno} {name}" for path, tree in _sources()
            for name, call in _calls(tree) if name in forbidden]
    assert hits == []


def test_the_loaders_read_files_through_read_checkpoint():
    """load_weights, load_model and BackupAndRestore all call read_checkpoint,
    whose weights_only defaults to True (the AST test above checks torch.load)."""
    users = {str(path) for path, tree in _sources() for name, _ in _calls(tree)
             if name in ("read_checkpoint", "saving.read_checkpoint", "files.read_checkpoint")}
    assert any(user.startswith("saving") for user in users)
    assert any(user.endswith("backup_and_restore.py") for user in users)


# --------------------------------------------------------- malicious pickles
class Payload:
    """Unpickling this runs ``open(marker, "w")``: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_malicious(path, marker, wrap):
    torch.save(wrap(Payload(marker)), path)


@pytest.mark.parametrize("wrap", [
    lambda p: p,                                                   # a bare object
    lambda p: {"fc.weight": p, "fc.bias": torch.zeros(3)},         # hidden in a state dict
    lambda p: {"format": "torchfit.model", "version": 1, "weights": {}, "model": p},
], ids=["object", "in-state-dict", "in-model-file"])
def test_a_malicious_pickle_is_refused_by_every_loader(tmp_path, wrap):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    write_malicious(path, marker, wrap)
    model = trained()
    before = snapshot(model)
    loaders = [
        lambda: model.load_weights(path),
        lambda: torchfit.load_model(path, model=model),
        lambda: saving.read_checkpoint(path),
    ]
    for load in loaders:
        with pytest.raises(ValueError, match="weights_only=False explicitly"):
            load()
        assert not marker.exists()
    with pytest.raises(ValueError, match="Argument `model` is required"):
        torchfit.load_model(path)  # without model= it needs weights_only=False, never implied
    with pytest.raises(TypeError, match="`weights_only` must be True or False"):
        torchfit.load_model(path, model=model, weights_only="False")
    assert not marker.exists()
    assert_unchanged(model, before)


def test_a_malicious_backup_is_refused_before_training(tmp_path):
    marker = tmp_path / "pwned"
    backup_dir = tmp_path / "backup"
    backup_dir.mkdir()
    write_malicious(backup_dir / "latest.pt", marker, lambda p: {"format": "torchfit.backup", "x": p})
    model = trained()
    before = snapshot(model)
    with pytest.raises(ValueError, match="weights_only=False explicitly"):
        model.fit(X, Y, verbose=0, callbacks=[tcb.BackupAndRestore(backup_dir)])
    assert not marker.exists()
    assert_unchanged(model, before)


# ---------------------------------------- weights-only files naming code
def _model_file_with_metric_fn(path, fn, model=None):
    model = model or trained()
    model.save(path)
    archive = torch.load(path, weights_only=True)
    archive["compile_config"]["metrics"] = [{
        "__torchfit__": "metric", "class_name": "MeanMetricWrapper",
        "config": {"name": "m", "dtype": "float32", "fn": fn}}]
    torch.save(archive, path)


@pytest.fixture
def side_effect_module(tmp_path, monkeypatch):
    """An importable module that leaves a marker when it is imported."""
    marker = tmp_path / "imported"
    (tmp_path / "evil_metrics_mod.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "def score(y_true, y_pred):\n    return (y_pred.argmax(-1) == y_true).float()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    sys.modules.pop("evil_metrics_mod", None)


def test_a_file_cannot_make_load_model_import_a_module(tmp_path, side_effect_module):
    path = tmp_path / "m.pt"
    _model_file_with_metric_fn(path, "evil_metrics_mod:score")
    model = Net()
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"'evil_metrics_mod:score', which is not allowed.*custom_objects=\{'score'"):
        torchfit.load_model(path, model=model)
    assert not side_effect_module.exists() and "evil_metrics_mod" not in sys.modules
    assert_unchanged(model, before)  # all or nothing: the weights were not kept either
    assert not model.compiled


@pytest.mark.parametrize("fn", ["torchfit.saving:os.system", "torchfit.saving:torch.load",
                                "torchfit.nope:f", "torchfit.losses:_FUNCTIONS"])
def test_a_file_cannot_reach_non_torchfit_functions_through_torchfit_modules(tmp_path, fn):
    path = tmp_path / "m.pt"
    _model_file_with_metric_fn(path, fn)
    with pytest.raises(ValueError, match="which is not allowed"):
        torchfit.load_model(path, model=Net())


def test_custom_objects_opt_in_to_a_function_named_by_the_file(tmp_path, side_effect_module):
    import importlib

    module = importlib.import_module("evil_metrics_mod")  # the user's own, trusted code
    path = tmp_path / "m.pt"
    model = Net()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=[torchfit.metrics.MeanMetricWrapper(module.score)])
    model.fit(X, Y, verbose=0)
    model.save(path)
    assert torch.load(path, weights_only=True)["compile_config"]["metrics"][0]["config"]["fn"] == \
        "evil_metrics_mod:score"
    restored = torchfit.load_model(path, model=Net(), custom_objects={"score": module.score})
    assert restored.compiled
    assert restored.evaluate(X, Y, verbose=0) == pytest.approx(model.evaluate(X, Y, verbose=0))


def test_torchfit_functions_named_by_a_file_still_load(tmp_path):
    model = Net()
    model.compile(optimizer="adam", loss="mse",
                  metrics=[torchfit.metrics.MeanMetricWrapper(torchfit.losses.mean_absolute_error)])
    target = np.eye(3, dtype="float32")[Y]
    model.fit(X, target, verbose=0)
    model.save(tmp_path / "m.pt")
    restored = torchfit.load_model(tmp_path / "m.pt", model=Net())
    assert restored.evaluate(X, target, verbose=0) == pytest.approx(model.evaluate(X, target, verbose=0))


@pytest.mark.parametrize("class_name", ["Optimizer", "lr_scheduler", "__class__", "nope"])
def test_a_file_naming_a_non_optimizer_torch_class_is_refused(tmp_path, class_name):
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), loss="sparse_categorical_crossentropy")
    model.fit(X, Y, verbose=0)
    model.save(tmp_path / "m.pt")
    archive = torch.load(tmp_path / "m.pt", weights_only=True)
    archive["compile_config"]["optimizer"]["class_name"] = class_name
    torch.save(archive, tmp_path / "m.pt")
    fresh = Net()
    before = snapshot(fresh)
    with pytest.raises(ValueError, match="torch optimizer .* which is not allowed"):
        torchfit.load_model(tmp_path / "m.pt", model=fresh)
    assert_unchanged(fresh, before)


def test_pickled_models_load_only_with_an_explicit_weights_only_false(tmp_path):
    model = trained()
    model.save(tmp_path / "m.pt", pickle_model=True)
    with pytest.raises(ValueError, match="weights_only=False explicitly"):
        torchfit.load_model(tmp_path / "m.pt", model=Net())
    restored = torchfit.load_model(tmp_path / "m.pt", weights_only=False)  # trusted: our own file
    assert isinstance(restored, Net)
    assert os.path.exists(tmp_path / "m.pt")
