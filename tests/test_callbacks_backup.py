"""BackupAndRestore: a run killed at any point and re-run from the same script ends
with weights bit-identical (torch.equal) to an uninterrupted run, on CPU."""

from __future__ import annotations

import hashlib
import os
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import torchfit
from torchfit import callbacks as tcb

RNG = np.random.default_rng(7)
X = RNG.normal(size=(64, 6)).astype("float32")
Y = RNG.integers(0, 3, size=64).astype("int64")


class NoisyNet(torchfit.KerasStyleModule, nn.Module):
    """Dropout (torch RNG) plus input noise from NumPy's and Python's global RNGs,
    so the weights depend on every generator a backup must restore."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(6, 16)
        self.bn = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.3)
        self.l2 = nn.Linear(16, 3)

    trace = None  # a list: the training forward passes append a hash of their batch

    def forward(self, x):
        if self.training:
            if self.trace is not None:
                self.trace.append(hashlib.sha1(x.detach().numpy().tobytes()).hexdigest()[:12])
            noise = torch.from_numpy(np.random.normal(size=tuple(x.shape)).astype("float32"))
            x = x + 0.05 * random.random() * noise
        return torch.softmax(self.l2(self.drop(torch.relu(self.bn(self.l1(x))))), dim=-1)


class Crash(Exception):
    pass


class CrashAt(tcb.Callback):
    """Raises at the n-th call of ``hook`` (counted over the whole fit call)."""

    def __init__(self, hook: str, n: int, error: type = None) -> None:
        super().__init__()
        self.hook, self.n, self.calls, self.error = hook, n, 0, error or Crash

    def __getattribute__(self, name):
        if name == object.__getattribute__(self, "hook"):
            def hook(*args, **kwargs):
                self.calls += 1
                if self.calls == self.n:
                    raise self.error(f"{name} #{self.n}")
            return hook
        return object.__getattribute__(self, name)


class Recorder(tcb.Callback):
    """Stateless: records the ``(epoch, batch)`` of each batch this run trains."""

    def __init__(self, seen) -> None:
        super().__init__()
        self.seen, self.epoch = seen, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self.seen.append((self.epoch, batch))


class StepScheduler(tcb.Callback):
    """A user callback stepping a torch LR scheduler it holds (found by the backup)."""

    def on_train_begin(self, logs=None):
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.model.optimizer, step_size=1,
                                                         gamma=0.7)

    def on_epoch_end(self, epoch, logs=None):
        self.scheduler.step()


def script(backup_dir, crash=None, *, epochs=3, save_freq=2, optimizer="adam", loader=False,
           extra=None, steps_per_execution=1, seen=None, steps_per_epoch=None, trace=None,
           record=None):
    """The training script that gets killed and re-run.

    ``seen`` gets the batch indices trained, ``record`` their ``(epoch, batch)``
    and ``trace`` a hash of each trained batch's ``x`` (the data order)."""
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model = NoisyNet()
    model.trace = trace
    if optimizer == "torch":
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=steps_per_execution)
    callbacks = [
        tcb.EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True),
        tcb.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=10.0),
        tcb.BackupAndRestore(backup_dir, save_freq=save_freq, **(extra or {})),
    ]
    if crash is not None:
        callbacks.append(CrashAt(*crash))
    if seen is not None:  # stateless: records the batches this run trains
        callbacks.append(tcb.LambdaCallback(on_train_batch_begin=lambda b, logs: seen.append(b)))
    if record is not None:
        callbacks.append(Recorder(record))
    if loader:
        data = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(Y)), batch_size=10,
                          shuffle=True)
        history = model.fit(data, epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False,
                            validation_data=(X[:16], Y[:16]), steps_per_epoch=steps_per_epoch)
    else:
        history = model.fit(X, Y, batch_size=10, epochs=epochs, verbose=0, callbacks=callbacks,
                            validation_split=0.25, shuffle=True, steps_per_epoch=steps_per_epoch)
    return model, history


def assert_identical(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    oa, ob = a.optimizer.state_dict(), b.optimizer.state_dict()
    assert oa["param_groups"] == ob["param_groups"]
    for index, state in oa["state"].items():
        for name, value in state.items():
            other = ob["state"][index][name]
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(other)), (index, name)


