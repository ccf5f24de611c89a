"""evaluate/predict run under torch.inference_mode only where that is safe,
and the array batches cut by ``Tensor.split`` equal plain slices."""

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import tree
from torchfit.data import arrays as arrays_module
from torchfit.data import unpack_x_y_sample_weight
from torchfit.data.arrays import ArrayDataAdapter
from torchfit.batch import is_placed
from torchfit.utils.inference import grad_free


class Recorder(torchfit.KerasStyleModule, nn.Module):
    """Records, for each forward, whether inference mode / grad mode were on."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(4, 3)
        self.modes = []

    def forward(self, x):
        self.modes.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return self.dense(x)


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, size=n)


def compiled(cls=Recorder):
    torch.manual_seed(0)
    model = cls()
    model.compile("sgd", loss=nn.CrossEntropyLoss(), metrics=["accuracy"])
    return model


@pytest.mark.parametrize("call", ["evaluate", "predict", "test_on_batch", "predict_on_batch"])
def test_built_in_steps_run_in_inference_mode(call):
    model = compiled()
    x, y = data()
    if call == "evaluate":
        model.evaluate(x, y, batch_size=8, verbose=0)
    elif call == "predict":
        model.predict(x, batch_size=8, verbose=0)
    elif call == "test_on_batch":
        model.test_on_batch(x, y)
    else:
        model.predict_on_batch(x)
    assert model.modes and all(mode == (True, False) for mode in model.modes)


def test_inference_mode_leaves_training_intact():
    """States and weights touched under inference mode still train and resume."""
    model = compiled()
    x, y = data(64)
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    history = model.fit(x, y, epochs=3, batch_size=16, validation_data=(x, y), verbose=0).history
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    assert not any(p.is_inference() for p in model.parameters())
    assert not any(v.is_inference() for m in model.metrics for v in m.variables)
    assert history["loss"][-1] < history["loss"][0]
    assert after["loss"] < before["loss"]
    assert after == pytest.approx({"loss": history["val_loss"][-1], "accuracy": history["val_accuracy"][-1]})


class SaliencyPredict(Recorder):
    """A predict_step that needs gradients: the input's gradient per sample."""

    def predict_step(self, data):
        x, _, _ = unpack_x_y_sample_weight(data)
        with torch.enable_grad():
            x = x.clone().requires_grad_(True)
            self(x).max(dim=1).values.sum().backward()
        return x.grad


class GradientPenaltyLoss(Recorder):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = super().compute_loss(x, y, y_pred, sample_weight, training)
        with torch.enable_grad():
            inputs = x.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.dense(inputs).sum(), inputs)
        return loss + grad.pow(2).mean()


def test_custom_predict_step_may_enable_grad():
    model = compiled(SaliencyPredict)
    x, _ = data()
    saliency = model.predict(x, batch_size=8, verbose=0)
    assert saliency.shape == x.shape and np.abs(saliency).sum() > 0
    assert model.predict_on_batch(x).shape == x.shape


def test_custom_compute_loss_may_enable_grad():
    model = compiled(GradientPenaltyLoss)
    x, y = data()
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert model.modes and all(mode == (False, False) for mode in model.modes)


def test_instance_override_is_respected():
    model = compiled()
    model.predict_step = lambda data: torch.zeros(len(unpack_x_y_sample_weight(data)[0]), 1)
    assert isinstance(grad_free(model, "predict"), torch.no_grad)
    assert isinstance(grad_free(compiled(), "predict"), torch.inference_mode)


