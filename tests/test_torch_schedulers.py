"""Torch LR schedulers, first-class: ``compile(lr_scheduler=...)`` and ``TorchLRScheduler``.

Differential: a hand-written PyTorch loop (same module, torch optimizer,
torch scheduler, data order) gives the same weights as ``fit``, bit for bit
on CPU, per step and per epoch, with ``steps_per_execution`` 1 and 4.
"""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as sched

import torchfit
from torchfit.callbacks import BackupAndRestore, Callback, ModelCheckpoint, TorchLRScheduler

ROWS, FEATURES, BATCH, EPOCHS = 40, 4, 8, 3  # 5 steps per epoch
STEPS = ROWS // BATCH * EPOCHS


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(FEATURES, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x):
        return self.body(x)


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, FEATURES)).astype("float32")
    return x, (x.sum(axis=1, keepdims=True) * 0.5).astype("float32")


def halve_every_two(epoch):
    return 0.5 ** (epoch // 2)


# name -> (factory(optimizer), interval, monitor)
SCHEDULERS = {
    "step_lr": (lambda o: sched.StepLR(o, step_size=3, gamma=0.5), "step", None),
    "one_cycle": (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=4 * ROWS // BATCH), "step", None),
    "lambda": (lambda o: sched.LambdaLR(o, halve_every_two), "step", None),
    "sequential": (lambda o: sched.SequentialLR(
        o, [sched.LinearLR(o, start_factor=0.2, total_iters=4), sched.ExponentialLR(o, 0.9)],
        milestones=[4]), "step", None),
    "exponential_epoch": (lambda o: sched.ExponentialLR(o, gamma=0.7), "epoch", None),
    "cosine_epoch": (lambda o: sched.CosineAnnealingLR(o, T_max=EPOCHS), "epoch", None),
    "plateau": (lambda o: sched.ReduceLROnPlateau(o, factor=0.5, patience=0), "epoch", "loss"),
}


def _optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def _torch_loop(name, epochs=EPOCHS):
    """The hand-written PyTorch loop fit must equal."""
    factory, interval, monitor = SCHEDULERS[name]
    model = Net()
    optimizer = _optimizer(model)
    scheduler = factory(optimizer)
    loss_fn = nn.MSELoss()
    x, y = (torch.from_numpy(a) for a in _data())
    lrs = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, ROWS, BATCH):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[start:start + BATCH]), y[start:start + BATCH])
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            if interval == "step":
                scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])  # what the optimizer holds at epoch end
        if interval == "epoch":
            scheduler.step(total / (ROWS // BATCH)) if monitor else scheduler.step()
    return model, lrs


def _fit(name, steps_per_execution=1, epochs=EPOCHS, callbacks=None, loss=None):
    factory, interval, monitor = SCHEDULERS[name]
    model = Net()
    model.compile(optimizer=_optimizer(model), loss=loss or nn.MSELoss(),
                  steps_per_execution=steps_per_execution,
                  lr_scheduler={"scheduler": factory, "interval": interval, "monitor": monitor})
    history = model.fit(*_data(), batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0,
                        callbacks=callbacks)
    return model, history


def _assert_same_weights(a, b):
    for (key, value), other in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(value, other), key


@pytest.mark.parametrize("steps_per_execution", [1, 4])
@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_fit_equals_a_torch_loop(name, steps_per_execution):
    expected, lrs = _torch_loop(name)
    model, history = _fit(name, steps_per_execution)
    _assert_same_weights(model, expected)
    assert history.history["learning_rate"] == pytest.approx(lrs, rel=0, abs=0)


def test_callback_in_fit_equals_compile_argument():
    expected, _ = _torch_loop("step_lr")
    model = Net()
    optimizer = _optimizer(model)
    model.compile(optimizer=optimizer, loss=nn.MSELoss(), steps_per_execution=4)
    callback = TorchLRScheduler(sched.StepLR(optimizer, step_size=3, gamma=0.5), interval="step")
    model.fit(*_data(), batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0,
              callbacks=[callback])
    _assert_same_weights(model, expected)
    assert callback.scheduler.last_epoch == STEPS == callback.applied_steps


def test_per_step_counts_every_step_of_a_group():
    """The issue's case: 30 optimizer steps under steps_per_execution=4 are 30 scheduler steps."""
    model = Net()
    model.compile(optimizer="sgd", loss="mse", steps_per_execution=4,
                  lr_scheduler={"scheduler": lambda o: sched.StepLR(o, 1000), "interval": "step"})
    x = np.zeros((30 * 4, FEATURES), "float32")
    model.fit(x, np.zeros((120, 1), "float32"), batch_size=4, epochs=1, verbose=0)
    assert model.lr_scheduler.scheduler.last_epoch == 30


@pytest.mark.parametrize("frequency", [2, 3])
def test_frequency_steps_every_nth_step(frequency):
    model = Net()
    model.compile(optimizer="sgd", loss="mse", lr_scheduler={
        "scheduler": lambda o: sched.StepLR(o, 1000), "interval": "step", "frequency": frequency})
    model.fit(*_data(), batch_size=BATCH, epochs=EPOCHS, verbose=0)
    assert model.lr_scheduler.scheduler.last_epoch == STEPS // frequency


def test_gradient_accumulation_steps_per_applied_update():
    """A hand-written loop with the same torchfit optimizer: the scheduler moves
    only when an accumulated update is applied."""
    def build():
        model = Net()
        optimizer = torchfit.optimizers.SGD(learning_rate=0.05, gradient_accumulation_steps=2)
        return model, optimizer

    model, optimizer = build()
    model.compile(optimizer=optimizer, loss=nn.MSELoss(), steps_per_execution=4, lr_scheduler={
        "scheduler": lambda o: sched.StepLR(o, step_size=1, gamma=0.8), "interval": "step"})
    model.fit(*_data(), batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    assert model.lr_scheduler.scheduler.last_epoch == 2 * ROWS // BATCH // 2

    reference, ref_optimizer = build()
    reference.compile(optimizer=ref_optimizer, loss=nn.MSELoss())
    scheduler = sched.StepLR(ref_optimizer, step_size=1, gamma=0.8)
    x, y = (torch.from_numpy(a) for a in _data())
    for _ in range(2):
        for start in range(0, ROWS, BATCH):
            ref_optimizer.zero_grad(set_to_none=True)
            nn.MSELoss()(reference(x[start:start + BATCH]), y[start:start + BATCH]).backward()
            before = ref_optimizer.iterations
            ref_optimizer.step()
            if ref_optimizer.iterations != before:
                scheduler.step()
    _assert_same_weights(model, reference)


def test_skipped_loss_scale_steps_do_not_step_the_scheduler():
    model = Net()
    inner = torch.optim.SGD(model.parameters(), lr=0.01)
    model.compile(optimizer=inner, loss=nn.MSELoss(), lr_scheduler={
        "scheduler": sched.StepLR(inner, 1000), "interval": "step"})
    model.optimizer = torchfit.precision.LossScaleOptimizer(inner, initial_scale=2.0 ** 4)
    x, y = _data()
    x[8:16] = np.inf  # batch 2 has non-finite gradients: its step is skipped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    assert model.optimizer.dynamic_scale == 2.0 ** 3  # halved once: one step skipped
    assert model.lr_scheduler.scheduler.last_epoch == ROWS // BATCH - 1


def test_plateau_reads_keras_style_monitor():
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.compile(optimizer=optimizer, loss="mse", lr_scheduler=TorchLRScheduler(
        sched.ReduceLROnPlateau(optimizer, factor=0.5, patience=0, mode="max")))
    x, y = _data()
    history = model.fit(x, y, validation_data=(x, y), batch_size=BATCH, epochs=3, verbose=0)
    # mode="max" on a falling val_loss: every epoch after the first is "no improvement"
    assert history.history["learning_rate"] == pytest.approx([0.05, 0.05, 0.025])
    assert model.lr_scheduler.monitor == "val_loss"


def test_plateau_mode_against_the_metric_direction_warns():
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = _data()
    model.compile(optimizer=optimizer, loss="mse", metrics=["r2_score"],
                  lr_scheduler={"scheduler": sched.ReduceLROnPlateau(optimizer),
                                "monitor": "val_r2_score"})
    with pytest.warns(UserWarning, match="expected mode='max'"):
        model.fit(x, y, validation_data=(x, y), batch_size=BATCH, epochs=1, verbose=0)


def test_plateau_without_the_monitored_log_warns():
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    model.compile(optimizer=optimizer, loss="mse",
                  lr_scheduler=sched.ReduceLROnPlateau(optimizer))
    with pytest.warns(UserWarning, match="val_loss"):
        model.fit(*_data(), batch_size=BATCH, epochs=1, verbose=0)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"scheduler": "step"}, TypeError, "`scheduler`"),
    ({"interval": "batch"}, ValueError, "`interval`"),
    ({"frequency": 0}, ValueError, "`frequency`"),
    ({"monitor": "loss"}, ValueError, "`monitor`"),
])
def test_bad_arguments(kwargs, error, match):
    optimizer = torch.optim.SGD(Net().parameters(), lr=0.1)
    arguments = {"scheduler": sched.StepLR(optimizer, 2), **kwargs}
    with pytest.raises(error, match=match):
        TorchLRScheduler(**arguments)


