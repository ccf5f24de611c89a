"""The default loop never waits on the device per step: host conversions happen a
fixed number of times per epoch, whatever the number of steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import torchfit

SYNC_METHODS = ("item", "__float__", "__int__", "__bool__", "tolist", "cpu", "numpy")


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


def count_syncs(monkeypatch, fn):
    calls = []
    for name in SYNC_METHODS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    fn()
    monkeypatch.undo()
    return len(calls)


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_syncs_do_not_grow_with_steps(monkeypatch, steps_per_execution):
    rng = np.random.default_rng(0)
    counts = []
    for n in (40, 400):
        x = rng.normal(size=(n, 4)).astype("float32")
        y = rng.integers(0, 3, size=n)
        model = Net()
        model.compile(optimizer="adam", loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"],
                      weighted_metrics=["sparse_categorical_crossentropy"],
                      steps_per_execution=steps_per_execution)
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # build outside the count
        counts.append(count_syncs(monkeypatch, lambda: model.fit(
            x, y, batch_size=4, epochs=2, verbose=0, validation_data=(x[:8], y[:8]))))
    assert counts[0] == counts[1], counts
