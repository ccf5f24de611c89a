"""Muon, ScheduleFreeAdamW, MultiOptimizer/OptimizerMap, LossScaleOptimizer parity,
and the surface fixes of issue 19, against Keras where Keras has the behaviour."""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import callbacks as tcb
from torchfit import optimizers as O
from torchfit.saving import load_model

RNG = np.random.default_rng(0)


def _keras_and_torch(W, b, make_keras, make_torch, steps=3):
    """Run the same gradients through a Keras and a torchfit optimizer."""
    kW, kb = keras.Variable(W, name="kernel"), keras.Variable(b, name="bias")
    tW, tb = nn.Parameter(torch.tensor(W)), nn.Parameter(torch.tensor(b))
    kopt, topt = make_keras(), make_torch([("dense.kernel", tW), ("dense.bias", tb)])
    for _ in range(steps):
        gw, gb = RNG.normal(size=W.shape).astype("float32"), RNG.normal(size=b.shape).astype("float32")
        kopt.apply_gradients([(keras.ops.convert_to_tensor(gw), kW), (keras.ops.convert_to_tensor(gb), kb)])
        topt.apply_gradients([(torch.tensor(gw), tW), (torch.tensor(gb), tb)])
    return (kW.numpy(), kb.numpy()), (tW.detach().numpy(), tb.detach().numpy()), topt


# ------------------------------------------------------------------------ Muon
@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=0.1),
    dict(learning_rate=0.05, weight_decay=0.1, adam_weight_decay=0.2, nesterov=False,
         rms_rate=None, adam_lr_ratio=0.5, momentum=0.8),
])
def test_muon_matches_keras(kwargs):
    W, b = RNG.normal(size=(3, 5)).astype("float32"), RNG.normal(size=(5,)).astype("float32")
    (kW, kb), (tW, tb), _ = _keras_and_torch(
        W, b, lambda: keras.optimizers.Muon(**kwargs), lambda p: O.Muon(p, **kwargs))
    np.testing.assert_allclose(tW, kW, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tb, kb, rtol=1e-5, atol=1e-6)


def test_muon_newton_schulz_and_lr_adjust_match_keras():
    x = RNG.normal(size=(4, 3)).astype("float32")
    ours = O.Muon().zeropower_via_newtonschulz5(torch.tensor(x), 5)
    theirs = keras.optimizers.Muon().zeropower_via_newtonschulz5(keras.ops.convert_to_tensor(x), 5)
    np.testing.assert_allclose(ours.numpy(), keras.ops.convert_to_numpy(theirs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(O.Muon(rms_rate=0.2).lr_adjust(torch.ones(4, 2)).numpy(), 0.4)


class _Tokens(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(10, 4)
        self.proj = nn.Linear(4, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        return self.out(self.proj(self.tok(x)).mean(1))


def test_muon_classifies_torch_parameters_by_ndim_module_type_and_name():
    model = _Tokens()
    model.compile(optimizer=O.Muon(exclude_layers=["out"]), loss="mse")
    kinds = {name: g["use_adamw"] for g in model.optimizer.param_groups for name in g["param_names"]}
    # 2-D and not excluded: Muon; embedding (module type), 1-D, excluded name: AdamW.
    assert kinds == {"proj.weight": False, "tok.weight": True, "proj.bias": True,
                     "out.weight": True, "out.bias": True}
    muon = model.optimizer
    muon.weight_decay, muon.adam_weight_decay = 0.5, 0.1  # each kind keeps its own rate
    assert {g["use_adamw"]: g["weight_decay"] for g in muon.param_groups} == {False: 0.5, True: 0.1}
    keep = O.Muon(exclude_embeddings=False)
    keep.build(_Tokens())
    assert any("tok.weight" in g["param_names"] and not g["use_adamw"] for g in keep.param_groups)
    model.fit(np.random.randint(0, 10, (8, 3)), np.zeros((8, 1), "float32"), verbose=0)


def test_muon_rejects_bad_arguments():
    with pytest.raises(ValueError, match="ns_steps"):
        O.Muon(ns_steps=0)
    with pytest.raises(TypeError, match="exclude_layers"):
        O.Muon(exclude_layers="out")


# ----------------------------------------------------------- ScheduleFreeAdamW
def _schedule_free_reference(y, grads, lr, beta_1, beta_2, eps, warmup=0):
    """The Schedule-Free AdamW algorithm (Defazio et al. 2024), in NumPy."""
    z, v, y = y.copy(), np.zeros_like(y), y.copy()
    for t, g in enumerate(grads, start=1):
        rate = lr * min(t / warmup, 1.0) if warmup else lr
        v = beta_2 * v + (1 - beta_2) * g * g
        z_new = z - rate * g / (np.sqrt(v / (1 - beta_2**t)) + eps)
        x = (y - (1 - beta_1) * z) / beta_1
        x = (1 - 1 / t) * x + (1 / t) * z_new
        y, z = (1 - beta_1) * z_new + beta_1 * x, z_new
    return y, (y - (1 - beta_1) * z) / beta_1


@pytest.mark.parametrize("warmup", [0, 3])
def test_schedule_free_matches_the_algorithm_and_swaps_exactly(warmup):
    W = RNG.normal(size=(3, 4)).astype("float32")
    grads = [RNG.normal(size=(3, 4)).astype("float32") for _ in range(5)]
    p = nn.Parameter(torch.tensor(W))
    opt = O.ScheduleFreeAdamW([p], learning_rate=0.05, warmup_steps=warmup)
    for g in grads:
        opt.apply_gradients([(torch.tensor(g), p)])
    y, x = _schedule_free_reference(W.astype("float64"), grads, 0.05, 0.9, 0.999, 1e-8, warmup)
    np.testing.assert_allclose(p.detach().numpy(), y, rtol=1e-4, atol=1e-5)
    train = p.detach().clone()
    opt.eval()
    assert opt.param_groups[0]["weights"] == "eval"
    np.testing.assert_allclose(p.detach().numpy(), x, rtol=1e-4, atol=1e-5)
    with pytest.raises(RuntimeError, match="train"):
        opt.apply_gradients([(torch.tensor(grads[0]), p)])
    opt.train()
    assert torch.equal(p.detach(), train) and opt.param_groups[0]["weights"] == "train"


class _Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 3)
        self.head = nn.Linear(3, 1)

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)))


