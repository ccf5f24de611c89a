"""The training state (``torchfit/state.py``): one owner, parts by lifetime.

Only ``module.py``, ``state.py`` and ``loop.py`` touch the private attribute;
everything else goes through ``state.of(model)``. ``compile`` replaces the
compiled part only; each fit/evaluate/predict runs in a ``RunState`` owned by
its ``Loop``, through which the loop and callbacks exchange the data position
and the resume point."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import state as training_state
from torchfit.data.epoch_iterator import EpochIterator, ResumePoint

sys.path.insert(0, str(Path(__file__).parent))
from twins import MLP  # noqa: E402

ROOT = Path(torchfit.__file__).resolve().parent
OWNERS = {"module.py", "state.py", "loop.py"}


def _private_uses(path: Path):
    """Lines of ``path`` that name the private attribute (as an attribute or a string)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == training_state.ATTRIBUTE:
            yield node.lineno
        elif isinstance(node, ast.Constant) and node.value == training_state.ATTRIBUTE:
            yield node.lineno
        elif (isinstance(node, ast.Attribute) and node.attr == "ATTRIBUTE"
              and getattr(node.value, "id", None) in ("state", "training_state")):
            yield node.lineno


def test_only_the_owners_touch_the_private_attribute():
    found = {str(path.relative_to(ROOT)): lines for path in sorted(ROOT.rglob("*.py"))
             if path.name not in OWNERS or path.parent != ROOT
             for lines in [list(_private_uses(path))] if lines}
    assert found == {}


def test_the_scan_finds_each_way_of_touching_it(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("a = m._torchfit\nb = m.__dict__['_torchfit']\nc = getattr(m, '_torchfit')\n"
                      "d = m.__dict__[training_state.ATTRIBUTE]\n")
    assert sorted(_private_uses(sample)) == [1, 2, 3, 4]


def Net():
    return MLP([3, 1])


X = np.random.default_rng(0).normal(size=(16, 3)).astype("float32")
Y = X.sum(axis=1, keepdims=True)


def _compiled():
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_of_returns_the_state_of_keras_style_models_only():
    model = Net()
    found = training_state.of(model)
    assert isinstance(found, training_state.TrainingState)
    assert training_state.of(model) is found
    assert training_state.of(nn.Linear(2, 2)) is None
    assert training_state.of(None) is None


def test_compile_replaces_the_compiled_part_only():
    model = _compiled()
    model.nan_policy = "raise"
    model.input_nan_policy = "warn"
    model.dtype_policy = "float32"
    history = model.fit(X, Y, epochs=1, verbose=0)
    found = training_state.of(model)
    settings, run, first = found.settings, found.run, found.compiled
    model.compile(optimizer="adam", loss="mae")
    assert training_state.of(model) is found
    assert found.settings is settings and found.run is run
    assert found.compiled is not first and found.compiled.loss == "mae"
    assert (model.nan_policy, model.input_nan_policy, model.history) == ("raise", "warn", history)
    assert found.settings.output_shapes is not None  # recorded by the first fit, kept


def test_each_run_has_its_own_run_state_and_flags_stay_readable_after_it():
    model = _compiled()
    seen = []

    class Stop(torchfit.Callback):
        def on_train_batch_end(self, batch, logs=None):
            run = training_state.of(self.model).run
            seen.append((run, run.active, run.train_iterator))
            self.model.stop_training = True

    before = training_state.of(model).run
    model.fit(X, Y, epochs=3, batch_size=4, verbose=0, callbacks=[Stop()])
    run, active, iterator = seen[0]
    assert len(seen) == 1 and run is not before and active
    assert isinstance(iterator, EpochIterator)
    assert training_state.of(model).run is run and not run.active
    assert run.train_iterator is None  # only while fit runs
    assert model.stop_training is True  # as on a Keras model after EarlyStopping
    model.fit(X, Y, epochs=1, verbose=0)
    assert training_state.of(model).run is not run and model.stop_training is False


def test_evaluate_from_a_callback_joins_the_running_fit():
    model = _compiled()
    runs = []

    class Probe(torchfit.Callback):
        def on_epoch_end(self, epoch, logs=None):
            runs.append(training_state.of(self.model).run)
            self.model.evaluate(X, Y, verbose=0)
            runs.append(training_state.of(self.model).run)

    model.fit(X, Y, epochs=1, verbose=0, callbacks=[Probe()])
    assert runs[0] is runs[1]


def test_a_callback_hands_the_loop_a_resume_point_through_the_run_state():
    model = _compiled()
    positioned = []

    class Resume(torchfit.Callback):
        def on_train_begin(self, logs=None):
            training_state.of(self.model).run.resume_point = ResumePoint(
                epoch=1, step=2, on_positioned=lambda: positioned.append(1))

    history = model.fit(X, Y, epochs=2, batch_size=4, verbose=0, callbacks=[Resume()])
    assert positioned == [1]
    assert list(history.epoch) == [1]
    assert training_state.of(model).run.resume_point is None  # taken by the loop


def test_snapshot_and_restore_undo_a_compile():
    model = _compiled()
    model.nan_policy = "skip"
    saved = training_state.snapshot(model)
    optimizer = model.optimizer
    model.compile(optimizer="adam", loss="mae")
    model.nan_policy = None
    training_state.restore(model, saved)
    assert model.optimizer is optimizer and model.loss == "mse" and model.nan_policy == "skip"

    plain = Net()
    plain.__dict__.pop(training_state.ATTRIBUTE, None)
    assert training_state.snapshot(plain) is None
    plain.compile(optimizer="sgd", loss="mse")
    training_state.restore(plain, None)
    assert not plain.compiled


def test_copies_and_pickles_leave_the_state_behind():
    import copy

    model = _compiled()
    clone = copy.deepcopy(model)
    assert training_state.of(clone) is not training_state.of(model)
    assert not clone.compiled
    with pytest.raises(ValueError, match="compile"):
        clone.fit(X, Y, verbose=0)


@pytest.mark.skipif(sys.version_info < (3, 10), reason="dataclass slots need Python 3.10")
def test_the_parts_hold_declared_fields_only():
    found = training_state.of(_compiled())
    for part in (found, found.settings, found.compiled, found.run):
        with pytest.raises(AttributeError):
            part.undeclared = 1
