"""Unit tests of the built-in callbacks (behaviour Keras has no twin for, argument
checks, state round trips). Decisions against Keras: test_callbacks_keras_parity.py."""

from __future__ import annotations

import csv
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import callbacks as tcb

RNG = np.random.default_rng(3)
X = RNG.normal(size=(40, 4)).astype("float32")
Y = RNG.normal(size=(40, 1)).astype("float32")


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(4, 1)

    def forward(self, x):
        return self.dense(x)


def compiled(optimizer="sgd", **kwargs):
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer=optimizer, loss="mse", **kwargs)
    return model


def fit(model, callbacks, **kwargs):
    kw = dict(batch_size=10, epochs=3, verbose=0, shuffle=False)
    kw.update(kwargs)
    return model.fit(X, Y, callbacks=callbacks, **kw)


# ------------------------------------------------------------------ EarlyStopping
def test_early_stopping_restores_the_best_weights_including_buffers():
    model = compiled(optimizer=torchfit.optimizers.SGD(learning_rate=0.01), metrics=["mae"])
    es = tcb.EarlyStopping(monitor="loss", mode="max", patience=1, restore_best_weights=True)
    first = {}
    record = tcb.LambdaCallback(on_epoch_end=lambda epoch, logs: first.setdefault(
        epoch, {k: v.clone() for k, v in model.state_dict().items()}))
    history = fit(model, [record, es], epochs=5)
    assert history.epoch == [0, 1] and es.stopped_epoch == 1 and es.best_epoch == 0
    for key, value in model.state_dict().items():
        assert torch.equal(value, first[0][key])


def test_early_stopping_warns_when_the_monitor_is_missing():
    model = compiled()
    with pytest.warns(UserWarning, match="val_loss.*not available"):
        history = fit(model, [tcb.EarlyStopping()], epochs=2)
    assert history.epoch == [0, 1]


def test_early_stopping_auto_mode_needs_a_known_direction():
    model = compiled()
    logs_cb = tcb.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.update(custom=1.0))
    with pytest.raises(ValueError, match="mode='min' or mode='max'"):
        fit(model, [logs_cb, tcb.EarlyStopping(monitor="custom")], epochs=1)


def test_early_stopping_auto_mode_maximizes_accuracy():
    torch.manual_seed(0)
    model = torchfit.keras_style(nn.Sequential(nn.Linear(4, 1), nn.Sigmoid()))
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    es = tcb.EarlyStopping(monitor="accuracy")
    model.fit(X, (Y > 0).astype("float32"), epochs=1, verbose=0, callbacks=[es])
    assert es.monitor_op(2.0, 1.0)  # greater is better


def test_early_stopping_state_round_trip():
    model = compiled()
    es = tcb.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    fit(model, [es], epochs=2)
    other = tcb.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    other.load_state_dict(es.state_dict())
    assert (other.wait, other.best, other.best_epoch) == (es.wait, es.best, es.best_epoch)
    assert other.monitor_op is es.monitor_op


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(patience=-1), ValueError, "patience"),
    (dict(patience=1.5), TypeError, "patience"),
    (dict(mode=2), TypeError, "mode"),
    (dict(monitor=3), TypeError, "monitor"),
    (dict(baseline="x"), TypeError, "baseline"),
    (dict(restore_best_weights=1), TypeError, "restore_best_weights"),
    (dict(start_from_epoch=-2), ValueError, "start_from_epoch"),
    (dict(min_delta=None), TypeError, "min_delta"),
])
def test_early_stopping_validates_its_arguments(kwargs, error, match):
    with pytest.raises(error, match=f"EarlyStopping: argument `{match}`"):
        tcb.EarlyStopping(**kwargs)


# -------------------------------------------------------------- ReduceLROnPlateau
def test_reduce_lr_on_plateau_reduces_each_param_group_of_a_torch_optimizer():
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.SGD([{"params": [model.dense.weight], "lr": 0.1},
                                 {"params": [model.dense.bias], "lr": 0.02}])
    model.compile(optimizer=optimizer, loss="mse")
    cb = tcb.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=100.0, factor=0.5,
                               min_lr=0.015)
    fit(model, [cb], epochs=3)  # epoch 0 sets the best value; 1 and 2 reduce
    assert [g["lr"] for g in optimizer.param_groups] == [pytest.approx(0.025), 0.015]


def test_reduce_lr_on_plateau_sets_a_torchfit_optimizer_learning_rate():
    model = compiled(optimizer=torchfit.optimizers.Adam(learning_rate=0.01))
    history = fit(model, [tcb.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=100.0)])
    assert history.history["learning_rate"] == pytest.approx([0.01, 0.01, 0.001])
    assert model.optimizer.learning_rate == pytest.approx(1e-4)


