"""Faults during fit: interrupts stop cleanly, failures never half-update state,
out-of-memory errors carry the batch size."""

from __future__ import annotations

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


X = np.random.default_rng(0).normal(size=(12, 4)).astype("float32")
Y = np.arange(12) % 3


def compiled():
    model = Net()
    model.compile(optimizer="adam", loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def snapshot(model):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {k: (v.clone() if isinstance(v, torch.Tensor) else v)
             for s in model.optimizer.state.values() for k, v in s.items()})


def assert_same(a, b):
    for key in a[0]:
        assert torch.equal(a[0][key], b[0][key]), key
    assert a[1].keys() == b[1].keys()
    for key in a[1]:
        va, vb = a[1][key], b[1][key]
        assert torch.equal(va, vb) if isinstance(va, torch.Tensor) else va == vb


def test_keyboard_interrupt_runs_on_train_end_and_keeps_finished_epochs():
    ended = []

    class Interrupt(torchfit.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

        def on_train_end(self, logs=None):
            ended.append(logs)

    model = compiled()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y, epochs=5, verbose=1, callbacks=[Interrupt()])
    assert model.history.epoch == [0, 1]
    assert len(model.history.history["loss"]) == 2
    assert ended and "loss" in ended[0]


@pytest.mark.parametrize("stage", ["forward", "loss", "backward", "metric"])
def test_failure_at_each_stage_leaves_state_of_last_applied_step(stage):
    model = Net()

    def broken_metric(y_true, y_pred):
        if state["armed"] and stage == "metric":
            raise RuntimeError("injected")
        return (y_pred.argmax(-1) == y_true).float()

    class Faulty(Net):
        def forward(self, x):
            out = super().forward(x)
            if state["armed"] and stage == "forward":
                raise RuntimeError("injected")
            if state["armed"] and stage == "backward":
                out.register_hook(lambda grad: (_ for _ in ()).throw(RuntimeError("injected")))
            return out

        def compute_loss(self, *args, **kwargs):
            if state["armed"] and stage == "loss":
                raise RuntimeError("injected")
            return super().compute_loss(*args, **kwargs)

    state = {"armed": False}
    model = Faulty()
    model.compile(optimizer="adam", loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[broken_metric])
    model.fit(X, Y, batch_size=4, epochs=1, verbose=0)
    before = snapshot(model)
    iterations = model.optimizer.iterations
    state["armed"] = True
    with pytest.raises(RuntimeError, match="injected"):
        model.fit(X, Y, batch_size=4, epochs=1, verbose=0)
    assert_same(before, snapshot(model))
    assert model.optimizer.iterations == iterations
    state["armed"] = False
    model.fit(X, Y, batch_size=4, epochs=1, verbose=0)  # and training goes on


def test_out_of_memory_reports_batch_size_and_hint():
    class Hungry(Net):
        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    model = Hungry()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(torch.OutOfMemoryError, match=r"batch of 8 samples.*batch_size"):
        model.fit(X, np.zeros((12, 3), "float32"), batch_size=8, verbose=0)


def test_errors_close_the_progress_bar():
    class Fail(torchfit.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise ValueError("stop here")

    bar = torchfit.callbacks.ProgbarLogger()
    model = compiled()
    with pytest.raises(ValueError, match="stop here"):
        model.fit(X, Y, verbose=1, callbacks=[bar, Fail()])
    assert bar._bar is None


class Poisoned(Net):
    """Produces a NaN loss on the batch whose first input is marked."""

    def forward(self, x):
        out = super().forward(x)
        return torch.where(x[:, :1] > 100, torch.full_like(out, float("nan")), out)


def poisoned_data():
    x = X.copy()
    x[4:8] = 1000.0  # the second batch of 4
    return x


@pytest.mark.parametrize("policy", ["skip", "stop", "raise"])
def test_nan_policy(policy):
    model = Poisoned()
    model.compile(optimizer="sgd", loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.nan_policy = policy
    weights = []

    class Snap(torchfit.Callback):
        def on_train_batch_end(self, batch, logs=None):
            weights.append(model.fc.weight.detach().clone())

    x = poisoned_data()
    if policy == "raise":
        with pytest.raises(FloatingPointError, match="nan_policy='raise'"):
            model.fit(x, Y, batch_size=4, shuffle=False, callbacks=[Snap()], verbose=0)
        assert len(weights) == 1
        return
    hist = model.fit(x, Y, batch_size=4, epochs=2, shuffle=False, callbacks=[Snap()], verbose=0)
    assert torch.equal(weights[0], weights[1])  # the NaN batch changed nothing
    assert np.isfinite(hist.history["loss"]).all()  # and is not in the epoch loss
    if policy == "stop":
        assert hist.epoch == [0] and len(weights) == 2
    else:
        assert hist.epoch == [0, 1] and len(weights) == 6 and model.optimizer.iterations == 4


def test_nan_policy_validation():
    with pytest.raises(ValueError, match="nan_policy"):
        Net().nan_policy = "ignore"
