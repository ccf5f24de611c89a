"""Batch logs are computed only when read, and every callback sees its own batch's values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import callbacks as tcb
from torchfit.logs import LazyLogs, materialize


def make_model():
    torch.manual_seed(0)
    model = torchfit.keras_style(nn.Sequential(nn.Linear(4, 3)))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n=64):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 4)).astype("float32"), rng.integers(0, 3, n)


def test_lazy_logs_compute_once_on_first_read():
    calls = []
    logs = LazyLogs(lambda: calls.append(1) or {"loss": 1.0})
    assert logs.pending and calls == [] and repr(logs) == "LazyLogs(<pending>)"
    assert logs["loss"] == 1.0 and dict(logs) == {"loss": 1.0} and list(logs) == ["loss"]
    logs["extra"] = 2.0
    assert len(logs) == 2 and not logs.pending and calls == [1]
    del logs["extra"]
    copy = materialize(logs)
    assert type(copy) is dict and copy == {"loss": 1.0} and copy is not logs.values_dict()
    assert materialize({"a": 1}) == {"a": 1}


def test_results_are_not_computed_per_step_without_batch_callbacks(monkeypatch):
    model = make_model()
    x, y = data()
    model.fit(x, y, batch_size=8, verbose=0)
    calls = []
    original = type(model).get_metrics_result

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(type(model), "get_metrics_result", counting)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)  # 8 steps an epoch
    assert len(calls) <= 2 * 2  # epoch logs only, never one per step
    model.evaluate(x, y, batch_size=8, verbose=0)
    assert len(calls) <= 2 * 2 + 2


class Keeper(tcb.Callback):
    """A user callback that keeps the logs objects it is given."""

    def __init__(self):
        super().__init__()
        self.kept, self.read_now = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.kept.append(logs)
        self.read_now.append(float(logs["loss"]))


class ImmediateReader(tcb.Callback):
    reads_batch_logs_immediately = True

    def __init__(self):
        super().__init__()
        self.types, self.values = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.types.append(type(logs))
        self.values.append(float(logs["loss"]))


def test_kept_batch_logs_hold_their_own_batch_values():
    model = make_model()
    x, y = data()
    keeper, reader = Keeper(), ImmediateReader()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[keeper, reader])
    assert all(type(logs) is dict for logs in keeper.kept)
    assert [float(logs["loss"]) for logs in keeper.kept] == keeper.read_now
    assert len(set(keeper.read_now)) > 1  # not all the last batch's value
    assert set(reader.types) == {LazyLogs}
    assert reader.values == keeper.read_now


def test_batch_logs_match_train_on_batch_running_means():
    """Batch logs are running means over the epoch so far, as in Keras."""
    model = make_model()
    x, y = data(32)
    reader = ImmediateReader()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[reader], shuffle=False)
    again = make_model()
    losses = []
    for start in range(0, 32, 8):
        # test-mode loss before the update = the step's loss on the same weights
        losses.append(again.test_on_batch(x[start:start + 8], y[start:start + 8])[0])
        again.train_on_batch(x[start:start + 8], y[start:start + 8])
    running = np.cumsum(losses) / np.arange(1, 5)
    np.testing.assert_allclose(reader.values, running, rtol=1e-5)


def test_batch_hooks_found_on_classes_instances_and_aliases():
    class OnBatchEnd(tcb.Callback):
        def on_batch_end(self, batch, logs=None):
            pass

    empty = tcb.CallbackList([tcb.History()])
    assert empty.batch_hooks("train") == (None, None)
    assert empty.batch_hooks("test") == (None, None)
    alias = tcb.CallbackList([OnBatchEnd()])
    begin, end = alias.batch_hooks("train")
    assert begin is None and end is not None
    assert alias.batch_hooks("test") == (None, None)
    lam = tcb.CallbackList([tcb.LambdaCallback(on_test_batch_begin=lambda b, logs: None)])
    begin, end = lam.batch_hooks("test")
    assert begin is not None and end is None


def test_lambda_batch_callbacks_still_run():
    model = make_model()
    x, y = data()
    seen = []
    model.fit(x, y, batch_size=8, verbose=0,
              callbacks=[tcb.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(
                  (b, type(logs), float(logs["accuracy"]))))])
    assert [b for b, _, _ in seen] == list(range(8))
    assert {t for _, t, _ in seen} == {dict}


@pytest.mark.parametrize("steps_per_execution", [1, 3])
def test_custom_step_dict_logs_pass_through(steps_per_execution):
    class Custom(torchfit.KerasStyleModule, nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x)

        def train_step(self, data):
            logs = super().train_step(data)
            logs["twice_loss"] = logs["loss"] * 2  # a LazyLogs mutated by user code
            return logs

    torch.manual_seed(0)
    model = Custom()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy",
                  steps_per_execution=steps_per_execution)
    x, y = data()
    reader = ImmediateReader()
    history = model.fit(x, y, batch_size=8, verbose=0, callbacks=[reader]).history
    assert "twice_loss" in history
    assert history["twice_loss"][0] == pytest.approx(2 * reader.values[-1], rel=1e-6)