def test_plateau_per_step_is_refused():
    optimizer = torch.optim.SGD(Net().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="interval='epoch'"):
        TorchLRScheduler(sched.ReduceLROnPlateau(optimizer), interval="step")


def test_compile_rejects_bad_lr_scheduler_and_foreign_optimizer():
    model = Net()
    with pytest.raises(TypeError, match="`lr_scheduler`"):
        model.compile(optimizer="sgd", loss="mse", lr_scheduler=3)
    with pytest.raises(ValueError, match="'scheduler'"):
        model.compile(optimizer="sgd", loss="mse", lr_scheduler={"interval": "step"})
    other = torch.optim.SGD(Net().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="`lr_scheduler`.*model's optimizer"):
        model.compile(optimizer="sgd", loss="mse", lr_scheduler=sched.StepLR(other, 2))
    assert not model.compiled
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="TorchLRScheduler.*model's optimizer"):
        model.fit(*_data(), verbose=0, callbacks=[TorchLRScheduler(sched.StepLR(other, 2))])


def test_train_on_batch_does_not_step():
    model = Net()
    model.compile(optimizer="sgd", loss="mse", lr_scheduler={
        "scheduler": lambda o: sched.StepLR(o, 1), "interval": "step"})
    model.train_on_batch(*_data())
    assert model.lr_scheduler.scheduler.last_epoch == 0