class Lazy(torchfit.KerasStyleModule, nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.LazyLinear(3)

    def forward(self, x):
        return self.dense(x)


@pytest.mark.parametrize("first", ["predict", "evaluate", "predict_on_batch"])
def test_lazy_module_built_by_predict_still_trains(first):
    """Parameters materialised under inference mode could never be updated."""
    torch.manual_seed(0)
    model = Lazy()
    x, y = data()
    if first == "evaluate":
        model.compile("sgd", loss="sparse_categorical_crossentropy")
        model.evaluate(x, y, verbose=0)
    elif first == "predict":
        model.predict(x, verbose=0)
    else:
        model.predict_on_batch(x)
    assert not model.dense.weight.is_inference()
    model.compile("sgd", loss="sparse_categorical_crossentropy")
    before = model.dense.weight.detach().clone()
    model.fit(x, y, epochs=2, verbose=0)
    assert not torch.equal(before, model.dense.weight.detach())
    assert isinstance(grad_free(model, "predict"), torch.inference_mode)  # built now


def test_grad_free_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        grad_free(compiled(), "train")


# ------------------------------------------------------------------- batches
@pytest.mark.parametrize("n,batch_size,split", [(10, 3, 2), (12, 3, 2), (7, 10, 1), (100, 7, 3), (5, 1, 256)])
@pytest.mark.parametrize("shuffle", [False, True, "batch"])
def test_split_batches_equal_slices(monkeypatch, n, batch_size, split, shuffle):
    monkeypatch.setattr(arrays_module, "SPLIT_BATCHES", split)
    x = {"a": torch.arange(n * 2.0).reshape(n, 2), "b": [torch.arange(n), torch.arange(n) * 10]}
    y = torch.arange(n) % 3
    adapter = ArrayDataAdapter(x, y, None, batch_size=batch_size, shuffle=shuffle)
    torch.manual_seed(1)
    batches = list(adapter.get_iterator())
    torch.manual_seed(1)
    order = adapter._permutation()  # the epoch's sample order, drawn as get_iterator draws it
    arrays = adapter.arrays if order is None else tree.map_structure(
        lambda t: None if t is None else t[order], adapter.arrays)
    assert len(batches) == adapter.num_batches == -(-n // batch_size)
    for index, (bx, by, bw) in enumerate(batches):
        rows = slice(index * batch_size, (index + 1) * batch_size)
        assert bw is None
        assert torch.equal(bx["a"], arrays[0]["a"][rows]) and torch.equal(by, arrays[1][rows])
        assert torch.equal(bx["b"][1], arrays[0]["b"][1][rows])
    seen = torch.cat([b[1] for b in batches])
    assert torch.equal(seen.sort().values, y.sort().values)


def test_is_placed():
    cpu = torch.device("cpu")
    assert is_placed((torch.zeros(2), torch.zeros(2, dtype=torch.int64), None), cpu, torch.float32)
    assert not is_placed((torch.zeros(2, dtype=torch.float64), None, None), cpu, torch.float32)
    assert not is_placed((np.zeros(2), None, None), cpu, torch.float32)
    assert not is_placed({"x": torch.zeros(2)}, torch.device("meta"), torch.float32)


@pytest.mark.parametrize("model_dtype,input_dtype", [(torch.float32, "float64"), (torch.float64, "float32")])
def test_inputs_still_cast_to_the_model_dtype(model_dtype, input_dtype):
    model = compiled()
    model.to(model_dtype)
    x, y = data()
    logs = model.evaluate(x.astype(input_dtype), y, batch_size=8, verbose=0, return_dict=True)
    reference = model.evaluate(x.astype(np.float64 if model_dtype == torch.float64 else np.float32), y,
                               batch_size=8, verbose=0, return_dict=True)
    assert logs == pytest.approx(reference)
    assert model.predict(x.astype(input_dtype), verbose=0).dtype == (
        np.float64 if model_dtype == torch.float64 else np.float32)


def test_keras_style_models_get_inference_mode_too():
    plain = nn.Sequential(nn.Linear(4, 3))
    model = torchfit.keras_style(plain)
    model.compile("sgd", loss=nn.CrossEntropyLoss())
    assert isinstance(grad_free(model, "test"), torch.inference_mode)
    x, y = data()
    assert model.predict(x, verbose=0).shape == (40, 3)
    assert np.isfinite(model.evaluate(x, y, verbose=0))
