"""jit_compile / run_eagerly: torch.compile of the step function, never of the module."""

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


def test_jit_compile_true_matches_eager_and_keeps_state_dict_keys():
    torch.manual_seed(0)
    eager, compiled = Net(), Net()
    compiled.load_state_dict(eager.state_dict())
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3
    histories = []
    for model, jit in ((eager, False), (compiled, True)):
        model.compile(optimizer="adam", loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], jit_compile=jit)
        histories.append(model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history)
    assert histories[0].keys() == histories[1].keys()
    for key in histories[0]:
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-5)
    assert list(compiled.state_dict()) == ["fc.weight", "fc.bias"]


def test_run_eagerly_wins_over_jit_compile():
    model = Net()
    model.compile(loss="mse", jit_compile=True, run_eagerly=True)
    assert model.make_train_function() == model.train_step