def test_torchfit_adam_with_one_cycle_without_momentum_cycling():
    model = Net()
    model.compile(optimizer=torchfit.optimizers.Adam(learning_rate=1e-3), loss="mse",
                  lr_scheduler={"scheduler": lambda o: sched.OneCycleLR(
                      o, max_lr=0.01, total_steps=STEPS, cycle_momentum=False),
                      "interval": "step"})
    history = model.fit(*_data(), batch_size=BATCH, epochs=EPOCHS, verbose=0)
    assert model.lr_scheduler.scheduler.last_epoch == STEPS
    assert len(set(history.history["learning_rate"])) == EPOCHS


# ---------------------------------------------------------------- state
class StopAt(Callback):
    def __init__(self, epoch, batch):
        super().__init__()
        self.at = (epoch, batch)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if (self.epoch, batch) == self.at:
            raise RuntimeError("interrupted")


@pytest.mark.parametrize("name", ["one_cycle", "lambda", "sequential", "plateau"])
@pytest.mark.parametrize("save_freq", ["epoch", 3])
def test_backup_and_restore_resumes_bit_identically(tmp_path, name, save_freq):
    expected, _ = _fit(name, epochs=4)
    backup = BackupAndRestore(str(tmp_path / "backup"), save_freq=save_freq)
    with pytest.raises(RuntimeError, match="interrupted"):
        _fit(name, epochs=4, callbacks=[backup, StopAt(2, 2)])
    resumed, _ = _fit(name, epochs=4, callbacks=[BackupAndRestore(str(tmp_path / "backup"),
                                                                  save_freq=save_freq)])
    _assert_same_weights(resumed, expected)


def test_model_checkpoint_records_the_scheduler(tmp_path):
    path = str(tmp_path / "ckpt.pt")
    model, _ = _fit("sequential", epochs=2, callbacks=[ModelCheckpoint(path)], loss="mse")
    loaded = torchfit.load_model(path, model=Net())
    saved = model.lr_scheduler.scheduler.state_dict()
    restored = loaded.lr_scheduler.scheduler.state_dict()
    assert type(loaded.lr_scheduler.scheduler) is sched.SequentialLR
    assert restored["last_epoch"] == saved["last_epoch"] == 2 * ROWS // BATCH
    assert [type(s) for s in loaded.lr_scheduler.scheduler._schedulers] == [
        sched.LinearLR, sched.ExponentialLR]
    assert loaded.lr_scheduler.interval == "step"


