"""``torchfit/batch.py``: the helpers one batch needs, where they used to be
importable from, and the data arguments of ``fit`` checked once."""

import collections

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import batch as batch_module
from torchfit import validation

Out = collections.namedtuple("Out", ["logits", "aux"])


def test_old_import_paths_name_the_same_objects():
    from torchfit import data, distributed, loop, module
    from torchfit.data import adapter

    for name in ("model_device_and_dtype", "move_to", "is_placed", "batch_size_of", "concat_outputs",
                 "check_output_rows", "run_step", "note_forward_error", "describe_inputs"):
        assert getattr(loop, name) is getattr(batch_module, name)
    assert module.call_model is batch_module.call_model
    assert distributed.ROUTES is batch_module.ROUTES
    for name in ("pack_x_y_sample_weight", "unpack_x_y_sample_weight", "Batch"):
        assert getattr(data, name) is getattr(batch_module, name)
        assert getattr(adapter, name) is getattr(batch_module, name)


def test_move_to_places_every_leaf_and_keeps_the_structure():
    device = torch.device("cpu")
    batch = ({"b": np.ones((2, 2)), "a": torch.zeros(2, dtype=torch.int32)}, [None, "text"])
    placed = batch_module.move_to(batch, device, torch.float16)
    assert list(placed[0]) == ["b", "a"] and placed[1] == [None, "text"]
    assert placed[0]["b"].dtype == torch.float16 and placed[0]["a"].dtype == torch.int32
    assert batch_module.is_placed((placed[0], None), device, torch.float16)
    assert not batch_module.is_placed((batch[0], None), device, torch.float16)
    tensor = torch.ones(3)
    assert batch_module.move_to(tensor, device, torch.float32) is tensor


def test_pack_and_unpack_follow_keras():
    x, y, w = torch.ones(2), torch.zeros(2), torch.ones(2)
    assert batch_module.unpack_x_y_sample_weight(batch_module.pack_x_y_sample_weight(x, y, w)) == (x, y, w)
    assert batch_module.pack_x_y_sample_weight((x, y)) == ((x, y),)
    assert batch_module.unpack_x_y_sample_weight([x, y]) == (x, y, None)
    assert batch_module.unpack_x_y_sample_weight({"a": x}) == ({"a": x}, None, None)
    with pytest.raises(ValueError, match="namedtuple is ambiguous"):
        batch_module.unpack_x_y_sample_weight(Out(x, y))
    with pytest.raises(ValueError, match="tuple of length 4"):
        batch_module.unpack_x_y_sample_weight((x, y, w, w))


def test_batch_size_and_concatenated_namedtuple_outputs():
    assert batch_module.batch_size_of(({"a": torch.ones(5, 2)}, torch.ones(5))) == 5
    assert batch_module.batch_size_of(torch.tensor(1.0)) == 1
    outputs = [Out(torch.ones(2, 3), {"k": torch.zeros(2)}), Out(torch.ones(1, 3), {"k": torch.ones(1)})]
    joined = batch_module.concat_outputs(outputs)
    assert type(joined) is Out and joined.logits.shape == (3, 3)
    np.testing.assert_array_equal(joined.aux["k"], [0.0, 0.0, 1.0])


class TupleNet(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.Linear(3, 2)

    def forward(self, x):
        out = self.dense(x)
        return Out(out, out.sum(-1))


def test_predict_returns_namedtuple_outputs_as_their_type():
    model = TupleNet()
    model.compile("sgd", loss=["mse", "mse"])
    out = model.predict(np.ones((5, 3), "float32"), batch_size=2, verbose=0)
    assert type(out) is Out and out.logits.shape == (5, 2) and out.aux.shape == (5,)


def test_fit_checks_each_data_argument_once(monkeypatch):
    """``fit`` checks its arguments; the loop builds adapters without checking them again."""
    seen = []
    original = validation.check_int

    def counting(value, name, *args, **kwargs):
        seen.append(name)
        return original(value, name, *args, **kwargs)

    monkeypatch.setattr(validation, "check_int", counting)
    monkeypatch.setattr(torchfit.data, "check_int", counting)
    model = torchfit.keras_style(nn.Linear(3, 1))
    model.compile("sgd", loss="mse")
    x, y = np.ones((8, 3), "float32"), np.ones((8, 1), "float32")
    model.fit(x, y, batch_size=4, validation_data=(x, y), validation_batch_size=4, verbose=0)
    for name in ("batch_size", "steps_per_epoch", "validation_batch_size", "validation_steps"):
        assert seen.count(name) == 1, (name, seen)
    seen.clear()
    torchfit.data.get_adapter(x, y, batch_size=4)  # the public entry point checks its own
    assert seen.count("batch_size") == 1
    with pytest.raises(TypeError, match="`validation_batch_size` must be an integer"):
        torchfit.data.get_validation_adapter((x, y), 4, "4", None)
