"""Errors with context: torch losses refusing ``y``, and the model's forward failing."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchfit


def Net(features: int = 4, width: int = 1, activation=None) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Linear(features, width)] + ([activation] if activation is not None else [])
    return torchfit.keras_style(nn.Sequential(*layers))


def _data(rows=16, features=4):
    rng = np.random.default_rng(0)
    return rng.normal(size=(rows, features)).astype("float32"), rng.integers(0, 2, rows)


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_unchanged(model, before):
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_bce_with_flat_targets_names_shapes_and_fix():
    model = Net(activation=nn.Sigmoid())
    model.compile(optimizer="sgd", loss=nn.BCELoss())
    x, y = _data()
    before = _weights(model)
    with pytest.raises(ValueError) as info:
        model.fit(x, y.astype("float32"), verbose=0)
    text = str(info.value)
    assert "BCELoss" in text and "`y`" in text
    assert "(16,)" in text and "(16, 1)" in text and "float32" in text
    assert "reshape" in text
    assert info.value.__cause__ is not None  # torch's own error
    _assert_unchanged(model, before)


def test_bce_with_int64_targets_names_dtype_and_fix():
    model = Net(activation=nn.Sigmoid())
    model.compile(optimizer="sgd", loss=nn.BCELoss())
    x, y = _data()
    with pytest.raises(ValueError) as info:
        model.fit(x, y.reshape(-1, 1).astype("int64"), verbose=0)
    text = str(info.value)
    assert "torch.int64" in text and "y.float()" in text
    assert isinstance(info.value.__cause__, RuntimeError)


def test_functional_loss_error_has_context_too():
    model = Net()
    model.compile(optimizer="sgd", loss=F.binary_cross_entropy_with_logits)
    x, y = _data()
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits.*\(16,\)"):
        model.evaluate(x, y.astype("float32"), verbose=0)


def test_cross_entropy_with_float_class_indices_suggests_long():
    model = Net(width=3)
    model.compile(optimizer="sgd", loss=nn.CrossEntropyLoss())
    x, y = _data()
    with pytest.raises(ValueError, match=r"y\.long\(\)"):
        model.train_on_batch(x, y.astype("float32"))


def test_forward_error_notes_inputs_and_argument_x():
    model = Net(features=4)
    model.compile(optimizer="sgd", loss="mse")
    x, y = _data(features=5)
    before = _weights(model)
    with pytest.raises(RuntimeError, match="mat1 and mat2") as info:
        model.fit(x, y.astype("float32"), batch_size=8, verbose=0)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "argument `x`" in notes and "shape (8, 5) float32" in notes
    _assert_unchanged(model, before)


def test_forward_error_in_validation_names_validation_data():
    model = Net(features=4)
    model.compile(optimizer="sgd", loss="mse")
    x, y = _data()
    bad_x, _ = _data(features=6)
    with pytest.raises(RuntimeError) as info:
        model.fit(x, y.astype("float32"), validation_data=(bad_x, y.astype("float32")),
                  batch_size=8, verbose=0)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "argument `validation_data`" in notes and "shape (8, 6) float32" in notes


@pytest.mark.parametrize("method", ["evaluate", "predict", "predict_on_batch", "train_on_batch"])
def test_forward_error_notes_for_other_entry_points(method):
    model = Net(features=4)
    model.compile(optimizer="sgd", loss="mse")
    x, y = _data(features=3)
    args = (x,) if method.startswith("predict") else (x, y.astype("float32"))
    kwargs = {"verbose": 0} if method in ("evaluate", "predict") else {}
    with pytest.raises(RuntimeError) as info:
        getattr(model, method)(*args, **kwargs)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "argument `x`" in notes and "float32" in notes


def test_dict_inputs_are_described_by_key():
    class Two(torchfit.KerasStyleModule, nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 1)

        def forward(self, a, b):
            return self.linear(a) + self.linear(b)

    model = Two()
    model.compile(optimizer="sgd", loss="mse")
    x = {"a": np.zeros((4, 4), "float32"), "b": np.zeros((4, 2), "float32")}
    with pytest.raises(RuntimeError) as info:
        model.predict(x, verbose=0)
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "'a': shape (4, 4) float32" in notes and "'b': shape (4, 2) float32" in notes


def test_loss_errors_get_no_forward_note():
    model = Net(activation=nn.Sigmoid())
    model.compile(optimizer="sgd", loss=nn.BCELoss())
    x, y = _data()
    with pytest.raises(ValueError) as info:
        model.fit(x, y.astype("float32"), verbose=0)
    assert not getattr(info.value, "__notes__", [])