def test_lambda_comes_back_through_custom_objects(tmp_path):
    path = str(tmp_path / "model.pt")
    model, _ = _fit("lambda", epochs=1, loss="mse")
    model.save(path)
    with pytest.raises(ValueError, match="custom_objects=\\{'halve_every_two'"):
        torchfit.load_model(path, model=Net())
    loaded = torchfit.load_model(path, model=Net(),
                                 custom_objects={"halve_every_two": halve_every_two})
    assert loaded.lr_scheduler.scheduler.lr_lambdas == [halve_every_two]


def test_unknown_scheduler_class_is_not_imported(tmp_path):
    class MyScheduler(sched.StepLR):
        pass

    path = str(tmp_path / "model.pt")
    model = Net()
    optimizer = _optimizer(model)
    model.compile(optimizer=optimizer, loss="mse", lr_scheduler=MyScheduler(optimizer, 2))
    model.save(path)
    with pytest.raises(ValueError, match="custom_objects=\\{'MyScheduler'"):
        torchfit.load_model(path, model=Net())
    loaded = torchfit.load_model(path, model=Net(), custom_objects={"MyScheduler": MyScheduler})
    assert type(loaded.lr_scheduler.scheduler) is MyScheduler


SCRIPT = textwrap.dedent("""
    import sys, numpy as np, torch
    from torch import nn
    sys.path.insert(0, {tests!r})
    import torchfit
    from test_torch_schedulers import Net, _data, BATCH
    model = torchfit.load_model({path!r}, model=Net())
    assert model.lr_scheduler is not None, "scheduler not restored"
    model.fit(*_data(), batch_size=BATCH, epochs=4, initial_epoch=2, shuffle=False, verbose=0)
    torch.save(model.state_dict(), {out!r})
""")


def _compile_for_resume(model, torch_native):
    optimizer = _optimizer(model)
    scheduler = {"scheduler": sched.OneCycleLR(optimizer, 0.1, total_steps=20), "interval": "step"}
    if torch_native:
        import torchmetrics

        model.compile(optimizer=optimizer, loss=nn.MSELoss(),
                      metrics=[torchmetrics.MeanAbsoluteError()], lr_scheduler=scheduler)
    else:
        model.compile(optimizer=optimizer, loss="mse", metrics=["mae"], lr_scheduler=scheduler)
    return model


@pytest.mark.parametrize("torch_native", [False, True])
def test_save_mid_training_and_continue_in_a_fresh_process(tmp_path, torch_native):
    """Torch optimizer + torch scheduler; with ``torch_native`` also a torch loss
    module and a torchmetrics metric, all rebuilt by ``load_model``."""
    if torch_native:
        pytest.importorskip("torchmetrics")
    uninterrupted = _compile_for_resume(Net(), torch_native)
    uninterrupted.fit(*_data(), batch_size=BATCH, epochs=4, shuffle=False, verbose=0)
    first = _compile_for_resume(Net(), torch_native)
    first.fit(*_data(), batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    path, out = str(tmp_path / "half.pt"), str(tmp_path / "final.pt")
    first.save(path)
    assert not torchfit.saving.read_checkpoint(path)["compile_config"]["unserialized"]
    script = SCRIPT.format(tests=os.path.dirname(__file__), path=path, out=out)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    final = torch.load(out, weights_only=True)
    for key, value in uninterrupted.state_dict().items():
        assert torch.equal(final[key], value), key


# Every allow-listed class: saved, loaded into a fresh model, trained on alike.
EVERY_CLASS = {
    "LambdaLR": (lambda o: sched.LambdaLR(o, halve_every_two), "step"),
    "MultiplicativeLR": (lambda o: sched.MultiplicativeLR(o, lambda step: 0.9), "step"),
    "StepLR": (lambda o: sched.StepLR(o, 2, 0.5), "step"),
    "MultiStepLR": (lambda o: sched.MultiStepLR(o, milestones=[2, 6], gamma=0.5), "step"),
    "ConstantLR": (lambda o: sched.ConstantLR(o, factor=0.5, total_iters=7), "step"),
    "LinearLR": (lambda o: sched.LinearLR(o, start_factor=0.1, total_iters=8), "step"),
    "ExponentialLR": (lambda o: sched.ExponentialLR(o, 0.9), "step"),
    "SequentialLR": (SCHEDULERS["sequential"][0], "step"),
    "PolynomialLR": (lambda o: sched.PolynomialLR(o, total_iters=12, power=2.0), "step"),
    "CosineAnnealingLR": (lambda o: sched.CosineAnnealingLR(o, T_max=7), "step"),
    "ChainedScheduler": (lambda o: sched.ChainedScheduler(
        [sched.StepLR(o, 3, 0.5), sched.ExponentialLR(o, 0.95)]), "step"),
    "ReduceLROnPlateau": (lambda o: sched.ReduceLROnPlateau(o, patience=0, mode="max"), "epoch"),
    "CyclicLR": (lambda o: sched.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3), "step"),
    "CosineAnnealingWarmRestarts": (lambda o: sched.CosineAnnealingWarmRestarts(o, T_0=3), "step"),
    "OneCycleLR": (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=20), "step"),
}