def test_reduce_lr_on_plateau_refuses_a_schedule_optimizer():
    model = compiled(optimizer=torchfit.optimizers.SGD(learning_rate=lambda step: 0.01))
    with pytest.raises(TypeError, match="schedule"):
        fit(model, [tcb.ReduceLROnPlateau(monitor="loss", patience=0, min_delta=100.0)])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(factor=1.0), ValueError, "factor"),
    (dict(factor="a"), TypeError, "factor"),
    (dict(cooldown=-1), ValueError, "cooldown"),
    (dict(min_lr=-1.0), ValueError, "min_lr"),
    (dict(patience=None), TypeError, "patience"),
])
def test_reduce_lr_on_plateau_validates_its_arguments(kwargs, error, match):
    with pytest.raises(error, match=f"ReduceLROnPlateau: argument `{match}`"):
        tcb.ReduceLROnPlateau(**kwargs)


# ---------------------------------------------------------- LearningRateScheduler
def test_learning_rate_scheduler_one_argument_schedule_on_a_torch_optimizer():
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.compile(optimizer=optimizer, loss="mse")
    seen = []
    cb = tcb.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))
    spy = tcb.LambdaCallback(on_train_batch_begin=lambda b, logs: seen.append(
        optimizer.param_groups[0]["lr"]))
    history = fit(model, [cb, spy], epochs=2, batch_size=20)
    assert seen == [0.1, 0.1, 0.05, 0.05]
    assert history.history["learning_rate"] == [0.1, 0.05]


def test_learning_rate_scheduler_rejects_non_float_results():
    model = compiled()
    with pytest.raises(ValueError, match="must be a float"):
        fit(model, [tcb.LearningRateScheduler(lambda epoch, lr: "fast")])
    with pytest.raises(TypeError, match="schedule"):
        tcb.LearningRateScheduler(0.1)


# ---------------------------------------------------------------- ModelCheckpoint
def test_model_checkpoint_weights_are_plain_state_dicts(tmp_path):
    model = compiled()
    path = tmp_path / "ckpt" / "w-{epoch:02d}-{loss:.3f}.pt"
    fit(model, [tcb.ModelCheckpoint(str(path), monitor="loss", save_weights_only=True)], epochs=2)
    files = sorted(os.listdir(tmp_path / "ckpt"))
    assert [f[:4] for f in files] == ["w-01", "w-02"]
    plain = nn.Linear(4, 1)
    plain_sd = torch.load(tmp_path / "ckpt" / files[-1], weights_only=True)
    plain.load_state_dict({k.replace("dense.", ""): v for k, v in plain_sd.items()})
    assert torch.equal(plain.weight, model.dense.weight)


def test_model_checkpoint_full_save_is_loadable(tmp_path):
    model = compiled(optimizer="adam", metrics=["mae"])
    path = str(tmp_path / "best.pt")
    fit(model, [tcb.ModelCheckpoint(path, monitor="loss", save_best_only=True)], epochs=3)
    info = torchfit.saving.read_checkpoint(path)
    assert (info["epoch"], info["step"]) == (3, 0)
    restored = torchfit.load_model(path, model=Net())
    assert restored.compiled and restored.optimizer.iterations == model.optimizer.iterations
    for key, value in model.state_dict().items():
        assert torch.equal(value, restored.state_dict()[key])


def test_model_checkpoint_batch_saves_and_template_errors(tmp_path):
    model = compiled()
    fit(model, [tcb.ModelCheckpoint(str(tmp_path / "{epoch}-{batch}.pt"), save_freq=3,
                                    save_weights_only=True)], epochs=2)
    assert sorted(os.listdir(tmp_path)) == ["1-3.pt", "2-2.pt"]
    with pytest.raises(KeyError, match="accuracy"):
        fit(compiled(), [tcb.ModelCheckpoint(str(tmp_path / "{accuracy}.pt"))], epochs=1)
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(IsADirectoryError, match="filepath"):
        fit(compiled(), [tcb.ModelCheckpoint(str(tmp_path / "dir.pt"))], epochs=1)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(filepath=None), TypeError, "filepath"),
    (dict(filepath="a.pt", save_freq="batch"), ValueError, "save_freq"),
    (dict(filepath="a.pt", save_freq=0), ValueError, "save_freq"),
    (dict(filepath="a.pt", save_best_only="yes"), TypeError, "save_best_only"),
    (dict(filepath="a.pt", initial_value_threshold="x"), TypeError, "initial_value_threshold"),
])
def test_model_checkpoint_validates_its_arguments(kwargs, error, match):
    with pytest.raises(error, match=f"ModelCheckpoint: argument `{match}`"):
        tcb.ModelCheckpoint(**kwargs)


