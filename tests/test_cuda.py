"""The CUDA paths: AMP float16 with GradScaler, bfloat16, jit_compile, steps_per_execution,
host synchronisation, metrics and RNG restore on a GPU.

Skipped without CUDA. Run on a lent GPU with ``bench/cuda.sh`` (which also runs the
CUDA benchmarks)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit.precision import LossScaleOptimizer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 8)).astype("float32")
Y = (np.arange(96) % 4).astype("int64")


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, 4))
        self.seen = set()

    def forward(self, x):
        out = self.body(x)
        self.seen.add(out.dtype)
        return out


@pytest.fixture(autouse=True)
def float32_policy():
    yield
    torchfit.mixed_precision.set_global_policy("float32")


def ce():
    return torchfit.losses.SparseCategoricalCrossentropy(from_logits=True)


def twins(**net_kwargs):
    torch.manual_seed(0)
    first = Net(**net_kwargs)
    second = Net(**net_kwargs)
    second.load_state_dict(first.state_dict())
    return first.cuda(), second.cuda()


def test_mixed_float16_trains_with_a_dynamic_grad_scaler():
    model, reference = twins()
    model.dtype_policy = "mixed_float16"
    model.compile(optimizer="adam", loss=ce(), metrics=["accuracy"], jit_compile=False)
    reference.compile(optimizer="adam", loss=ce(), metrics=["accuracy"], jit_compile=False)
    assert isinstance(model.optimizer, LossScaleOptimizer)
    history = model.fit(X, Y, batch_size=16, epochs=3, verbose=0, shuffle=False).history
    expected = reference.fit(X, Y, batch_size=16, epochs=3, verbose=0, shuffle=False).history
    assert model.seen == {torch.float16} and reference.seen == {torch.float32}
    assert all(p.dtype == torch.float32 and p.is_cuda for p in model.parameters())
    assert history.keys() == expected.keys()
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=2e-2, atol=2e-3)
    assert history["loss"][-1] < history["loss"][0]
    assert 15 <= int(model.optimizer.iterations) <= 18  # 18 batches; an overflow may skip a few


def test_float16_overflow_skips_the_step_and_the_schedule():
    seen_lrs = []

    def schedule(iterations):
        seen_lrs.append(int(iterations))
        return 0.1

    class Overflow(Net):
        blow_up = False

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            value = super().compute_loss(x, y, y_pred, sample_weight, training)
            return value * float("inf") if self.blow_up else value

    torch.manual_seed(0)
    model = Overflow().cuda()
    model.dtype_policy = "mixed_float16"
    model.compile(optimizer=torchfit.optimizers.SGD(learning_rate=schedule), loss=ce(), jit_compile=False)
    model.train_on_batch(X[:8], Y[:8])
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    scale = float(model.optimizer.dynamic_scale)
    model.blow_up = True
    model.train_on_batch(X[:8], Y[:8])
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert int(model.optimizer.iterations) == 1
    assert float(model.optimizer.dynamic_scale) == scale / 2
    model.blow_up = False
    model.train_on_batch(X[:8], Y[:8])
    assert int(model.optimizer.iterations) == 2
    assert max(seen_lrs) == 1  # the skipped step never reached the schedule


def test_float16_clipping_sees_unscaled_gradients():
    """clipnorm applies to the true gradients: one SGD step moves the weights by lr * clipnorm."""
    torch.manual_seed(0)
    model = Net().cuda()
    model.dtype_policy = "mixed_float16"
    model.compile(optimizer=torchfit.optimizers.SGD(learning_rate=1.0, global_clipnorm=1e-3),
                  loss=ce(), jit_compile=False)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    model.train_on_batch(X[:16], Y[:16])
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert float((after - before).norm()) == pytest.approx(1e-3, rel=0.05)


def test_mixed_bfloat16_needs_no_scaler():
    model, _ = twins()
    model.dtype_policy = "mixed_bfloat16"
    model.compile(optimizer="adam", loss=ce(), jit_compile=False)
    assert not isinstance(model.optimizer, LossScaleOptimizer)
    history = model.fit(X, Y, batch_size=16, epochs=2, verbose=0).history
    assert model.seen == {torch.bfloat16}
    assert np.isfinite(history["loss"]).all()


@pytest.mark.parametrize("jit_compile", [True, "auto", {"mode": "reduce-overhead"}])
def test_jit_compile_matches_eager(jit_compile):
    compiled, eager = twins()
    compiled.compile(optimizer="adam", loss=ce(), metrics=["accuracy"], jit_compile=jit_compile)
    eager.compile(optimizer="adam", loss=ce(), metrics=["accuracy"], jit_compile=False)
    histories = [m.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0,
                       validation_data=(X[:32], Y[:32])).history for m in (compiled, eager)]
    assert histories[0].keys() == histories[1].keys()
    for key in histories[0]:
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-4, atol=1e-5)
    assert list(compiled.state_dict()) == list(eager.state_dict())
    np.testing.assert_allclose(compiled.predict(X, verbose=0), eager.predict(X, verbose=0), rtol=1e-4, atol=1e-5)


def test_jit_compile_with_mixed_float16():
    compiled, eager = twins()
    for model, jit in ((compiled, True), (eager, False)):
        model.dtype_policy = "mixed_float16"
        model.compile(optimizer="adam", loss=ce(), jit_compile=jit)
    histories = [m.fit(X, Y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
                 for m in (compiled, eager)]
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=2e-2)
    assert int(compiled.optimizer.iterations) == int(eager.optimizer.iterations)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_steps_per_execution_8_equals_one(jit_compile):
    histories = []
    for spe in (1, 8):
        torch.manual_seed(0)
        model = Net().cuda()
        model.compile(optimizer="adam", loss=ce(), metrics=["accuracy"], steps_per_execution=spe,
                      jit_compile=jit_compile)
        histories.append(model.fit(X, Y, batch_size=4, epochs=2, verbose=0, validation_split=0.25).history)
    for key in histories[0]:
        np.testing.assert_allclose(histories[0][key], histories[1][key], rtol=1e-5)


def count_syncs(fn) -> int:
    """Host synchronisations CUDA reports while ``fn`` runs."""
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message).lower() for w in caught)


@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_no_host_sync_per_step(call):
    """The number of host syncs does not grow with the number of steps."""
    torch.manual_seed(0)
    model = Net().cuda()
    model.compile(optimizer="adam", loss=ce(), metrics=["accuracy"], jit_compile=False)
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)  # builds everything once

    def run(samples):
        if call == "fit":
            return lambda: model.fit(X[:samples], Y[:samples], batch_size=8, epochs=1, verbose=0)
        if call == "evaluate":
            return lambda: model.evaluate(X[:samples], Y[:samples], batch_size=8, verbose=0)
        return lambda: model.predict(X[:samples], batch_size=8, verbose=0)

    assert count_syncs(run(16)) == count_syncs(run(96))


def test_metrics_on_cuda_equal_cpu():
    torch.manual_seed(0)
    model = Net()
    metrics = ["accuracy", torchfit.metrics.SparseTopKCategoricalAccuracy(k=2), "sparse_categorical_crossentropy"]
    model.compile(loss=ce(), metrics=metrics)
    on_cpu = model.evaluate(X, Y, batch_size=8, verbose=0, return_dict=True)
    model.cuda()
    model.compile(loss=ce(), metrics=["accuracy", torchfit.metrics.SparseTopKCategoricalAccuracy(k=2),
                                      "sparse_categorical_crossentropy"])
    on_gpu = model.evaluate(X, Y, batch_size=8, verbose=0, return_dict=True)
    assert on_gpu == pytest.approx(on_cpu, rel=1e-4)


def test_backup_restores_the_cuda_rng(tmp_path):
    """A resumed run with dropout on the GPU draws the same masks as an uninterrupted one."""

    class Interrupt(torchfit.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.model.optimizer.iterations == 7:
                raise RuntimeError("interrupted")

    def trained(callbacks):
        torch.manual_seed(0)
        torch.cuda.manual_seed_all(0)
        model = Net(dropout=0.5).cuda()
        model.compile(optimizer="adam", loss=ce(), jit_compile=False)
        try:
            model.fit(X, Y, batch_size=8, epochs=3, verbose=0, callbacks=callbacks)
        except RuntimeError:
            return None
        return model

    full = trained([])
    backup = torchfit.callbacks.BackupAndRestore(str(tmp_path / "backup"), save_freq=1)
    assert trained([backup, Interrupt()]) is None
    resumed = trained([torchfit.callbacks.BackupAndRestore(str(tmp_path / "backup"), save_freq=1)])
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_predict_returns_numpy_from_pinned_batches():
    torch.manual_seed(0)
    model = Net().cuda()
    out = model.predict(X, batch_size=16, verbose=0)
    assert isinstance(out, np.ndarray) and out.shape == (96, 4)
    np.testing.assert_allclose(out, model.cpu().predict(X, batch_size=16, verbose=0), rtol=1e-5, atol=1e-6)
