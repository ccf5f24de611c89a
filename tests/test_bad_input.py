"""Bad input fails at the door with a TypeError/ValueError naming the argument,
the expectation and what was received, and the weights stay untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import torchfit


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self, out=3):
        super().__init__()
        self.fc = nn.Linear(4, out)

    def forward(self, x):
        return self.fc(x)


X = np.random.default_rng(0).normal(size=(10, 4)).astype("float32")
Y_SPARSE = np.arange(10) % 3
Y_ONEHOT = np.eye(3, dtype="float32")[Y_SPARSE]


@pytest.fixture
def model():
    m = Net()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def snapshot(model):
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    opt = model.optimizer.state_dict() if model.compiled and model.optimizer is not None else None
    return weights, repr(opt)


def assert_unchanged(model, snap):
    weights, opt = snap
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]), key
    if opt is not None:
        assert repr(model.optimizer.state_dict()) == opt


@pytest.mark.parametrize("method", ["fit", "evaluate", "train_on_batch", "test_on_batch"])
def test_methods_before_compile(method):
    m = Net()
    with pytest.raises(ValueError, match=r"compile\(\).*" + method):
        getattr(m, method)(X, Y_SPARSE)


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(optimizer="adamm"), ValueError, ["optimizer", "adamm"]),
    (dict(optimizer=3), TypeError, ["optimizer"]),
    (dict(loss="msee"), ValueError, ["loss", "msee"]),
    (dict(loss="mse", metrics=["acuracy"]), ValueError, ["metrics", "acuracy"]),
    (dict(loss="mse", weighted_metrics=["nope"]), ValueError, ["weighted_metrics", "nope"]),
    (dict(loss="mse", metrics=[3]), TypeError, ["metrics", "int"]),
    (dict(loss="mse", loss_weights="x"), TypeError, ["loss_weights", "str"]),
    (dict(loss="mse", run_eagerly="yes"), TypeError, ["run_eagerly", "yes"]),
    (dict(loss="mse", steps_per_execution=0), ValueError, ["steps_per_execution", "0"]),
    (dict(loss="mse", steps_per_execution=1.5), TypeError, ["steps_per_execution", "1.5"]),
    (dict(loss="mse", jit_compile="fast"), ValueError, ["jit_compile", "fast"]),
    (dict(loss="mse", auto_scale_loss=None), TypeError, ["auto_scale_loss", "None"]),
    (dict(optimizer=None, loss="mse"), ValueError, ["optimizer", "None"]),
])
def test_compile_rejects(kwargs, error, words):
    m = Net()
    with pytest.raises(error) as info:
        m.compile(**kwargs)
    for word in words:
        assert word in str(info.value)
    assert not m.compiled


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(x=X, y=Y_SPARSE[:7]), ValueError, ["sizes", "7", "10"]),
    (dict(x=X, y=Y_SPARSE, batch_size=0), ValueError, ["batch_size", "0"]),
    (dict(x=X, y=Y_SPARSE, batch_size=-3), ValueError, ["batch_size", "-3"]),
    (dict(x=X, y=Y_SPARSE, batch_size=2.5), TypeError, ["batch_size", "2.5"]),
    (dict(x=X, y=Y_SPARSE, epochs=-1), ValueError, ["epochs", "-1"]),
    (dict(x=X, y=Y_SPARSE, epochs="3"), TypeError, ["epochs", "'3'"]),
    (dict(x=X, y=Y_SPARSE, validation_split=1.0), ValueError, ["validation_split", "1.0"]),
    (dict(x=X, y=Y_SPARSE, validation_split=-0.1), ValueError, ["validation_split", "-0.1"]),
    (dict(x=X, y=Y_SPARSE, validation_split="0.2"), TypeError, ["validation_split", "'0.2'"]),
    (dict(x=X, y=Y_SPARSE, verbose=3), ValueError, ["verbose", "3"]),
    (dict(x=X, y=Y_SPARSE, validation_freq=0), ValueError, ["validation_freq", "0"]),
    (dict(x=X, y=Y_SPARSE, shuffle="yes"), TypeError, ["shuffle", "yes"]),
    (dict(x=X, y=Y_SPARSE, class_weight={0: 1.0, 7: 2.0}), ValueError, ["class_weight", "[7]"]),
    (dict(x=X, y=Y_SPARSE, class_weight=[1.0, 2.0]), TypeError, ["class_weight", "list"]),
    (dict(x=X, y=Y_SPARSE, class_weight={"a": 1.0}), ValueError, ["class_weight", "'a'"]),
    (dict(x=X, y=Y_SPARSE, sample_weight=np.ones(7)), ValueError, ["sizes", "7"]),
    (dict(x=X, y=Y_SPARSE, sample_weight=np.ones((10, 3, 2))), ValueError, ["sample_weight", "(10, 3, 2)"]),
    (dict(x=X, y=Y_SPARSE, sample_weight=np.ones(10), class_weight={0: 1.0}), ValueError,
     ["sample_weight", "class_weight"]),
    (dict(x=X, y=Y_ONEHOT), ValueError, ["y", "sparse_categorical_crossentropy", "(10, 3)"]),
    (dict(x=X, y=Y_SPARSE + 5), ValueError, ["y", "class indices", "[0, 2]"]),
    (dict(x=X, y=None), ValueError, ["y", "None"]),
    (dict(x=None, y=Y_SPARSE), ValueError, ["x", "None"]),
    (dict(x="data", y=Y_SPARSE), TypeError, ["x", "str"]),
    (dict(x=np.array(["a"] * 10), y=Y_SPARSE), TypeError, ["x", "dtype"]),
    (dict(x=X, y=Y_SPARSE, validation_data=(X,)), ValueError, ["validation_data", "length 1"]),
    (dict(x=X, y=Y_SPARSE, callbacks=["cb"]), TypeError, ["callbacks", "str"]),
    (dict(x=X, y=Y_SPARSE, initial_epoch=-1), ValueError, ["initial_epoch", "-1"]),
    (dict(x=X, y=Y_SPARSE, steps_per_epoch=0), ValueError, ["steps_per_epoch", "0"]),
])
def test_fit_rejects_before_any_weight_changes(model, kwargs, error, words):
    snap = snapshot(model)
    kwargs.setdefault("verbose", 0)
    with pytest.raises(error) as info:
        model.fit(**kwargs)
    for word in words:
        assert word in str(info.value), str(info.value)
    assert_unchanged(model, snap)


def test_y_with_a_dataloader_or_generator(model):
    loader = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(Y_SPARSE)), batch_size=4)
    with pytest.raises(ValueError, match="`y` must be None when `x` is a DataLoader"):
        model.fit(loader, Y_SPARSE, verbose=0)
    with pytest.raises(ValueError, match="`batch_size` must be None"):
        model.fit(loader, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="`y` must be None when `x` is a generator"):
        model.fit((b for b in [(X, Y_SPARSE)]), Y_SPARSE, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(loader, validation_split=0.2, verbose=0)


def test_unknown_kwargs_to_evaluate(model):
    with pytest.raises(TypeError, match="unexpected keyword arguments.*bogus"):
        model.evaluate(X, Y_SPARSE, bogus=1)


def test_on_batch_rejects_non_arrays(model):
    with pytest.raises(TypeError, match="array-like"):
        model.train_on_batch(iter([(X, Y_SPARSE)]))


def test_failing_forward_midway_leaves_weights_and_optimizer_as_after_last_step(model):
    class Boom(torchfit.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 2:
                self.model.fc.register_forward_hook(lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))

    steps = []

    class Snap(torchfit.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append(snapshot(self.model))

    with pytest.raises(RuntimeError, match="boom"):
        model.fit(X, Y_SPARSE, batch_size=2, callbacks=[Snap(), Boom()], verbose=0)
    assert len(steps) == 2
    assert_unchanged(model, steps[-1])


def test_failing_metric_update_leaves_weights_untouched(model):
    def broken_metric(y_true, y_pred):
        raise RuntimeError("metric exploded")

    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=[broken_metric])
    snap = snapshot(model)
    with pytest.raises(RuntimeError, match="metric exploded"):
        model.fit(X, Y_SPARSE, verbose=0)
    assert_unchanged(model, snap)


def test_multi_output_loss_structure_errors():
    from twins import TwoHead

    m = TwoHead()
    m.compile(loss={"a": "mse", "c": "mse"})
    with pytest.raises(ValueError, match=r"`loss` has keys \['c'\]"):
        m.fit(X[:, :4].repeat(2, axis=1)[:, :6], {"a": np.ones((10, 1)), "b": Y_SPARSE}, verbose=0)
    m.compile(loss=["mse", "mse", "mse"])
    with pytest.raises(ValueError, match="`loss` must have one entry per model output"):
        m.fit(np.ones((10, 6), "float32"), [np.ones((10, 1)), Y_ONEHOT], verbose=0)