X = RNG.random((32, 4)).astype("float32")
Y = RNG.random((32, 1)).astype("float32")


def test_schedule_free_evaluates_and_predicts_on_the_evaluation_weights():
    torch.manual_seed(0)
    model = _Net()
    model.compile(optimizer=O.ScheduleFreeAdamW(learning_rate=0.05), loss="mse")
    model.fit(X, Y, epochs=2, verbose=0, validation_data=(X, Y))
    train = [p.detach().clone() for p in model.parameters()]
    loss = model.evaluate(X, Y, verbose=0)
    predicted = model.predict(X, verbose=0)
    assert all(torch.equal(a, p) for a, p in zip(train, model.parameters()))  # y is back
    model.optimizer.eval()
    with torch.no_grad():
        expected = model(torch.tensor(X)).numpy()
    model.optimizer.train()
    np.testing.assert_allclose(predicted, expected, rtol=1e-6)
    assert loss == pytest.approx(float(np.mean((expected - Y) ** 2)), rel=1e-5)
    np.testing.assert_allclose(model.predict_on_batch(X), expected, rtol=1e-6)
    with torch.no_grad():
        on_train_weights = model(torch.tensor(X)).numpy()
    assert not np.allclose(on_train_weights, expected)  # the swap mattered


def test_schedule_free_checkpoint_says_which_weights_it_holds(tmp_path):
    torch.manual_seed(0)
    model = _Net()
    model.compile(optimizer=O.ScheduleFreeAdamW(learning_rate=0.05), loss="mse")
    model.fit(X, Y, epochs=1, verbose=0)
    state = model.optimizer.state_dict()
    assert {g["weights"] for g in state["param_groups"]} == {"train"}
    model.optimizer.eval()
    assert {g["weights"] for g in model.optimizer.state_dict()["param_groups"]} == {"eval"}
    model.optimizer.train()


# ------------------------------------------------------------- MultiOptimizer
def _multi():
    return O.MultiOptimizer(O.OptimizerMap(
        O.SGD(learning_rate=0.1), {"encoder/.*": O.Adam(learning_rate=0.01)}))