# -------------------------------------------------------------------- CSVLogger
def test_csv_logger_writes_rows_and_appends_without_a_second_header(tmp_path):
    path = tmp_path / "log.csv"
    model = compiled(metrics=["mae"])
    fit(model, [tcb.CSVLogger(path)], epochs=2)
    fit(model, [tcb.CSVLogger(path, append=True)], epochs=1)
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "0"]
    assert rows[1][3] == "NA" and float(rows[1][1]) > 0
    fit(model, [tcb.CSVLogger(path, separator=";")], epochs=1, validation_split=0.2)
    rows = list(csv.reader(open(path), delimiter=";"))
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"] and len(rows) == 2
    assert rows[1][3] != "NA"


def test_csv_logger_validates_its_arguments():
    with pytest.raises(TypeError, match="CSVLogger: argument `filename`"):
        tcb.CSVLogger(None)
    with pytest.raises(ValueError, match="CSVLogger: argument `separator`"):
        tcb.CSVLogger("a.csv", separator=";;")
    with pytest.raises(TypeError, match="CSVLogger: argument `append`"):
        tcb.CSVLogger("a.csv", append="yes")


# --------------------------------------------------------------- TerminateOnNaN
class NaNAfter(torchfit.KerasStyleModule, nn.Module):
    def __init__(self, after: int) -> None:
        super().__init__()
        self.dense = nn.Linear(4, 1)
        self.after, self.calls = after, 0

    def forward(self, x):
        self.calls += 1
        out = self.dense(x)
        return out * float("nan") if self.calls > self.after else out


def test_terminate_on_nan_stops_training_after_the_bad_batch():
    model = NaNAfter(after=2)
    model.compile(optimizer="sgd", loss="mse")
    batches = []
    spy = tcb.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    history = model.fit(X, Y, batch_size=10, epochs=3, verbose=0,
                        callbacks=[tcb.TerminateOnNaN(), spy])
    assert batches == [0, 1, 2] and history.epoch == [0]
    assert math.isnan(history.history["loss"][0])


def test_terminate_on_nan_can_raise():
    model = NaNAfter(after=0)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 0"):
        model.fit(X, Y, verbose=0, callbacks=[tcb.TerminateOnNaN(raise_error=True)])
    with pytest.raises(TypeError, match="raise_error"):
        tcb.TerminateOnNaN(raise_error="yes")


# ---------------------------------------------------------- stop_training / Lambda
def test_stop_training_from_a_batch_hook_ends_fit_after_that_batch():
    model = compiled()
    seen = []

    def on_batch_end(batch, logs):
        seen.append(batch)
        if batch == 1:
            model.stop_training = True

    history = fit(model, [tcb.LambdaCallback(on_train_batch_end=on_batch_end)], epochs=3)
    assert seen == [0, 1] and history.epoch == [0]


def test_lambda_callback_hooks_and_extra_hooks():
    calls = []
    cb = tcb.LambdaCallback(
        on_train_begin=lambda logs: calls.append("train_begin"),
        on_epoch_end=lambda epoch, logs: calls.append(("epoch_end", epoch, sorted(logs))),
        on_test_begin=lambda logs: calls.append("test_begin"),
        name="mine",
    )
    model = compiled()
    fit(model, [cb], epochs=1)
    model.evaluate(X, Y, verbose=0, callbacks=[cb])
    assert calls == ["train_begin", ("epoch_end", 0, ["loss"]), "test_begin"]
    assert cb.name == "mine"
    with pytest.raises(TypeError, match="LambdaCallback: argument `on_epoch_end`"):
        tcb.LambdaCallback(on_epoch_end=3)


# --------------------------------------------------------------- SwapEMAWeights
def _ema_optimizer():
    try:
        return torchfit.optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.5)
    except (TypeError, ValueError) as error:  # the EMA API is not there yet
        pytest.skip(f"torchfit optimizers have no use_ema: {error}")


def test_swap_ema_weights_evaluates_with_the_averages():
    model = compiled(optimizer=_ema_optimizer())
    if not callable(getattr(model.optimizer, "swap_ema_weights", None)):
        pytest.skip("optimizer has no swap_ema_weights()")
    # train_on_batch, not fit: fit ends by copying the averages into the weights
    # (finalize_variable_values, as Keras), after which swapping changes nothing.
    for _ in range(6):
        model.train_on_batch(X, Y)
    raw = {k: v.clone() for k, v in model.state_dict().items()}
    model.optimizer.swap_ema_weights()
    ema_result = model.evaluate(X, Y, verbose=0)
    model.optimizer.swap_ema_weights()
    plain_result = model.evaluate(X, Y, verbose=0)
    swapped_result = model.evaluate(X, Y, verbose=0, callbacks=[tcb.SwapEMAWeights()])
    assert swapped_result == ema_result != plain_result
    for key, value in model.state_dict().items():
        assert torch.equal(value, raw[key])  # swapped back after evaluate
    model.predict(X, verbose=0, callbacks=[tcb.SwapEMAWeights()])
    for key, value in model.state_dict().items():
        assert torch.equal(value, raw[key])