def run_with_crashes(backup_dir, crashes, seen=None, trace=None, record=None, **kwargs):
    for crash in crashes:
        with pytest.raises(crash[2] if len(crash) > 2 else Crash):
            script(backup_dir, crash, **kwargs)
        assert os.listdir(backup_dir) or crash[1] <= 2
    return script(backup_dir, seen=seen, trace=trace, record=record, **kwargs)


@pytest.fixture(scope="module")
def reference():
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        model, history = script(os.path.join(directory, "ref"))
    return model, history


@pytest.mark.parametrize("crashes", [
    [("on_train_batch_end", 3)],                      # mid-epoch 0, after the backup at step 2
    [("on_train_batch_end", 7)],                      # mid-epoch 1
    [("on_train_batch_end", 5)],                      # last batch of epoch 0 (backup deferred)
    [("on_test_batch_end", 2)],                       # during validation of epoch 1
    [("on_epoch_end", 2)],                            # at the end of epoch 1, before its backup
    [("on_epoch_begin", 3)],                          # start of epoch 2
    [("on_train_batch_end", 4), ("on_train_batch_end", 4), ("on_train_batch_begin", 6)],
    [("on_train_batch_end", 8, KeyboardInterrupt)],  # Ctrl-C: on_train_end runs, backup kept
])
def test_resumed_run_is_bit_identical_to_uninterrupted_run(tmp_path, reference, crashes):
    ref_model, ref_history = reference
    seen = []
    model, history = run_with_crashes(str(tmp_path / "backup"), crashes, seen=seen)
    assert 0 < len(seen) < 15  # resumed: fewer than the 3 x 5 batches of a full run
    assert_identical(model, ref_model)
    # The epochs run after the restart log exactly what the reference logged.
    for key, values in history.history.items():
        assert ref_history.history[key][-len(values):] == values, key
    assert not os.path.exists(tmp_path / "backup")  # deleted after the completed fit


