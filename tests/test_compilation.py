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


def test_jit_compile_dict_passes_torch_compile_options(monkeypatch):
    captured = {}

    def fake_compile(fn, **kwargs):
        captured.update(kwargs)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    model = Net()
    model.compile(loss="mse", jit_compile={"mode": "reduce-overhead", "fullgraph": True})
    model.train_on_batch(np.ones((2, 4), "float32"), np.ones((2, 3), "float32"))
    assert captured == {"backend": "inductor", "mode": "reduce-overhead", "fullgraph": True}


def test_jit_compile_validation():
    with pytest.raises(ValueError, match="unknown keys: \\['speed'\\]"):
        Net().compile(loss="mse", jit_compile={"speed": 1})
    with pytest.warns(UserWarning, match="run_eagerly"):
        Net().compile(loss="mse", jit_compile=True, run_eagerly=True)


def test_auto_is_eager_on_cpu():
    model = Net()
    model.compile(loss="mse")
    assert model.make_train_function() == model.train_step


def test_fallback_to_eager_on_compiler_errors_only():
    from torch._dynamo.exc import Unsupported

    from torchfit.compilation import FallbackToEager

    def broken(data):
        raise Unsupported("cannot trace this")

    step = FallbackToEager(lambda data: data + 1, broken)
    with pytest.warns(RuntimeWarning, match="running eagerly"):
        assert step(1) == 2
    assert step(2) == 3  # stays eager, no second warning

    def user_bug(data):
        raise KeyError("user error")

    with pytest.raises(KeyError):
        FallbackToEager(lambda data: data, user_bug)(1)


@pytest.mark.parametrize("steps_per_execution", [2, 3, 8])
def test_steps_per_execution_history_equals_one_step_per_call(steps_per_execution):
    x = np.random.default_rng(1).normal(size=(50, 4)).astype("float32")
    y = np.arange(50) % 3
    histories = []
    for spe in (1, steps_per_execution):
        torch.manual_seed(0)
        model = Net()
        model.compile(optimizer="adam", loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], steps_per_execution=spe)
        histories.append(model.fit(x, y, batch_size=4, epochs=2, verbose=0,
                                   validation_split=0.2).history)
    assert histories[0] == histories[1]


def test_import_does_not_load_the_compiler():
    """torch._dynamo costs seconds to import: only compiling a step loads it."""
    import subprocess
    import sys

    code = ("import sys, torchfit; print('torch._dynamo' in sys.modules); "
            "import torchfit.compile_utils as c; print(type(c.CompileLoss.__dict__['build']).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "eager_only"]


def test_compiled_steps_run_build_eagerly():
    """Building the compiled loss/metrics reads values: under torch.compile it runs
    eagerly (torch.compiler.disable), applied when a step is first compiled."""
    from torchfit import compile_utils

    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile={"fullgraph": False})
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    model.fit(x, np.arange(16) % 3, batch_size=8, verbose=0)
    for owner, name in ((compile_utils.CompileLoss, "build"), (compile_utils.CompileMetrics, "build"),
                        (compile_utils.CompileLoss, "recheck_targets")):
        assert getattr(owner.__dict__[name], "_torchdynamo_disable", False), name


class SideEffectNet(Net):
    """A forward with a Python side effect (dynamo replays it after the graph)."""

    def __init__(self):
        super().__init__()
        self.dtypes_seen = set()

    def forward(self, x):
        out = self.fc(x)
        self.dtypes_seen.add(out.dtype)
        return out


@pytest.mark.parametrize("steps_per_execution", [1, 4])
def test_jit_compile_with_side_effects_in_forward_matches_eager(steps_per_execution):
    """The compiled loss tracker must not keep the loss's autograd graph: the next
    step's backward would run through the previous step's freed graph."""
    x = np.random.default_rng(2).normal(size=(40, 4)).astype("float32")
    y = np.arange(40) % 3
    histories = []
    for jit in (False, True):
        torch.manual_seed(0)
        model = SideEffectNet()
        model.compile(optimizer="adam", loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"], jit_compile=jit, steps_per_execution=steps_per_execution)
        histories.append(model.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0).history)
        assert model.dtypes_seen == {torch.float32}
        assert not any(v.requires_grad for m in model.metrics for v in m.variables)
    for key in histories[0]:
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-5)
