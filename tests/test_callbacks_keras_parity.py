"""Differential tests of the built-in callbacks against Keras 3 (torch backend):
the same model, weights and data in both must give the same hook sequence, the
same early-stopping epoch, the same learning rates and the same saved epochs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import torchfit
from torchfit import callbacks as tcb
from twins import keras, linear_layers, mlp_pair, rng_data

pytest.importorskip("keras")

DATA = rng_data(n=48)
HOOKS = [
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
    "on_predict_batch_begin", "on_predict_batch_end",
]


@pytest.fixture(autouse=True)
def fresh_keras_session():
    keras().utils.clear_session()


def recorder(base):
    """A callback of class ``base`` recording (hook, index, sorted log keys)."""
    calls = []

    def make(hook):
        if "batch" in hook or "epoch" in hook:
            def fn(self, index, logs=None):
                calls.append((hook, index, None if logs is None else sorted(logs)))
        else:
            def fn(self, logs=None):
                calls.append((hook, None if logs is None else sorted(logs)))
        return fn

    cls = type("Recorder", (base,), {hook: make(hook) for hook in HOOKS})
    return cls(), calls


def pair(compile_kwargs, sgd=None, seed=0):
    """Twin MLPs compiled alike; ``sgd`` gives both an SGD with that learning rate."""
    tmodel, kmodel = mlp_pair([6, 8, 1], seed=seed)
    t_kwargs, k_kwargs = dict(compile_kwargs), dict(compile_kwargs)
    if sgd is not None:
        t_kwargs["optimizer"] = torchfit.optimizers.SGD(learning_rate=sgd)
        k_kwargs["optimizer"] = keras().optimizers.SGD(learning_rate=sgd)
    tmodel.compile(**t_kwargs)
    kmodel.compile(**k_kwargs)
    return tmodel, kmodel


def fit_kwargs(**overrides):
    kw = dict(x=DATA["x"], y=DATA["y_reg"], batch_size=8, epochs=8, verbose=0, shuffle=False,
              validation_split=0.25)
    kw.update(overrides)
    return kw


def test_hook_order_and_indices_match_keras_for_fit_evaluate_predict():
    tmodel, kmodel = pair(dict(optimizer="sgd", loss="mse", metrics=["mae"]))
    t_rec, t_calls = recorder(tcb.Callback)
    k_rec, k_calls = recorder(keras().callbacks.Callback)
    kw = fit_kwargs(batch_size=16, epochs=2, validation_split=0.3)
    tmodel.fit(callbacks=[t_rec], **kw)
    kmodel.fit(callbacks=[k_rec], **kw)
    for model, rec in ((tmodel, t_rec), (kmodel, k_rec)):
        model.evaluate(DATA["x"], DATA["y_reg"], batch_size=20, verbose=0, callbacks=[rec])
        model.predict(DATA["x"], batch_size=20, verbose=0, callbacks=[rec])
    assert t_calls == k_calls
    assert len(t_calls) > 30


def test_hook_order_matches_keras_with_validation_freq():
    tmodel, kmodel = pair(dict(optimizer="sgd", loss="mse"))
    t_rec, t_calls = recorder(tcb.Callback)
    k_rec, k_calls = recorder(keras().callbacks.Callback)
    kw = fit_kwargs(batch_size=24, epochs=3, validation_freq=2)
    tmodel.fit(callbacks=[t_rec], **kw)
    kmodel.fit(callbacks=[k_rec], **kw)
    assert t_calls == k_calls


def test_stop_training_from_callbacks_matches_keras():
    tmodel, kmodel = pair(dict(optimizer="sgd", loss="mse"))
    t_rec, t_calls = recorder(tcb.Callback)
    k_rec, k_calls = recorder(keras().callbacks.Callback)

    def stopper(base, model):
        class Stop(base):
            def on_train_batch_end(self, batch, logs=None):
                if len([c for c in calls if c[0] == "on_epoch_begin"]) == 2 and batch == 1:
                    model.stop_training = True
        calls = t_calls if base is tcb.Callback else k_calls
        return Stop()

    kw = fit_kwargs(batch_size=8, epochs=4)
    t_hist = tmodel.fit(callbacks=[t_rec, stopper(tcb.Callback, tmodel)], **kw)
    k_hist = kmodel.fit(callbacks=[k_rec, stopper(keras().callbacks.Callback, kmodel)], **kw)
    assert t_calls == k_calls
    assert t_hist.epoch == k_hist.epoch == [0, 1]


def _weights_match(tmodel, kmodel):
    dense = [layer for layer in kmodel.layers if layer.__class__.__name__ == "Dense"]
    for lin, layer in zip(linear_layers(tmodel), dense):
        kernel, bias = layer.get_weights()
        np.testing.assert_allclose(lin.weight.detach().numpy(), kernel.T, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(lin.bias.detach().numpy(), bias, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("es_kwargs", [
    dict(monitor="val_loss", patience=1, min_delta=0.02),
    dict(monitor="loss", patience=2, min_delta=0.05, restore_best_weights=True),
    dict(monitor="val_loss", patience=2, baseline=0.5),
    dict(monitor="val_loss", patience=1, min_delta=0.02, start_from_epoch=3,
         restore_best_weights=True),
    dict(monitor="val_mae", mode="max", patience=1),
    dict(monitor="val_mae", patience=0, min_delta=0.01),
])
def test_early_stopping_decisions_match_keras(es_kwargs):
    k = keras()
    tmodel, kmodel = pair(dict(loss="mse", metrics=["mae"]), sgd=0.05)
    t_es, k_es = tcb.EarlyStopping(**es_kwargs), k.callbacks.EarlyStopping(**es_kwargs)
    t_hist = tmodel.fit(callbacks=[t_es], **fit_kwargs())
    k_hist = kmodel.fit(callbacks=[k_es], **fit_kwargs())
    assert t_hist.epoch == k_hist.epoch
    assert (t_es.stopped_epoch, t_es.best_epoch, t_es.wait) == (k_es.stopped_epoch, k_es.best_epoch,
                                                                k_es.wait)
    np.testing.assert_allclose(t_es.best, k_es.best, rtol=1e-4)
    _weights_match(tmodel, kmodel)


def test_early_stopping_actually_stops_in_the_parity_setting():
    tmodel, _ = pair(dict(loss="mse"), sgd=0.05)
    es = tcb.EarlyStopping(monitor="val_loss", patience=1, min_delta=0.02)
    history = tmodel.fit(callbacks=[es], **fit_kwargs())
    assert 0 < es.stopped_epoch < 7 and len(history.epoch) == es.stopped_epoch + 1


@pytest.mark.parametrize("rlr_kwargs", [
    dict(monitor="val_loss", factor=0.5, patience=1, min_delta=0.01),
    dict(monitor="loss", factor=0.2, patience=1, min_delta=0.02, cooldown=2, min_lr=0.003),
    dict(monitor="val_mae", factor=0.5, patience=0, mode="max"),
])
def test_reduce_lr_on_plateau_learning_rates_match_keras(rlr_kwargs):
    k = keras()
    tmodel, kmodel = pair(dict(loss="mse", metrics=["mae"]), sgd=0.05)
    t_cb, k_cb = tcb.ReduceLROnPlateau(**rlr_kwargs), k.callbacks.ReduceLROnPlateau(**rlr_kwargs)
    t_hist = tmodel.fit(callbacks=[t_cb], **fit_kwargs())
    k_hist = kmodel.fit(callbacks=[k_cb], **fit_kwargs())
    t_lr, k_lr = t_hist.history["learning_rate"], k_hist.history["learning_rate"]
    np.testing.assert_allclose(t_lr, k_lr, rtol=1e-6)
    assert len(set(np.round(np.log(t_lr), 4))) > 1  # the rate did change
    assert (t_cb.wait, t_cb.cooldown_counter) == (k_cb.wait, k_cb.cooldown_counter)
    assert list(t_hist.history) == list(k_hist.history)


def test_reduce_lr_on_plateau_on_a_plain_torch_optimizer_matches_keras():
    k = keras()
    tmodel, kmodel = mlp_pair([6, 8, 1])
    tmodel.compile(optimizer=torch.optim.SGD(tmodel.parameters(), lr=0.05), loss="mse")
    kmodel.compile(optimizer=k.optimizers.SGD(learning_rate=0.05), loss="mse")
    kw = dict(monitor="val_loss", factor=0.5, patience=1, min_delta=0.01)
    t_hist = tmodel.fit(callbacks=[tcb.ReduceLROnPlateau(**kw)], **fit_kwargs())
    k_hist = kmodel.fit(callbacks=[k.callbacks.ReduceLROnPlateau(**kw)], **fit_kwargs())
    np.testing.assert_allclose(t_hist.history["learning_rate"], k_hist.history["learning_rate"],
                               rtol=1e-6)
    assert tmodel.optimizer.param_groups[0]["lr"] == pytest.approx(
        float(kmodel.optimizer.learning_rate), rel=1e-6)


def test_learning_rate_scheduler_matches_keras():
    k = keras()
    tmodel, kmodel = pair(dict(optimizer="sgd", loss="mse"))
    schedule = lambda epoch, lr: lr if epoch < 2 else lr * 0.5  # noqa: E731
    t_hist = tmodel.fit(callbacks=[tcb.LearningRateScheduler(schedule)], **fit_kwargs(epochs=4))
    k_hist = kmodel.fit(callbacks=[k.callbacks.LearningRateScheduler(schedule)],
                        **fit_kwargs(epochs=4))
    np.testing.assert_allclose(t_hist.history["learning_rate"], k_hist.history["learning_rate"],
                               rtol=1e-6)
    np.testing.assert_allclose(t_hist.history["loss"], k_hist.history["loss"], rtol=2e-4)


def _saved(directory, suffix):
    return sorted(name[: -len(suffix)] for name in os.listdir(directory) if name.endswith(suffix))


@pytest.mark.parametrize("mc_kwargs, template", [
    (dict(monitor="val_loss", save_best_only=True), "m-{epoch:02d}"),
    (dict(monitor="val_mae", save_best_only=True, mode="max"), "m-{epoch:02d}"),
    (dict(monitor="val_loss", save_best_only=True, initial_value_threshold=0.9), "m-{epoch:02d}"),
    (dict(save_freq=4), "m-{epoch:02d}-{batch:02d}"),
    (dict(save_freq=5, save_best_only=True, monitor="loss"), "m-{epoch:02d}-{batch:02d}"),
    (dict(), "m-{epoch:02d}-{val_loss:.3f}"),
])
def test_model_checkpoint_saves_the_same_epochs_as_keras(tmp_path, mc_kwargs, template):
    k = keras()
    tmodel, kmodel = pair(dict(loss="mse", metrics=["mae"]), sgd=0.1)
    t_dir, k_dir = tmp_path / "t", tmp_path / "k"
    t_cb = tcb.ModelCheckpoint(str(t_dir / f"{template}.pt"), save_weights_only=True, **mc_kwargs)
    k_cb = k.callbacks.ModelCheckpoint(str(k_dir / f"{template}.weights.h5"),
                                       save_weights_only=True, **mc_kwargs)
    tmodel.fit(callbacks=[t_cb], **fit_kwargs(epochs=6))
    kmodel.fit(callbacks=[k_cb], **fit_kwargs(epochs=6))
    t_saved, k_saved = _saved(t_dir, ".pt"), _saved(k_dir, ".weights.h5")
    assert t_saved == k_saved
    assert t_saved
    if mc_kwargs.get("save_best_only") and "batch" not in template:
        np.testing.assert_allclose(t_cb.best, k_cb.best, rtol=1e-4)


@pytest.mark.parametrize("separator, append", [(",", False), (";", True)])
def test_csv_logger_columns_and_rows_match_keras(tmp_path, separator, append):
    import csv

    k = keras()
    tmodel, kmodel = pair(dict(loss="mse", metrics=["mae"]), sgd=0.1)
    paths = {"t": tmp_path / "t.csv", "k": tmp_path / "k.csv"}
    for _ in range(2 if append else 1):  # appending: a second fit adds rows, not a header
        tmodel.fit(callbacks=[tcb.CSVLogger(str(paths["t"]), separator=separator, append=append)],
                   **fit_kwargs(epochs=3))
        kmodel.fit(callbacks=[k.callbacks.CSVLogger(str(paths["k"]), separator=separator,
                                                    append=append)],
                   **fit_kwargs(epochs=3))
    rows = {}
    for key, path in paths.items():
        with open(path, newline="") as handle:
            rows[key] = list(csv.reader(handle, delimiter=separator))
    assert rows["t"][0] == rows["k"][0]  # the same columns, in the same order
    assert [r[0] for r in rows["t"]] == [r[0] for r in rows["k"]]  # epochs (and headers)
    for t_row, k_row in zip(rows["t"][1:], rows["k"][1:]):
        if t_row == rows["t"][0]:
            continue
        np.testing.assert_allclose([float(v) for v in t_row[1:]], [float(v) for v in k_row[1:]],
                                   rtol=1e-4, atol=1e-6)