def test_every_allowed_class_is_covered():
    from torchfit.saving.lr_schedulers import ALLOWED_SCHEDULERS

    assert set(EVERY_CLASS) == set(ALLOWED_SCHEDULERS)


@pytest.mark.parametrize("name", sorted(EVERY_CLASS))
def test_every_scheduler_class_survives_save_and_load(tmp_path, name):
    factory, interval = EVERY_CLASS[name]
    spec = {"scheduler": factory, "interval": interval,
            "monitor": "loss" if name == "ReduceLROnPlateau" else None}
    model = Net()
    model.compile(optimizer=_optimizer(model), loss="mse", lr_scheduler=spec)
    model.fit(*_data(), batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    path = str(tmp_path / "model.pt")
    model.save(path)
    functions = {"halve_every_two": halve_every_two, "lr_lambda": lambda step: 0.9}
    loaded = torchfit.load_model(path, model=Net(), custom_objects=functions)
    assert type(loaded.lr_scheduler.scheduler) is type(model.lr_scheduler.scheduler)
    for each in (model, loaded):
        each.fit(*_data(), batch_size=BATCH, epochs=2, shuffle=False, verbose=0)
    _assert_same_weights(loaded, model)
    assert loaded.lr_scheduler.state_dict() == model.lr_scheduler.state_dict()


def test_load_into_a_model_compiled_with_another_scheduler_class(tmp_path):
    path = str(tmp_path / "model.pt")
    model, _ = _fit("step_lr", epochs=1, loss="mse")
    model.save(path)
    target = Net()
    optimizer = _optimizer(target)
    target.compile(optimizer=optimizer, loss="mse",
                   lr_scheduler=sched.ExponentialLR(optimizer, 0.5))
    before = target.lr_scheduler.state_dict()
    with pytest.raises(ValueError, match="StepLR.*ExponentialLR"):
        torchfit.load_model(path, model=target)
    assert target.lr_scheduler.state_dict() == before


def test_damaged_scheduler_record_is_reported():
    from torchfit.saving.lr_schedulers import build_scheduler, restore_lr_scheduler

    model = Net()
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="damaged"):
        restore_lr_scheduler(model, {"classes": "os.system"}, None)
    with pytest.raises(ValueError, match="not a torch.optim.lr_scheduler class"):
        build_scheduler({"class_name": "os.system"}, model.optimizer, None)
    assert model.lr_scheduler is None


def test_backup_and_restore_with_the_callback_passed_to_fit(tmp_path):
    def run(callbacks):
        model = Net()
        optimizer = _optimizer(model)
        scheduler = TorchLRScheduler(sched.StepLR(optimizer, 2, 0.7), interval="step")
        model.compile(optimizer=optimizer, loss=nn.MSELoss())
        model.fit(*_data(), batch_size=BATCH, epochs=4, shuffle=False, verbose=0,
                  callbacks=[scheduler, *callbacks])
        return model

    expected = run([])
    with pytest.raises(RuntimeError, match="interrupted"):
        run([BackupAndRestore(str(tmp_path), save_freq=2), StopAt(1, 3)])
    _assert_same_weights(run([BackupAndRestore(str(tmp_path), save_freq=2)]), expected)
