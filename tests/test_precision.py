"""Dtype policies, autocast and the GradScaler-based LossScaleOptimizer (CPU paths)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit.precision import LossScaleOptimizer


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.seen = []

    def forward(self, x):
        out = self.fc(x)
        self.seen.append(out.dtype)
        return out


X = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
Y = np.arange(16) % 3


@pytest.fixture(autouse=True)
def restore_policy():
    yield
    torchfit.mixed_precision.set_global_policy("float32")


def loss():
    return torchfit.losses.SparseCategoricalCrossentropy(from_logits=True)


def test_mixed_bfloat16_autocasts_forward_and_keeps_float32_parameters():
    model = Net()
    model.dtype_policy = "mixed_bfloat16"
    model.compile(optimizer="adam", loss=loss(), metrics=["accuracy"])
    assert not isinstance(model.optimizer, LossScaleOptimizer)  # bf16 needs no scaling
    hist = model.fit(X, Y, batch_size=8, epochs=2, verbose=0)
    assert set(model.seen) == {torch.bfloat16}
    assert model.fc.weight.dtype == torch.float32
    assert np.isfinite(hist.history["loss"]).all()
    assert model.predict(X, verbose=0).shape == (16, 3)


def test_global_mixed_float16_wraps_optimizer_with_loss_scaling():
    torchfit.mixed_precision.set_global_policy("mixed_float16")
    model = Net()
    model.compile(optimizer="sgd", loss=loss())
    assert isinstance(model.optimizer, LossScaleOptimizer)
    assert model.optimizer.dynamic_scale == 2.0 ** 15
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    assert set(model.seen) == {torch.float16}
    assert model.optimizer.iterations == 2


def test_auto_scale_loss_false_keeps_the_optimizer():
    model = Net()
    model.dtype_policy = "mixed_float16"
    model.compile(optimizer="sgd", loss=loss(), auto_scale_loss=False)
    assert isinstance(model.optimizer, torchfit.optimizers.SGD)


def test_overflowing_step_is_skipped_and_schedule_does_not_advance():
    seen_lrs = []

    def schedule(iterations):
        seen_lrs.append(int(iterations))
        return 0.1

    class Overflow(Net):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            value = super().compute_loss(x, y, y_pred, sample_weight, training)
            return value * float("inf") if self.blow_up else value

    model = Overflow()
    model.dtype_policy = "mixed_float16"
    model.compile(optimizer=torchfit.optimizers.SGD(learning_rate=schedule), loss=loss())
    model.blow_up = False
    model.train_on_batch(X[:8], Y[:8])
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    scale = model.optimizer.dynamic_scale
    model.blow_up = True
    model.train_on_batch(X[:8], Y[:8])
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key])
    assert model.optimizer.iterations == 1
    assert model.optimizer.dynamic_scale == scale / 2
    model.blow_up = False
    model.train_on_batch(X[:8], Y[:8])
    assert model.optimizer.iterations == 2
    assert seen_lrs[-2:] == [0, 1] and max(seen_lrs) == 1  # the skipped step used no lr


def test_loss_scale_optimizer_validates():
    with pytest.raises(TypeError, match="inner_optimizer"):
        LossScaleOptimizer("sgd")
    sgd = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="initial_scale"):
        LossScaleOptimizer(sgd, initial_scale=0)
    with pytest.raises(ValueError, match="dynamic_growth_steps"):
        LossScaleOptimizer(sgd, dynamic_growth_steps=0)
    with pytest.raises(ValueError, match="dynamic"):
        LossScaleOptimizer(sgd, dynamic=False)


def test_policy_validation():
    with pytest.raises(ValueError, match="mixed_float16"):
        torchfit.mixed_precision.set_global_policy("mixed_float8")
    with pytest.raises(ValueError, match="dtype_policy"):
        Net().dtype_policy = "half"
