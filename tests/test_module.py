"""The mixin and keras_style(): what the API adds, and what it leaves alone."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch
from torch import nn

import torchfit


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


class TwoInputs(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 1)
        self.b = nn.Linear(3, 1)

    def forward(self, left, right):
        return self.a(left) + self.b(right)


def make_sequential():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_mixin_after_nn_module_is_a_type_error_at_class_creation():
    with pytest.raises(TypeError, match="KerasStyleModule.*must come before"):
        class Wrong(nn.Module, torchfit.KerasStyleModule):  # noqa: F811
            pass


def test_mixin_before_a_module_subclass_is_fine():
    class Ok(torchfit.KerasStyleModule, nn.Sequential):
        pass

    model = Ok(nn.Linear(2, 1))
    model.compile(loss="mse")
    assert model.compiled


def test_keras_style_returns_same_object_and_keeps_everything():
    module = make_sequential()
    keys = list(module.state_dict())
    params = [id(p) for p in module.parameters()]
    text = repr(module)
    same = torchfit.keras_style(module)
    assert same is module
    assert isinstance(module, nn.Sequential) and isinstance(module, torchfit.KerasStyleModule)
    assert list(module.state_dict()) == keys
    assert [id(p) for p in module.parameters()] == params
    assert repr(module) == text
    assert torchfit.keras_style(module) is module  # idempotent


def test_keras_style_rejects_non_modules():
    with pytest.raises(TypeError, match="module"):
        torchfit.keras_style(object())


def test_compile_registers_nothing_on_the_module():
    model = torchfit.keras_style(make_sequential())
    keys = list(model.state_dict())
    modules = list(model.modules())
    model.compile(optimizer="adam", loss=nn.CrossEntropyLoss(), metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(10, 4)).astype("float32")
    y = np.arange(10) % 2
    model.fit(x, y, epochs=1, verbose=0)
    assert list(model.state_dict()) == keys
    assert list(model.modules()) == modules
    assert not any(isinstance(m, nn.CrossEntropyLoss) for m in model.modules())


def _trained(model):
    x = np.random.default_rng(0).normal(size=(12, 4)).astype("float32")
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((12, 2), "float32"), epochs=1, verbose=0)
    return model, x


@pytest.mark.parametrize("factory", [lambda: torchfit.keras_style(make_sequential()),
                                     lambda: Net()], ids=["keras_style", "subclass"])
def test_deepcopy_pickle_and_torch_save_still_work(factory):
    model = factory()
    if isinstance(model, Net):
        model.fc = nn.Linear(4, 2)
    model, x = _trained(model)
    expected = model.predict(x, verbose=0)
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert type(clone).__name__ == type(model).__name__
        assert list(clone.state_dict()) == list(model.state_dict())
        np.testing.assert_allclose(clone.predict(x, verbose=0), expected)
        assert not clone.compiled  # the compiled training state is not carried
        clone.compile(loss="mse")
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected)


def test_state_dict_loads_into_plain_module():
    model = torchfit.keras_style(make_sequential())
    model, _ = _trained(model)
    plain = make_sequential()
    plain.load_state_dict(model.state_dict())


def test_calling_convention_tuple_and_dict_inputs():
    model = TwoInputs()
    model.compile(optimizer="sgd", loss="mse")
    rng = np.random.default_rng(0)
    left, right = rng.normal(size=(8, 2)).astype("float32"), rng.normal(size=(8, 3)).astype("float32")
    y = rng.normal(size=(8, 1)).astype("float32")
    hist = model.fit((left, right), y, epochs=2, batch_size=4, verbose=0)
    assert len(hist.history["loss"]) == 2
    out_tuple = model.predict([left, right], verbose=0)
    out_dict = model.predict({"left": left, "right": right}, verbose=0)
    np.testing.assert_allclose(out_tuple, out_dict)
    assert out_tuple.shape == (8, 1)


def test_float64_inputs_are_cast_to_the_parameters_dtype_and_ints_kept():
    seen = {}

    class Probe(torchfit.KerasStyleModule, nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 3)

        def forward(self, x, idx):
            seen["x"], seen["idx"] = x.dtype, idx.dtype
            return self.fc(x)

    model = Probe()
    model.compile(loss="sparse_categorical_crossentropy")
    x = np.ones((4, 2), dtype="float64")
    idx = np.zeros((4,), dtype="int32")
    model.fit((x, idx), np.array([0, 1, 2, 0]), verbose=0)
    assert seen == {"x": torch.float32, "idx": torch.int32}
    model.double()
    model.predict((x, idx), verbose=0)
    assert seen["x"] == torch.float64


def test_modes_restored_and_used():
    modes = []

    class ModeProbe(Net):
        def forward(self, x):
            modes.append(self.training)
            return super().forward(x)

    model = ModeProbe()
    model.eval()
    model.compile(loss="mse")
    x, y = np.ones((4, 4), "float32"), np.ones((4, 3), "float32")
    model.fit(x, y, batch_size=4, verbose=0)
    assert modes == [True] and not model.training
    model.train()
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert modes[1:] == [False, False] and model.training


def test_torch_optimizer_instance_and_lr_scheduler_callback_free():
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.compile(optimizer=optimizer, loss="mse")
    assert model.optimizer is optimizer
    before = model.fc.weight.detach().clone()
    model.train_on_batch(np.ones((2, 4), "float32"), np.zeros((2, 3), "float32"))
    assert not torch.equal(before, model.fc.weight)


def test_overridden_train_step_is_used():
    class Custom(Net):
        calls = 0

        def train_step(self, data):
            Custom.calls += 1
            return super().train_step(data)

    model = Custom()
    model.compile(loss="mse")
    model.fit(np.ones((10, 4), "float32"), np.ones((10, 3), "float32"), batch_size=5, verbose=0)
    assert Custom.calls == 2


def test_overridden_compute_loss():
    class L1(Net):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return (y_pred - y).abs().mean()

    model = L1()
    model.compile(optimizer="sgd")
    result = model.evaluate(np.ones((4, 4), "float32"), np.zeros((4, 3), "float32"), verbose=0)
    with torch.no_grad():
        expected = model(torch.ones(4, 4)).abs().mean().item()
    assert result == pytest.approx(expected, rel=1e-6)


def test_steps_per_execution_groups_batch_callbacks():
    calls = []

    class Record(torchfit.Callback):
        def on_train_batch_end(self, batch, logs=None):
            calls.append(batch)

    model = Net()
    model.compile(loss="mse", steps_per_execution=3)
    hist = model.fit(np.ones((20, 4), "float32"), np.ones((20, 3), "float32"), batch_size=2,
                     callbacks=[Record()], verbose=0)
    assert calls == [2, 5, 8, 9]
    assert hist.params["steps"] == 10


def test_history_params_and_model_history():
    model = Net()
    model.compile(loss="mse")
    hist = model.fit(np.ones((10, 4), "float32"), np.ones((10, 3), "float32"), batch_size=4,
                     epochs=2, verbose=0)
    assert isinstance(hist, torchfit.History)
    assert hist.params == {"verbose": 0, "epochs": 2, "steps": 3}
    assert hist.epoch == [0, 1]
    assert model.history is hist
    assert all(isinstance(v, float) for v in hist.history["loss"])


def test_stop_training_from_a_callback():
    class Stop(torchfit.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    model = Net()
    model.compile(loss="mse")
    hist = model.fit(np.ones((4, 4), "float32"), np.ones((4, 3), "float32"), epochs=10,
                     callbacks=[Stop()], verbose=0)
    assert hist.epoch == [0, 1]


def test_metrics_names_match_evaluate_order():
    model = Net()
    model.compile(loss="categorical_crossentropy", metrics=["accuracy", "mse"])
    x, y = np.ones((6, 4), "float32"), np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2]]
    result = model.evaluate(x, y, verbose=0)
    assert model.metrics_names == ["loss", "accuracy", "mse"]
    as_dict = model.evaluate(x, y, verbose=0, return_dict=True)
    assert dict(zip(model.metrics_names, result)) == as_dict
    assert list(as_dict) == sorted(as_dict)  # Keras hands logs over sorted by name


def test_keras_guide_custom_train_step_works_unchanged():
    """The "customizing what happens in fit()" pattern: ``x, y = data`` and a
    loop over ``self.metrics`` (loss tracker + the compiled-metrics container)."""

    class Guide(Net):
        def train_step(self, data):
            x, y = data
            y_pred = self(x)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    model = Guide()
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    assert [m.name for m in model.metrics] == ["loss", "compile_metrics"]
    hist = model.fit(np.ones((8, 4), "float32"), np.zeros((8, 3), "float32"), batch_size=4,
                     epochs=2, verbose=0)
    assert list(hist.history) == ["loss", "mae"]


def test_batches_reach_steps_packed_as_keras_packs_them():
    seen = []

    class Spy(Net):
        def train_step(self, data):
            seen.append(type(data).__name__ + str(len(data)) if isinstance(data, tuple) else "tensor")
            return super().train_step(data)

        def predict_step(self, data):
            seen.append("tuple" if isinstance(data, tuple) else "tensor")
            return super().predict_step(data)

    model = Spy()
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 4), "float32"), np.zeros((4, 3), "float32")
    model.fit(x, y, verbose=0)
    model.fit(x, y, sample_weight=np.ones(4), verbose=0)
    model.predict(x, verbose=0)
    assert seen == ["tuple2", "tuple3", "tensor"]
