"""Issue 19's leftovers: a MultiOptimizer step that fails in a later
sub-optimizer writes nothing; ScheduleFreeAdamW weights files say which
weights they hold; TensorBoard's write_images and embeddings_freq."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import optimizers as O

RNG = np.random.default_rng(19)
X = RNG.random((16, 4)).astype("float32")
Y = RNG.random((16, 1)).astype("float32")


class _Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 3)
        self.head = nn.Linear(3, 1)

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)))


# ------------------------------------------------ MultiOptimizer: all or nothing
def _trained_multi(second):
    """A model whose encoder steps with Adam (first sub-optimizer) and head with
    ``second``, after one epoch (so both have state)."""
    torch.manual_seed(0)
    model = _Net()
    model.compile(optimizer=O.MultiOptimizer(O.OptimizerMap(
        second, {"encoder/.*": O.Adam(learning_rate=0.01)})), loss="mse")
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    return model


def _snapshot(model):
    return ([p.detach().clone() for p in model.parameters()],
            copy.deepcopy(model.optimizer.state_dict()))


def _assert_unchanged(model, snapshot):
    weights, state = snapshot
    assert all(torch.equal(a, p) for a, p in zip(weights, model.parameters()))
    now = model.optimizer.state_dict()
    assert now["iterations"] == state["iterations"]
    for before, after in zip(state["optimizers"], now["optimizers"]):
        assert before["state"].keys() == after["state"].keys()
        for key, entries in before["state"].items():
            for name, value in entries.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(after["state"][key][name]))
        assert [g["iterations"] for g in before["param_groups"]] == \
            [g["iterations"] for g in after["param_groups"]]


def _backward(model):
    model.optimizer.zero_grad()
    nn.functional.mse_loss(model(torch.tensor(X)), torch.tensor(Y)).backward()


class _Boom(Exception):
    pass


def _failing_schedule(step):
    raise _Boom("schedule failed")


def test_a_later_sub_optimizer_whose_schedule_fails_leaves_everything_unchanged():
    schedule = {"fail": False}

    def learning_rate(step):
        if schedule["fail"]:
            _failing_schedule(step)
        return 0.1

    model = _trained_multi(O.SGD(learning_rate=learning_rate, momentum=0.9))
    _backward(model)
    before = _snapshot(model)
    schedule["fail"] = True
    assert model.optimizer.optimizers[0].is_bound  # Adam plans (and would write) first
    with pytest.raises(_Boom):
        model.optimizer.step()
    _assert_unchanged(model, before)
    schedule["fail"] = False
    model.optimizer.step()  # and the same step then goes through, for both
    assert all(not torch.equal(a, p) for a, p in zip(before[0], model.parameters()))


def test_a_bad_learning_rate_written_into_a_later_sub_optimizer_leaves_everything_unchanged():
    model = _trained_multi(O.SGD(learning_rate=0.1))
    _backward(model)
    before = _snapshot(model)
    model.optimizer.optimizers[1].param_groups[0]["lr"] = float("nan")  # as a bad scheduler would
    with pytest.raises(ValueError, match="learning rate"):
        model.optimizer.step()
    _assert_unchanged(model, before)


def test_a_later_schedule_free_sub_optimizer_on_evaluation_weights_leaves_everything_unchanged():
    model = _trained_multi(O.ScheduleFreeAdamW(learning_rate=0.01))
    _backward(model)
    schedule_free = model.optimizer.optimizers[1]
    schedule_free.eval()
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match="evaluation weights"):
        model.optimizer.step()
    _assert_unchanged(model, before)
    schedule_free.train()


def test_apply_with_no_gradient_for_a_later_sub_optimizer_leaves_everything_unchanged():
    model = _trained_multi(O.SGD(learning_rate=0.1))
    params = list(model.parameters())
    grads = [torch.ones_like(p) for p in params[:2]] + [None, None]  # the head has none
    before = _snapshot(model)
    with pytest.raises(ValueError, match="No gradients provided"):
        model.optimizer.apply(grads, params)
    _assert_unchanged(model, before)
    model.optimizer.apply([torch.ones_like(p) for p in params], params)
    assert model.optimizer.iterations == before[1]["iterations"] + 1
