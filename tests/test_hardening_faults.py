"""Hardening, part 2: faults inside a training step or a callback, and Ctrl-C.

tests/test_faults.py covers failures in forward, loss, backward and metrics.
Here: the optimizer step itself fails midway (every torchfit optimizer, and the
stages of the shared step: clipping, the update rule, EMA, schedules, gradient
accumulation), a callback fails, and KeyboardInterrupt arrives with
BackupAndRestore and ModelCheckpoint (also in the middle of writing a file).
States are compared byte for byte.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import callbacks as tcb
from torchfit import optimizers as topt

from test_hardening_bad_input import assert_unchanged, snapshot

RNG = np.random.default_rng(1)
X = RNG.normal(size=(20, 4)).astype("float32")
Y = (np.arange(20) % 3).astype("int64")
LOSS = torchfit.losses.SparseCategoricalCrossentropy(from_logits=True)


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(x)


class Injected(Exception):
    pass


def two_groups(model):
    return [{"params": [model.fc.weight]}, {"params": [model.fc.bias]}]


# ------------------------------------------------- the optimizer step fails
def failing_in_last_group(cls):
    """``cls`` whose step checks pass for every group but the last once armed
    (the update rules write in place, after all checks): a step that wrote
    anything before checking every group would show."""

    class Failing(cls):
        armed = False

        def _runtime_lr(self, group_index, group):
            lr = super()._runtime_lr(group_index, group)
            if Failing.armed and group is self.param_groups[-1]:
                raise Injected("check of the last group failed")
            return lr

    Failing.__name__ = cls.__name__
    return Failing


@pytest.mark.parametrize("name", sorted(topt.ALL_OBJECTS_DICT))
def test_every_torchfit_optimizer_step_is_all_or_nothing(name):
    torch.manual_seed(0)
    cls = failing_in_last_group(topt.ALL_OBJECTS_DICT[name])
    model = Net()
    model.compile(optimizer=cls(two_groups(model)), loss=LOSS)
    model.fit(X, Y, batch_size=5, epochs=1, verbose=0)  # optimizer state exists
    before, iterations = snapshot(model), model.optimizer.iterations
    cls.armed = True
    try:
        with pytest.raises(Injected):
            model.fit(X, Y, batch_size=5, epochs=1, verbose=0)
    finally:
        cls.armed = False
    assert_unchanged(model, before)
    assert model.optimizer.iterations == iterations
    model.fit(X, Y, batch_size=5, epochs=1, verbose=0)  # training goes on
    assert model.optimizer.iterations == iterations + 4


def _schedule_failing_after(steps):
    def schedule(iterations):
        if iterations >= steps:
            raise Injected("schedule failed")
        return 0.01
    return schedule


@pytest.mark.parametrize("stage", ["clip", "ema", "schedule", "accumulation", "weight_decay"])
def test_a_failing_stage_of_the_shared_optimizer_step_changes_nothing(stage):
    torch.manual_seed(0)
    state = {"armed": False}

    class Adam(topt.Adam):
        def _clip(self, grads, owned):
            if state["armed"] and stage in ("clip", "accumulation"):
                raise Injected("clip failed")
            return super()._clip(grads, owned)

        def _ema_params(self):
            if state["armed"] and stage == "ema":
                raise Injected("ema failed")
            return super()._ema_params()

        def _use_weight_decay(self, *args):
            if state["armed"] and stage == "weight_decay":
                raise Injected("decay failed")
            return super()._use_weight_decay(*args)

    kwargs = {"clip": dict(clipnorm=1.0), "ema": dict(use_ema=True),
              "schedule": dict(learning_rate=_schedule_failing_after(4)),
              "accumulation": dict(gradient_accumulation_steps=2, clipnorm=1.0),
              "weight_decay": dict(weight_decay=0.1)}[stage]
    model = Net()
    model.compile(optimizer=Adam(two_groups(model), **kwargs), loss=LOSS)
    model.fit(X, Y, batch_size=5, epochs=1, verbose=0)
    applied = [snapshot(model)]
    spy = tcb.LambdaCallback(on_train_batch_end=lambda b, logs: applied.append(snapshot(model)))
    state["armed"] = True
    with pytest.raises(Injected):
        model.fit(X, Y, batch_size=5, epochs=1, verbose=0, callbacks=[spy])
    # accumulation: micro-step 5 only accumulates (applied), micro-step 6 clips and fails
    assert len(applied) == (2 if stage == "accumulation" else 1)
    assert_unchanged(model, applied[-1])


def test_a_torch_optimizer_step_hook_failure_leaves_the_last_applied_step():
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model.compile(optimizer=optimizer, loss=LOSS)
    applied = []
    armed = {"on": False}

    def pre_hook(opt, args, kwargs):
        if armed["on"] and len(applied) == 2:
            raise Injected("pre-step hook failed")

    optimizer.register_step_pre_hook(pre_hook)
    spy = tcb.LambdaCallback(on_train_batch_end=lambda b, logs: applied.append(snapshot(model)))
    armed["on"] = True
    with pytest.raises(Injected):
        model.fit(X, Y, batch_size=5, verbose=0, callbacks=[spy])
    assert len(applied) == 2
    assert_unchanged(model, applied[-1])


# --------------------------------------------------------- a callback fails
@pytest.mark.parametrize("hook,at,applied_steps", [
    ("on_train_batch_begin", 2, 6),   # epoch 1, batch 2: 4 + 2 steps applied
    ("on_train_batch_end", 2, 7),     # after the step of batch 2
    ("on_epoch_begin", 1, 4),
    ("on_epoch_end", 1, 8),
    ("on_test_batch_end", 0, 8),      # during validation of epoch 1
])
def test_a_failing_callback_leaves_the_state_of_the_last_applied_step(hook, at, applied_steps):
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer="adam", loss=LOSS, metrics=["accuracy"])
    applied = []
    epochs_seen = []

    class Spy(tcb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            applied.append(snapshot(self.model))

    class Failing(tcb.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs_seen.append(epoch)
            if hook == "on_epoch_begin" and epoch == at:
                raise Injected(hook)

        def _maybe(self, name, index):
            if hook == name and epochs_seen[-1] == 1 and index == at:
                raise Injected(hook)

        def on_train_batch_begin(self, batch, logs=None):
            self._maybe("on_train_batch_begin", batch)

        def on_train_batch_end(self, batch, logs=None):
            self._maybe("on_train_batch_end", batch)

        def on_test_batch_end(self, batch, logs=None):
            self._maybe("on_test_batch_end", batch)

        def on_epoch_end(self, epoch, logs=None):
            if hook == "on_epoch_end" and epoch == at:
                raise Injected(hook)

    bar = tcb.ProgbarLogger()
    with pytest.raises(Injected):
        model.fit(X, Y, batch_size=5, epochs=3, verbose=1, validation_data=(X[:6], Y[:6]),
                  callbacks=[Spy(), bar, Failing()])
    assert len(applied) == applied_steps
    assert_unchanged(model, applied[-1])
    assert model.optimizer.iterations == applied_steps
    assert bar._bar is None  # the progress bar was closed


# ----------------------------------------------------------------- Ctrl-C
def interrupt_at(epoch, batch):
    class Interrupt(tcb.Callback):
        def on_train_batch_begin(self, b, logs=None):
            if self.current == epoch and b == batch:
                raise KeyboardInterrupt

        def on_epoch_begin(self, e, logs=None):
            self.current = e

    return Interrupt()


def test_ctrl_c_with_model_checkpoint_keeps_the_last_good_state_on_disk(tmp_path):
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer="adam", loss=LOSS, metrics=["accuracy"])
    epoch_ends = []
    spy = tcb.LambdaCallback(on_epoch_end=lambda e, logs: epoch_ends.append(snapshot(model)))
    bar = tcb.ProgbarLogger()
    path = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y, batch_size=5, epochs=5, verbose=1,
                  callbacks=[spy, tcb.ModelCheckpoint(str(path)), bar, interrupt_at(2, 1)])
    assert model.history.epoch == [0, 1] and len(model.history.history["loss"]) == 2
    assert bar._bar is None
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]  # no temporary file left
    assert torch.load(path, weights_only=True)["epoch"] == 2
    restored = torchfit.load_model(path, model=Net())
    assert_unchanged(restored, epoch_ends[-1])  # weights and optimizer of the end of epoch 2


def test_ctrl_c_while_a_checkpoint_is_written_keeps_the_previous_file(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer="adam", loss=LOSS)
    epoch_ends = []
    spy = tcb.LambdaCallback(on_epoch_end=lambda e, logs: epoch_ends.append(snapshot(model)))
    real_save = torch.save
    calls = {"n": 0}

    def interrupted_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            f.write(b"half a checkpoint")
            raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", interrupted_save)
    path = tmp_path / "ckpt.pt"
    bar = tcb.ProgbarLogger()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, Y, batch_size=5, epochs=5, verbose=1,
                  callbacks=[spy, tcb.ModelCheckpoint(str(path)), bar])
    monkeypatch.setattr(torch, "save", real_save)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.pt"]
    assert torch.load(path, weights_only=True)["epoch"] == 2
    assert_unchanged(torchfit.load_model(path, model=Net()), epoch_ends[1])
    assert model.history.epoch == [0, 1]
    assert bar._bar is None


def backup_script(directory, interrupt=None, torch_save=None):
    torch.manual_seed(0)
    np.random.seed(0)
    model = Net()
    model.compile(optimizer="adam", loss=LOSS, metrics=["accuracy"])
    backups = []

    class Spy(tcb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch % 2 == 1 and batch != 3:
                backups.append(snapshot(self.model))  # BackupAndRestore(save_freq=2) writes now

    callbacks = [Spy(), tcb.BackupAndRestore(directory, save_freq=2)]
    if interrupt is not None:
        callbacks.append(interrupt_at(*interrupt))
    bar = tcb.ProgbarLogger()
    history = model.fit(X, Y, batch_size=5, epochs=3, verbose=1, callbacks=callbacks + [bar])
    return model, history, backups, bar


def test_ctrl_c_with_backup_and_restore_keeps_a_loadable_backup_and_resumes(tmp_path):
    reference, _, _, _ = backup_script(str(tmp_path / "ref"))
    directory = str(tmp_path / "b")
    model = None
    with pytest.raises(KeyboardInterrupt):
        backup_script(directory, interrupt=(1, 3))
    backup = torch.load(os.path.join(directory, "latest.pt"), weights_only=True)
    assert (backup["epoch"], backup["step"]) == (1, 2)
    model, history, _, bar = backup_script(directory)
    assert history.epoch == [1, 2]
    assert_unchanged(model, snapshot(reference))  # bit-identical to the uninterrupted run
    assert bar._bar is None
    assert not os.path.exists(directory)


def test_ctrl_c_during_a_backup_write_keeps_the_previous_backup(tmp_path, monkeypatch):
    reference, _, _, _ = backup_script(str(tmp_path / "ref"))
    directory = str(tmp_path / "b")
    real_save = torch.save
    calls = {"n": 0}

    def interrupted_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # the third backup: epoch 1, step 2
            f.write(b"partial")
            raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        backup_script(directory)
    monkeypatch.setattr(torch, "save", real_save)
    assert os.listdir(directory) == ["latest.pt"]
    backup = torch.load(os.path.join(directory, "latest.pt"), weights_only=True)
    assert (backup["epoch"], backup["step"]) == (1, 0)  # the previous, complete backup
    model, history, _, _ = backup_script(directory)
    assert history.epoch == [1, 2]
    assert_unchanged(model, snapshot(reference))


def test_ctrl_c_inside_the_optimizer_step_changes_nothing_and_ends_cleanly(tmp_path):
    torch.manual_seed(0)
    cls = failing_in_last_group(topt.Adam)

    class Interrupting(cls):
        def _runtime_lr(self, *args, **kwargs):
            try:
                return super()._runtime_lr(*args, **kwargs)
            except Injected:
                raise KeyboardInterrupt from None

    model = Net()
    model.compile(optimizer=Interrupting(two_groups(model)), loss=LOSS)
    applied, ended = [], []
    spy = tcb.LambdaCallback(on_train_batch_end=lambda b, logs: applied.append(snapshot(model)),
                             on_train_end=lambda logs: ended.append(logs))
    arm = tcb.LambdaCallback(on_epoch_begin=lambda e, logs: setattr(cls, "armed", e == 1))
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, Y, batch_size=5, epochs=3, verbose=0, callbacks=[spy, arm])
    finally:
        cls.armed = False
    assert len(applied) == 4 and model.history.epoch == [0]
    assert_unchanged(model, applied[-1])
    assert ended and "loss" in ended[0]  # on_train_end ran with the finished epoch's logs