def test_swap_ema_weights_on_epoch_keeps_the_averages_at_the_end():
    model = compiled(optimizer=_ema_optimizer())
    if not callable(getattr(model.optimizer, "swap_ema_weights", None)):
        pytest.skip("optimizer has no swap_ema_weights()")
    cb = tcb.SwapEMAWeights(swap_on_epoch=True)
    fit(model, [cb], epochs=2, validation_split=0.25)
    assert cb._ema_weights_in_model
    ema = model.dense.weight.detach().clone()
    model.optimizer.swap_ema_weights()
    assert torch.equal(model.dense.weight, ema)  # the averages equal the weights held


def test_swap_ema_weights_needs_an_ema_optimizer():
    model = compiled()
    with pytest.raises(ValueError, match="use_ema=True"):
        model.evaluate(X, Y, verbose=0, callbacks=[tcb.SwapEMAWeights()])
    with pytest.raises(TypeError, match="swap_on_epoch"):
        tcb.SwapEMAWeights(swap_on_epoch=1)


# ------------------------------------------------------------------ TensorBoard
def test_tensorboard_writes_epoch_batch_and_histogram_events(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = compiled(optimizer=torchfit.optimizers.SGD(learning_rate=0.01), metrics=["mae"])
    cb = tcb.TensorBoard(str(tmp_path), histogram_freq=1, update_freq=2)
    fit(model, [cb], epochs=2, validation_split=0.25)
    train = EventAccumulator(str(tmp_path / "train"), size_guidance={"histograms": 0})
    train.Reload()
    tags = train.Tags()
    assert {"epoch_loss", "epoch_mae", "epoch_learning_rate", "batch_loss"} <= set(tags["scalars"])
    assert [e.step for e in train.Scalars("epoch_loss")] == [0, 1]
    assert [e.step for e in train.Scalars("batch_loss")] == [2, 4, 6]
    assert train.Scalars("epoch_learning_rate")[0].value == pytest.approx(0.01)
    assert "dense.weight/histogram" in tags["histograms"]
    val = EventAccumulator(str(tmp_path / "validation"))
    val.Reload()
    assert {"epoch_loss", "epoch_mae", "evaluation_loss_vs_iterations"} <= set(val.Tags()["scalars"])
    assert [e.step for e in val.Scalars("evaluation_loss_vs_iterations")] == [3, 6]


def test_tensorboard_validates_arguments_and_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard") or name.startswith("tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        tcb.TensorBoard("logs")
    monkeypatch.setattr(builtins, "__import__", real_import)
    with pytest.raises(ValueError, match="update_freq"):
        tcb.TensorBoard("logs", update_freq=0)
    with pytest.raises(ValueError, match="profile_batch"):
        tcb.TensorBoard("logs", profile_batch=2)
    with pytest.raises(TypeError, match="histogram_freq"):
        tcb.TensorBoard("logs", histogram_freq=0.5)


@pytest.mark.parametrize("make", [
    lambda mode: tcb.EarlyStopping(mode=mode),
    lambda mode: tcb.ModelCheckpoint("m.pt", mode=mode),
    lambda mode: tcb.ReduceLROnPlateau(mode=mode),
])
def test_unknown_mode_warns_and_falls_back_to_auto(make):
    # Keras's MonitorCallback: an unknown mode string is a warning, not an error.
    with pytest.warns(UserWarning, match="mode 'best' is unknown, fallback to auto"):
        callback = make("best")
    assert callback.mode == "auto"


def test_callback_capabilities_are_declared_on_the_base_class():
    base = tcb.Callback()
    assert (base.main_process_only, base.gathers_fsdp_state,
            base.reads_batch_logs_immediately) == (False, False, False)
    writers = (tcb.CSVLogger, tcb.TensorBoard, tcb.ModelCheckpoint, tcb.RemoteMonitor)
    assert all(cls.main_process_only is True for cls in writers)
    assert [cls.__name__ for cls in writers if cls.gathers_fsdp_state] == ["ModelCheckpoint"]
    assert not any(cls.main_process_only for cls in (tcb.EarlyStopping, tcb.History,
                                                     tcb.BackupAndRestore))


def test_callback_list_attaches_each_member_once():
    seen = []

    class Sibling(tcb.Callback):
        def _attach_to_callback_list(self, callback_list):
            seen.append([type(c).__name__ for c in callback_list.callbacks])

    tcb.CallbackList([Sibling(), tcb.EarlyStopping()], add_history=True)
    assert seen == [["Sibling", "EarlyStopping", "History"]]