# steps_per_epoch shorter than the data: an epoch is that many steps and the next
# epoch continues the same data pass; a pass that runs out ends its epoch early
# (with a warning) and the next epoch draws a new shuffle. `#n` counts the
# on_train_batch_end calls of one fit, `b` is the batch of the pass, `s` the step.
#   arrays, 48 training samples, batch 10: 5 batches a pass
#     spe=2, epochs=5: e0 b0 b1 (#1 #2) | e1 b2 b3 (#3 #4) | e2 b4 (#5), runs out
#                      | e3 new pass b0 b1 (#6 #7) | e4 b2 b3 (#8 #9)
#     spe=3, epochs=4: e0 b0-b2 (#1-#3) | e1 b3 b4 (#4 #5), runs out | e2 new pass ...
#   DataLoader(shuffle=True), 64 samples, batch 10: 7 batches a pass
#     spe=3, epochs=4: e0 b0-b2 (#1-#3) | e1 b3-b5 (#4-#6) | e2 b6 (#7), runs out | e3 new pass
SPE2 = dict(steps_per_epoch=2, epochs=5)
SPE3 = dict(steps_per_epoch=3, epochs=4)
LOADER3 = dict(steps_per_epoch=3, epochs=4, loader=True, optimizer="torch")


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Uninterrupted runs (model, history, trace, record), one per configuration."""
    cache = {}

    def get(**kwargs):
        key = tuple(sorted(kwargs.items()))
        if key not in cache:
            trace, record = [], []
            directory = str(tmp_path_factory.mktemp("ref") / "backup")
            model, history = script(directory, trace=trace, record=record, **kwargs)
            cache[key] = model, history, trace, record
        return cache[key]

    return get


@pytest.mark.filterwarnings("ignore:Your input ran out of data")
@pytest.mark.parametrize("kwargs, crashes, resumes_at", [
    # mid-epoch, in a pass that began an epoch earlier: backup at #3 = (e1, s1, b3)
    (dict(SPE2, save_freq=1), [("on_train_batch_end", 4)], (1, 1)),
    # epoch-level backup in the middle of a pass: end of e0 (pass at b2)
    (dict(SPE2, save_freq="epoch"), [("on_train_batch_end", 4)], (1, 0)),
    # right after the epoch-level backup of e1 (pass at b4): e2 trains b4, then runs out
    (dict(SPE2, save_freq="epoch"), [("on_epoch_begin", 3)], (2, 0)),
    # the backup due at #5 (e2 s0, the pass's last batch, ending e2) is written at the end of e2
    (dict(SPE2, save_freq=1), [("on_train_batch_end", 6)], (3, 0)),
    # an int save_freq, two crashes: (e1, s1, b3), then (e3, s1) of the second pass
    (dict(SPE2, save_freq=3), [("on_train_batch_end", 4), ("on_train_batch_end", 5)], (3, 1)),
    # during validation of e1: backup at #4 = (e1, s1, b4)
    (dict(SPE3, save_freq=2), [("on_test_batch_end", 4)], (1, 1)),
    # Ctrl-C in e1: the epoch-level backup of e0 (pass at b3)
    (dict(SPE3, save_freq="epoch"), [("on_train_batch_end", 5, KeyboardInterrupt)], (1, 0)),
    # groups of 2 steps: backup at #1 = (e0, s2, b2); the one due at #3 (b3 b4, the pass used
    # up mid-epoch) is written at the end of e1
    (dict(SPE3, save_freq=2, steps_per_execution=2), [("on_train_batch_end", 4)], (2, 0)),
    # a shuffling DataLoader: backup at #4 = (e1, s1, b4)
    (dict(LOADER3, save_freq=2), [("on_train_batch_end", 5)], (1, 1)),
    # a shuffling DataLoader, epoch-level backup of e1 (pass at b6)
    (dict(LOADER3, save_freq="epoch"), [("on_train_batch_end", 7)], (2, 0)),
], ids=["mid-epoch-in-an-earlier-pass", "epoch-backup-mid-pass", "right-after-epoch-backup",
        "pass-ends-the-epoch", "two-crashes", "during-validation", "ctrl-c",
        "steps-per-execution", "dataloader", "dataloader-epoch-backup"])
def test_resume_with_steps_per_epoch_shorter_than_the_data(tmp_path, references, kwargs, crashes,
                                                           resumes_at):
    ref_model, ref_history, ref_trace, ref_record = references(**kwargs)
    trace, record = [], []
    model, history = run_with_crashes(str(tmp_path / "backup"), crashes, trace=trace,
                                      record=record, **kwargs)
    assert record and record[0] == resumes_at and resumes_at in ref_record
    # The resumed run trains exactly the steps the reference trained from there on...
    assert record == ref_record[ref_record.index(resumes_at):]
    # ...on the same data in the same order...
    assert len(trace) >= len(record) and trace == ref_trace[-len(trace):]
    # ...to the same weights, optimizer state and logs.
    assert_identical(model, ref_model)
    for key, values in history.history.items():
        assert ref_history.history[key][-len(values):] == values, key
    assert not os.path.exists(tmp_path / "backup")


def _as_old_backup(directory):
    """Rewrite the backup as torchfit wrote it before the data-pass fields."""
    path = os.path.join(directory, "latest.pt")
    backup = torch.load(path, weights_only=True)
    assert "pass_batches" in backup and "pass_rng" in backup
    del backup["pass_batches"], backup["pass_rng"]
    torch.save(backup, path)


@pytest.mark.filterwarnings("ignore:Your input ran out of data")
def test_backups_without_the_pass_fields_still_resume(tmp_path, reference):
    # Full passes: exactly as before (the epoch is the pass).
    directory = str(tmp_path / "b")
    with pytest.raises(Crash):
        script(directory, ("on_train_batch_end", 7))
    _as_old_backup(directory)
    model, _ = script(directory)
    assert_identical(model, reference[0])
    # steps_per_epoch shorter than the data: loads, and restarts the data at the
    # resumed epoch as it did then.
    directory = str(tmp_path / "spe")
    with pytest.raises(Crash):
        script(directory, ("on_train_batch_end", 4), **dict(SPE2, save_freq=1))
    _as_old_backup(directory)
    record = []
    script(directory, record=record, **dict(SPE2, save_freq=1))
    assert record[0] == (1, 1) and not os.path.exists(directory)


def test_epoch_iterator_reports_and_resumes_its_pass_position():
    from torchfit.data import EpochIterator, get_adapter

    x = np.arange(50, dtype="float32")[:, None]

    def iterator():
        torch.manual_seed(3)
        return EpochIterator(get_adapter(x, x, batch_size=10, shuffle=True), steps_per_epoch=3)

    def epoch(it):
        out = []
        for first, _, group in it:
            out.append((first, group[0][0][0, 0].item(), it.pass_position, it.pass_used_up))
        return out

    it = iterator()
    assert it.starts_new_pass and it.pass_position == 0 and not it.pass_used_up
    e0 = epoch(it)
    assert [(s, p, u) for s, _, p, u in e0] == [(0, 1, False), (1, 2, False), (2, 3, False)]
    assert not it.starts_new_pass and it.pass_position == 3  # epoch 1 continues the pass
    with pytest.warns(UserWarning, match="ran out of data"):
        e1 = epoch(it)  # 5 batches a pass: it runs out after 2 steps and ends the epoch
    assert [(s, p, u) for s, _, p, u in e1] == [(0, 4, False), (1, 5, True)]
    assert it.starts_new_pass and it.pass_position == 0

    resumed = iterator()  # same RNG state as at the pass start
    positioned = []
    resumed.resume_at(4, 1, lambda: positioned.append(resumed.pass_position))
    with pytest.warns(UserWarning, match="ran out of data"):
        assert epoch(resumed) == e1[1:]  # the same batch, at the same step and pass position
    assert positioned == [4] and resumed.starts_new_pass
    with pytest.raises(ValueError, match="step <= pass_batches"):
        resumed.resume_at(1, 2)


def test_epoch_backups_resume_bit_identically(tmp_path):
    ref, _ = script(str(tmp_path / "ref"), save_freq="epoch")
    model, _ = run_with_crashes(str(tmp_path / "b"), [("on_train_batch_end", 8)], save_freq="epoch")
    assert_identical(model, ref)


def test_resume_with_a_shuffling_dataloader_and_a_torch_optimizer(tmp_path):
    ref, _ = script(str(tmp_path / "ref"), optimizer="torch", loader=True, save_freq=3)
    model, _ = run_with_crashes(str(tmp_path / "b"), [("on_train_batch_end", 5)],
                                optimizer="torch", loader=True, save_freq=3)
    assert_identical(model, ref)


def test_resume_restores_torch_lr_schedulers_held_by_callbacks_and_extra_state(tmp_path):
    def run(directory, crash=None):
        torch.manual_seed(0)
        np.random.seed(0)
        random.seed(0)
        model = NoisyNet()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
        stepper = tcb.LambdaCallback(on_train_batch_end=lambda batch, logs: scheduler.step())
        callbacks = [StepScheduler(), stepper,
                     tcb.BackupAndRestore(directory, save_freq=3,
                                          extra_state={"batch_scheduler": scheduler})]
        if crash:
            callbacks.append(CrashAt(*crash))
        model.fit(X, Y, batch_size=16, epochs=3, verbose=0, callbacks=callbacks)
        return model, scheduler

    ref, ref_scheduler = run(str(tmp_path / "ref"))
    with pytest.raises(Crash):
        run(str(tmp_path / "b"), ("on_train_batch_end", 7))
    model, scheduler = run(str(tmp_path / "b"))
    assert_identical(model, ref)
    assert scheduler.state_dict() == ref_scheduler.state_dict()


def test_resume_with_steps_per_execution(tmp_path):
    ref, _ = script(str(tmp_path / "ref"), steps_per_execution=2, save_freq=2)
    model, _ = run_with_crashes(str(tmp_path / "b"), [("on_train_batch_end", 2)],
                                steps_per_execution=2, save_freq=2)
    assert_identical(model, ref)


def test_resume_after_early_stopping_does_not_train_further(tmp_path):
    def run(directory):
        torch.manual_seed(0)
        model = NoisyNet()
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        es = tcb.EarlyStopping(monitor="loss", patience=0, min_delta=100.0)
        backup = tcb.BackupAndRestore(directory, delete_checkpoint=False)
        history = model.fit(X, Y, epochs=5, verbose=0, callbacks=[es, backup])
        return model, history, es

    directory = str(tmp_path / "b")
    model, history, es = run(directory)
    assert history.epoch == [0, 1] and es.stopped_epoch == 1
    assert os.path.exists(os.path.join(directory, "latest.pt"))
    again, history2, _ = run(directory)
    assert history2.epoch == []
    assert_identical(again, model)


def test_backup_file_is_loadable_with_weights_only_and_holds_the_position(tmp_path):
    directory = str(tmp_path / "b")
    with pytest.raises(Crash):
        script(directory, ("on_train_batch_end", 5))
    backup = torch.load(os.path.join(directory, "latest.pt"), weights_only=True)
    assert (backup["epoch"], backup["step"]) == (0, 4)
    assert backup["format"] == "torchfit.backup"
    assert [c["class"] for c in backup["callbacks"]] == ["EarlyStopping", "ReduceLROnPlateau"]
    model = NoisyNet()
    model.load_state_dict(backup["weights"])


def test_double_checkpoint_falls_back_to_the_previous_backup(tmp_path):
    directory = str(tmp_path / "b")
    ref, _ = script(str(tmp_path / "ref"), extra={"double_checkpoint": True})
    with pytest.raises(Crash):
        script(directory, ("on_train_batch_end", 7), extra={"double_checkpoint": True})
    latest = os.path.join(directory, "latest.pt")
    assert os.path.exists(latest + ".bkp")
    with open(latest, "r+b") as f:  # a torn write of the latest backup
        f.truncate(os.path.getsize(latest) // 2)
    with pytest.warns(UserWarning, match="previous one"):
        model, _ = script(directory, extra={"double_checkpoint": True})
    assert_identical(model, ref)


def test_a_truncated_backup_without_fallback_is_a_clear_error(tmp_path):
    directory = tmp_path / "b"
    directory.mkdir()
    (directory / "latest.pt").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="truncated, corrupted"):
        script(str(directory))


def test_a_backup_from_another_model_is_a_clear_error(tmp_path):
    directory = str(tmp_path / "b")
    with pytest.raises(Crash):
        script(directory, ("on_train_batch_end", 3))

    class Other(torchfit.KerasStyleModule, nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(6, 3)

        def forward(self, x):
            return torch.softmax(self.dense(x), -1)

    other = Other()
    other.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"Missing keys .*'dense.weight'.*Unexpected keys .*'l1.weight'"):
        other.fit(X, Y, verbose=0, callbacks=[tcb.BackupAndRestore(directory)])


def test_changed_callbacks_are_a_clear_error(tmp_path):
    directory = str(tmp_path / "b")
    with pytest.raises(Crash):
        script(directory, ("on_train_batch_end", 3))
    model = NoisyNet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.raises(ValueError, match="callbacks of this fit"):
        model.fit(X, Y, batch_size=10, verbose=0, validation_split=0.25,
                  callbacks=[tcb.BackupAndRestore(directory, save_freq=2)])


def test_a_foreign_file_in_the_backup_dir_is_a_clear_error(tmp_path):
    directory = tmp_path / "b"
    directory.mkdir()
    torch.save({"a": torch.zeros(1)}, directory / "latest.pt")
    model = NoisyNet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="not a backup written by BackupAndRestore"):
        model.fit(X, Y, verbose=0, callbacks=[tcb.BackupAndRestore(str(directory))])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(backup_dir=""), ValueError, "backup_dir"),
    (dict(backup_dir=3), TypeError, "backup_dir"),
    (dict(backup_dir="d", save_freq=0), ValueError, "save_freq"),
    (dict(backup_dir="d", save_freq="batch"), ValueError, "save_freq"),
    (dict(backup_dir="d", delete_checkpoint="yes"), TypeError, "delete_checkpoint"),
    (dict(backup_dir="d", double_checkpoint=1), TypeError, "double_checkpoint"),
    (dict(backup_dir="d", extra_state=[1]), TypeError, "extra_state"),
    (dict(backup_dir="d", extra_state={"x": object()}), TypeError, "extra_state"),
])
def test_backup_and_restore_validates_its_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        tcb.BackupAndRestore(**kwargs)


def test_backup_runs_after_the_other_callbacks(tmp_path):
    backup = tcb.BackupAndRestore(str(tmp_path / "b"))
    es = tcb.EarlyStopping()
    callback_list = tcb.CallbackList([backup, es], add_history=True, add_progbar=True)
    assert callback_list.callbacks[-1] is backup


class Stream(torch.utils.data.IterableDataset):
    """An input of unknown length: 15 samples, 3 batches of 5 a pass."""

    def __iter__(self):
        return iter(zip(torch.from_numpy(X[:15]), torch.from_numpy(Y[:15])))


def stream_script(backup_dir, crash=None):
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model = NoisyNet()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [tcb.BackupAndRestore(backup_dir, save_freq=1)]
    if crash is not None:
        callbacks.append(CrashAt(*crash))
    with pytest.warns(UserWarning, match="ran out of data"):
        history = model.fit(DataLoader(Stream(), batch_size=5), epochs=2, steps_per_epoch=4,
                            verbose=0, callbacks=callbacks, shuffle=False)
    return model, history


def test_resume_after_a_backup_on_the_last_batch_of_an_input_of_unknown_length(tmp_path):
    """The backup at the pass's last batch leaves the resumed epoch nothing to run:
    its logs are the restored metrics, as in the uninterrupted run."""
    reference, ref_history = stream_script(str(tmp_path / "ref"))
    with pytest.raises(Crash):
        stream_script(str(tmp_path / "b"), ("on_epoch_end", 1))
    model, history = stream_script(str(tmp_path / "b"))
    assert_identical(model, reference)
    assert history.history == ref_history.history
    assert set(history.history) == {"loss", "accuracy"}


@pytest.mark.filterwarnings("ignore:Your input ran out of data")
def test_a_redrawn_pass_is_drawn_for_the_epoch_it_began_in(tmp_path, monkeypatch):
    """Under torch.distributed the shared shuffle of a pass depends on the epoch
    given to ``set_epoch``: a resume that redraws a pass begun in an earlier epoch
    must draw it for that epoch, not the resumed one."""
    from torchfit import loop
    from torchfit.distributed.session import LocalSession

    epochs = []

    class Recording(LocalSession):
        def set_epoch(self, epoch):
            epochs.append(epoch)

    monkeypatch.setattr(loop, "loop_session", Recording)
    with pytest.raises(Crash):  # the backup at #3 is (e1, s1), pass begun in e0
        script(str(tmp_path / "b"), ("on_train_batch_end", 4), save_freq=1, **SPE2)
    del epochs[:]
    script(str(tmp_path / "b"), save_freq=1, **SPE2)
    assert epochs[0] == 0 and epochs[1:] == list(range(2, 2 + len(epochs) - 1))


def _lazy_metrics_script(backup_dir, crash=None):
    """Metrics that create their states on the first batch (F1Score, R2Score)."""
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    model = NoisyNet()
    model.compile(optimizer="adam", loss="categorical_crossentropy",
                  metrics=[torchfit.metrics.F1Score(average="macro"), torchfit.metrics.R2Score()])
    callbacks = [tcb.BackupAndRestore(backup_dir, save_freq=2)]
    if crash is not None:
        callbacks.append(CrashAt(*crash))
    onehot = np.eye(3, dtype="float32")[Y]
    return model, model.fit(X, onehot, batch_size=10, epochs=2, verbose=0, callbacks=callbacks,
                            shuffle=True)


def test_resume_mid_epoch_restores_metrics_built_on_their_first_batch(tmp_path):
    ref_model, ref_history = _lazy_metrics_script(str(tmp_path / "ref"))
    backup_dir = str(tmp_path / "backup")
    with pytest.raises(Crash):
        _lazy_metrics_script(backup_dir, ("on_train_batch_end", 9))  # epoch 1, after step 2's backup
    model, history = _lazy_metrics_script(backup_dir)
    assert_identical(model, ref_model)
    assert history.epoch == [1]
    for key, values in history.history.items():
        assert ref_history.history[key][-1:] == values, key