def test_optimizer_map_matches_torch_and_keras_forms_and_refuses_conflicts():
    adam, sgd = O.Adam(), O.SGD()
    mapping = O.OptimizerMap(sgd, {"encoder/.*": adam})
    assert mapping["encoder.0.weight"] is adam and mapping["head.weight"] is sgd
    mapping[r"head\..*"] = O.RMSprop()
    assert isinstance(mapping["head.bias"], O.RMSprop)
    mapping[".*bias"] = O.Adagrad()
    with pytest.raises(ValueError, match="Multiple optimizers"):
        mapping["head.bias"]
    with pytest.raises(ValueError, match="cannot be LossScaleOptimizer"):
        mapping["x"] = O.LossScaleOptimizer(O.SGD())
    with pytest.raises(ValueError, match="already exists"):
        mapping["encoder/.*"] = O.SGD()


def test_multi_optimizer_routes_steps_and_matches_separate_optimizers():
    torch.manual_seed(0)
    model = _Net()
    model.compile(optimizer=_multi(), loss="mse")
    reference = _Net()
    reference.load_state_dict(model.state_dict())
    adam = O.Adam(reference.encoder.parameters(), learning_rate=0.01)
    sgd = O.SGD(reference.head.parameters(), learning_rate=0.1)
    model.fit(X, Y, batch_size=32, epochs=3, shuffle=False, verbose=0)
    for _ in range(3):
        loss = nn.functional.mse_loss(reference(torch.tensor(X)), torch.tensor(Y))
        adam.zero_grad(), sgd.zero_grad()
        loss.backward()
        adam.step(), sgd.step()
    for a, b in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(a, b)
    assert model.optimizer.iterations == 3
    with pytest.raises(AttributeError, match="sub-optimizers"):
        model.optimizer.learning_rate


