"""``summary()`` output shapes recorded from the first batch the model runs."""

import re

import numpy as np
import pytest
import torch
from torch import nn

import torchfit

X = np.random.RandomState(0).rand(40, 6).astype("float32")
Y = (X[:, 0] > 0.5).astype("int64")


class Net(torchfit.KerasStyleModule, nn.Module):
    """Counts the forward hooks on ``head`` at every forward pass."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 5), nn.ReLU())
        self.head = nn.Linear(5, 2)
        self.unused = nn.Linear(2, 2)
        self.hooks_seen = []

    def forward(self, x):
        self.hooks_seen.append(len(self.head._forward_hooks))
        return self.head(self.body(x))


class TwoInputs(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 4)
        self.b = nn.Linear(3, 4)
        self.shared = nn.Linear(4, 4)

    def forward(self, left, right):
        return {"out": self.shared(self.a(left)) + self.shared(self.b(right)),
                "pair": (self.a(left), right)}


def table(model, **kwargs):
    lines = []
    model.summary(print_fn=lines.append, **kwargs)
    return lines[0]


def shape_of(text, row):
    match = re.search(rf"│ +{re.escape(row)} +│ (.*?) +│", text)
    assert match, (row, text)
    return match.group(1)


def compiled(model):
    model.compile(optimizer="sgd", loss=nn.CrossEntropyLoss())
    return model


@pytest.mark.parametrize("run", [
    lambda m: m.fit(X, Y, batch_size=8, epochs=2, verbose=0),
    lambda m: m.evaluate(X, Y, batch_size=8, verbose=0),
    lambda m: m.predict(X, batch_size=8, verbose=0),
    lambda m: m.train_on_batch(X[:8], Y[:8]),
    lambda m: m.test_on_batch(X[:8], Y[:8]),
    lambda m: m.predict_on_batch(X[:8]),
], ids=["fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "predict_on_batch"])
def test_first_batch_records_shapes_with_a_none_batch_dimension(run):
    model = compiled(Net())
    assert shape_of(table(model), "head (Linear)") == "?"
    run(model)
    text = table(model, expand_nested=True)
    assert shape_of(text, "body (Sequential)") == "(None, 5)"
    assert shape_of(text, "body.0 (Linear)") == "(None, 5)"
    assert shape_of(text, "head (Linear)") == "(None, 2)"
    assert shape_of(text, "unused (Linear)") == "-"  # not called by forward


def test_hooks_live_for_the_first_batch_only():
    model = compiled(Net())
    model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    assert model.hooks_seen[0] == 1 and model.hooks_seen[1:] == [0] * 9
    assert not model._forward_pre_hooks and not any(m._forward_hooks for m in model.modules())
    model.hooks_seen.clear()
    model.evaluate(X, Y, batch_size=8, verbose=0)
    assert model.hooks_seen == [0] * 5  # already recorded: no hooks at all


def test_a_failing_first_batch_removes_its_hooks_and_records_nothing():
    model = compiled(Net())
    with pytest.raises(Exception):
        model.train_on_batch(X[:8], np.full(8, 7))  # label 7 of 2 classes
    assert not any(m._forward_hooks for m in model.modules()) and not model._forward_pre_hooks
    assert shape_of(table(model), "head (Linear)") == "?"
    model.train_on_batch(X[:8], Y[:8])
    assert shape_of(table(model), "head (Linear)") == "(None, 2)"


def test_shapes_survive_recompiling_and_sample_input_wins():
    model = compiled(Net())
    model.predict(X, verbose=0)
    compiled(model)
    assert shape_of(table(model), "head (Linear)") == "(None, 2)"
    wider = nn.Linear(5, 7)
    model.head = wider
    model.hooks_seen.clear()
    assert shape_of(table(model, sample_input=X[:3]), "head (Linear)") == "(None, 7)"


def test_structured_inputs_outputs_and_shared_modules():
    model = TwoInputs()
    model.compile(optimizer="sgd", loss="mse")
    left, right = X[:, :6], X[:, :3]
    model.predict((left, right), batch_size=8, verbose=0)
    text = table(model, line_length=120)
    assert shape_of(text, "shared (Linear)") == "(None, 4)"
    assert shape_of(text, "a (Linear)") == "(None, 4)"


def test_keras_prints_the_same_shapes():
    keras = pytest.importorskip("keras")
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="relu")(inputs)
    kmodel = keras.Model(inputs, keras.layers.Dense(2)(hidden))
    lines = []
    kmodel.summary(print_fn=lambda line, **kwargs: lines.append(line))
    keras_text = "\n".join(lines)
    model = compiled(Net())
    model.fit(X, Y, batch_size=8, verbose=0)
    text = table(model, expand_nested=True)
    for shape in ("(None, 5)", "(None, 2)"):
        assert shape in keras_text and shape in text


def test_jit_compiled_steps_record_nothing(monkeypatch):
    import torchfit.module as module

    calls = []
    monkeypatch.setattr(module, "compile_step", lambda fn, *args: calls.append(fn) or (lambda d: fn(d)))
    model = compiled(Net())
    model.train_on_batch(X[:8], Y[:8])
    assert calls and shape_of(table(model), "head (Linear)") == "?"
    assert model.hooks_seen == [0]


def test_plain_modules_keep_question_marks():
    from torchfit.saving import summary

    lines = []
    summary(nn.Sequential(nn.Linear(2, 3)), print_fn=lines.append)
    assert shape_of(lines[0], "0 (Linear)") == "?"
    with torch.no_grad():
        lines.clear()
        summary(nn.Sequential(nn.Linear(2, 3)), print_fn=lines.append, sample_input=np.zeros((4, 2), "float32"))
    assert shape_of(lines[0], "0 (Linear)") == "(None, 3)"