def test_multi_optimizer_callbacks_and_exact_resume(tmp_path):
    torch.manual_seed(0)
    model = _Net()
    model.compile(optimizer=_multi(), loss="mse")
    halve = tcb.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[halve])
    adam, sgd = model.optimizer.optimizers
    assert (adam.learning_rate, sgd.learning_rate) == pytest.approx((0.0025, 0.025))
    path = os.path.join(tmp_path, "m.pt")
    model.save(path)
    model.fit(X, Y, epochs=1, verbose=0)
    torch.manual_seed(1)
    resumed = load_model(path, model=_fresh())
    resumed.fit(X, Y, epochs=1, verbose=0)
    for a, b in zip(model.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.optimizer.iterations == model.optimizer.iterations


def _fresh():
    model = _Net()
    model.compile(optimizer=_multi(), loss="mse")
    return model


def test_multi_optimizer_refuses_a_bad_state_dict_and_changes_nothing():
    model = _fresh()
    model.fit(X, Y, epochs=1, verbose=0)
    before = model.optimizer.state_dict()
    with pytest.raises(ValueError, match="sub-optimizers"):
        model.optimizer.load_state_dict({"optimizers": before["optimizers"][:1]})
    assert model.optimizer.state_dict()["iterations"] == before["iterations"]


def test_multi_optimizer_bad_gradient_updates_nothing():
    model = _fresh()
    params = list(model.parameters())
    weights = [p.detach().clone() for p in params]
    grads = [torch.ones_like(p) for p in params]
    grads[-1] = torch.ones(3)  # the head's bias: wrong shape, in the second sub-optimizer
    with pytest.raises(ValueError, match="No parameter was updated"):
        model.optimizer.apply(grads, params)
    assert all(torch.equal(a, p) for a, p in zip(weights, model.parameters()))


def test_multi_optimizer_config_round_trip():
    multi = _multi()
    rebuilt = O.deserialize(O.serialize(multi))
    assert [type(o).__name__ for o in rebuilt.optimizers] == ["Adam", "SGD"]
    rebuilt.build(_Net())
    assert [len(g["params"]) for g in rebuilt.param_groups] == [2, 2]


# ------------------------------------------------------ LossScaleOptimizer parity
def test_loss_scale_optimizer_wraps_an_unbound_optimizer_in_compile():
    torch.manual_seed(0)
    model = _Net()
    model.compile(optimizer=O.LossScaleOptimizer(O.Adam(learning_rate=0.01)), loss="mse")
    before = [p.detach().clone() for p in model.parameters()]
    model.fit(X, Y, epochs=1, verbose=0)
    assert not all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert model.optimizer.iterations == 1


def test_loss_scale_optimizer_config_floats_and_errors():
    opt = O.LossScaleOptimizer(O.SGD(learning_rate=0.5), initial_scale=4.0, name="lso")
    config = opt.get_config()
    assert set(config) == {"name", "initial_scale", "dynamic_growth_steps", "inner_optimizer"}
    again = O.LossScaleOptimizer.from_config(config)
    assert isinstance(again.inner_optimizer, O.SGD) and again.initial_scale == 4.0
    assert float(opt.scale_loss(1.5)) == 6.0
    with pytest.raises(ValueError, match="on the `inner_optimizer`"):
        O.LossScaleOptimizer(O.SGD(), clipnorm=1.0)
    with pytest.raises(ValueError, match="arguments: `foo`, `bar`"):
        O.LossScaleOptimizer(O.SGD(), foo=1, bar=2)
    with pytest.raises(TypeError, match="loss"):
        opt.scale_loss("1")


def test_loss_scale_optimizer_skips_infinite_steps_and_grows():
    p = nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = O.LossScaleOptimizer(O.SGD(learning_rate=0.5), initial_scale=2.0, dynamic_growth_steps=2)
    opt.build([p])
    opt.apply([torch.tensor([np.inf, 1.0])])
    assert torch.equal(p.detach(), torch.tensor([1.0, 2.0])) and opt.dynamic_scale == 1.0
    for _ in range(2):
        opt.apply([torch.tensor([1.0, 1.0])])
    assert opt.dynamic_scale == 2.0


# ------------------------------------------------------------ surface differences
def test_targets_broadcast_like_keras_for_elementwise_losses():
    torch.manual_seed(0)
    model = torchfit.keras_style(nn.Linear(5, 2))
    kmodel = keras.Sequential([keras.layers.Input((5,)), keras.layers.Dense(2)])
    kmodel.set_weights([model.weight.detach().numpy().T, model.bias.detach().numpy()])
    x, y = RNG.random((4, 5)).astype("float32"), RNG.random((4, 1)).astype("float32")
    model.compile(optimizer="sgd", loss="mse")
    kmodel.compile(optimizer="sgd", loss="mse")
    assert model.evaluate(x, y, verbose=0) == pytest.approx(kmodel.evaluate(x, y, verbose=0), rel=1e-6)


def test_surface_matches_keras():
    assert O.get(None) is None and keras.optimizers.get(None) is None
    assert O.SGD(learning_rate=0.0).learning_rate == 0.0
    assert torchfit.metrics.Mean().dtype == keras.metrics.Mean().dtype == "float32"
    assert torchfit.metrics.Mean().torch_dtype is torch.float32
    for bad in (dict(beta=2), dict(threshold=1)):
        with pytest.raises(ValueError):
            keras.metrics.FBetaScore(**bad)
        with pytest.raises(ValueError, match="Python float"):
            torchfit.metrics.FBetaScore(**bad)
    with pytest.warns(UserWarning, match="unknown, fallback to auto"):
        assert tcb.ModelCheckpoint("m.pt", mode="unknown").mode == "auto"
    assert O.Nadam().build([]) is not None
    p = nn.Parameter(torch.ones(2))
    with pytest.warns(UserWarning, match="gradients do not exist"):
        O.SGD([p, nn.Parameter(torch.ones(1))]).apply([torch.ones(2), None])


# --------------------------------------------------------------- RemoteMonitor
def test_remote_monitor_posts_epoch_logs(monkeypatch):
    requests = pytest.importorskip("requests")
    sent = []
    monkeypatch.setattr(requests, "post", lambda url, *args, **kwargs: sent.append((url, args, kwargs)))
    model = _fresh()
    history = model.fit(X, Y, epochs=2, verbose=0, validation_data=(X, Y),
                        callbacks=[tcb.RemoteMonitor(send_as_json=True, headers={"k": "v"})])
    assert [s[2]["json"] for s in sent] == [
        {"epoch": e, "loss": history.history["loss"][e], "val_loss": history.history["val_loss"][e]}
        for e in range(2)]
    assert sent[0][0] == "http://localhost:9000/publish/epoch/end/" and sent[0][2]["headers"] == {"k": "v"}
    tcb.RemoteMonitor(field="f").on_epoch_end(3, {"loss": np.float32(1.5)})
    assert sent[-1][1] == ({"f": '{"epoch": 3, "loss": 1.5}'},)


def test_remote_monitor_unreachable_server_warns_and_bad_arguments_raise():
    pytest.importorskip("requests")
    with pytest.warns(UserWarning, match="Could not reach RemoteMonitor root server"):
        tcb.RemoteMonitor(root="http://127.0.0.1:9").on_epoch_end(0, {"loss": 0.0})
    with pytest.raises(TypeError, match="headers"):
        tcb.RemoteMonitor(headers=["x"])
    with pytest.raises(TypeError, match="send_as_json"):
        tcb.RemoteMonitor(send_as_json="yes")


def test_multi_optimizer_with_reduce_lr_and_backup_and_restore(tmp_path):
    torch.manual_seed(0)
    model = _fresh()
    plateau = tcb.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10.0)
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[plateau])  # the 2nd epoch plateaus
    adam, sgd = model.optimizer.optimizers
    assert (adam.learning_rate, sgd.learning_rate) == pytest.approx((0.005, 0.05))

    class Crash(tcb.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("crash")

    backup = str(tmp_path / "backup")
    torch.manual_seed(0)
    crashed = _fresh()
    with pytest.raises(RuntimeError, match="crash"):
        crashed.fit(X, Y, epochs=3, verbose=0, callbacks=[tcb.BackupAndRestore(backup), Crash()])
    torch.manual_seed(0)
    resumed = _fresh()
    resumed.fit(X, Y, epochs=3, verbose=0, callbacks=[tcb.BackupAndRestore(backup)])
    torch.manual_seed(0)
    straight = _fresh()
    straight.fit(X, Y, epochs=3, verbose=0)
    for a, b in zip(resumed.parameters(), straight.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.optimizer.iterations == straight.optimizer.iterations
    assert set(resumed.optimizer.state) == set(resumed.parameters())  # every sub-state


def test_multi_optimizer_sub_schedules_and_loss_scale_wrapper():
    schedule = O.schedules.ExponentialDecay(0.01, decay_steps=1, decay_rate=0.5)
    multi = O.MultiOptimizer(O.OptimizerMap(
        O.SGD(learning_rate=0.1), {"encoder/.*": O.Adam(learning_rate=schedule)}))
    model = _Net()
    model.compile(optimizer=O.LossScaleOptimizer(multi), loss="mse")
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)  # 4 steps
    adam, sgd = multi.optimizers
    assert adam.iterations == sgd.iterations == multi.iterations == 4
    assert adam.learning_rate == pytest.approx(float(schedule(4)))  # its own schedule
    assert sgd.learning_rate == pytest.approx(0.1)


@pytest.mark.parametrize("make", [
    _multi,
    lambda: O.Muon(exclude_layers=["head"]),
    lambda: O.ScheduleFreeAdamW(),
    lambda: O.LossScaleOptimizer(O.Adam()),
])
def test_load_model_into_an_uncompiled_model_restores_the_optimizer(tmp_path, make):
    import warnings

    torch.manual_seed(0)
    model = _Net()
    model.compile(optimizer=make(), loss="mse")
    model.fit(X, Y, epochs=1, verbose=0)
    path = str(tmp_path / "m.pt")
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to a default optimizer
        loaded = load_model(path, model=_Net())
    assert type(loaded.optimizer) is type(model.optimizer)
    model.fit(X, Y, epochs=1, shuffle=False, verbose=0)
    loaded.fit(X, Y, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.parameters(), loaded.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_model_without_trainable_weights_compiles_and_fits_with_keras_warning():
    """As Keras: compile accepts it (the optimizer is built empty); each training
    step warns and updates nothing, while the loss is still logged."""
    model = torchfit.keras_style(torch.nn.Sequential(torch.nn.Linear(3, 1)))
    for p in model.parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((8, 3), "float32"), np.zeros((8, 1), "float32")
    with pytest.warns(UserWarning, match="does not have any trainable weights"):
        history = model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and history.history["loss"][0] > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.optimizer.iterations == 0
