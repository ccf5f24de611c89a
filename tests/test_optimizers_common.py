"""Keras's common optimizer arguments on torchfit optimizers, differential
against Keras 3: ``use_ema``/``ema_momentum``/``ema_overwrite_frequency``,
``gradient_accumulation_steps`` and ``loss_scale_factor``, alone and
combined with clipping, weight decay and schedules; then the EMA swap API,
state_dict round trips, compiled-model training and argument validation."""

import copy
import io
import sys
import warnings

import numpy as np
import pytest
import torch

import torchfit.optimizers as optimizers

keras = pytest.importorskip("keras")
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from twins import mlp_pair, rng_data  # noqa: E402

SHAPES = [(5, 3), (3,), (2, 2, 2)]


def _data(seed, steps):
    rng = np.random.default_rng(seed)
    inits = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [
        [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
        for _ in range(steps)
    ]
    if steps > 3:
        grads[3][1] = None  # a missing gradient in the middle
    return inits, grads


def _keras_run(name, kwargs, inits, grads):
    opt = getattr(keras.optimizers, name)(**kwargs)
    variables = [keras.Variable(x) for x in inits]
    trace = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in grads:
            opt.apply_gradients(
                [(None if g is None else torch.tensor(g), v) for g, v in zip(step, variables)]
            )
            averages = None
            if kwargs.get("use_ema"):
                averages = [np.asarray(a.numpy()).copy() for a in opt._model_variables_moving_average]
            trace.append(
                (
                    [np.asarray(v.numpy()).copy() for v in variables],
                    averages,
                    int(opt.iterations.numpy()),
                    float(opt.learning_rate),
                )
            )
    return opt, variables, trace


def _torchfit_kwargs(kwargs):
    kwargs = dict(kwargs)
    lr = kwargs.get("learning_rate")
    if lr is not None and not isinstance(lr, float):
        kwargs["learning_rate"] = optimizers.schedules.deserialize(
            keras.optimizers.schedules.serialize(lr)
        )
    return kwargs


def _torchfit_run(name, kwargs, inits, grads):
    params = [torch.nn.Parameter(torch.tensor(x)) for x in inits]
    opt = getattr(optimizers, name)(params, **_torchfit_kwargs(kwargs))
    trace = []
    for step in grads:
        for p, g in zip(params, step):
            p.grad = None if g is None else torch.tensor(g)
        opt.step()
        averages = None
        if kwargs.get("use_ema"):
            averages = [opt.state[p]["average"].numpy().copy() for p in params]
        trace.append(
            (
                [p.detach().numpy().copy() for p in params],
                averages,
                opt.iterations,
                opt.learning_rate,
            )
        )
    return opt, params, trace


def _assert_traces_match(actual, expected):
    assert len(actual) == len(expected)
    for step, (a, e) in enumerate(zip(actual, expected)):
        for x, y in zip(a[0], e[0]):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=f"weights, step {step}")
        if e[1] is not None:
            for x, y in zip(a[1], e[1]):
                np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6, err_msg=f"averages, step {step}")
        assert a[2] == e[2], f"iterations at step {step}: {a[2]} != {e[2]}"
        assert a[3] == pytest.approx(e[3], rel=1e-6), f"learning_rate at step {step}"


def _schedule():
    return keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)


CASES = [
    ("SGD", {"use_ema": True}),
    ("Adam", {"use_ema": True, "ema_momentum": 0.7}),
    ("SGD", {"momentum": 0.9, "use_ema": True, "ema_momentum": 0.5, "ema_overwrite_frequency": 3}),
    ("AdamW", {"use_ema": True, "ema_overwrite_frequency": 1}),
    ("Lamb", {"use_ema": True, "weight_decay": 0.1}),
    ("SGD", {"gradient_accumulation_steps": 2}),
    ("Adam", {"gradient_accumulation_steps": 3, "weight_decay": 0.1, "clipnorm": 1.0}),
    ("Nadam", {"gradient_accumulation_steps": 2, "global_clipnorm": 0.5}),
    ("RMSprop", {"gradient_accumulation_steps": 4, "clipvalue": 0.3, "centered": True}),
    ("Adafactor", {"gradient_accumulation_steps": 2}),
    ("Ftrl", {"gradient_accumulation_steps": 2}),
    ("Adam", {"loss_scale_factor": 128.0}),
    ("Adamax", {"loss_scale_factor": 0.25, "clipnorm": 0.5}),
    ("SGD", {"learning_rate": "schedule", "gradient_accumulation_steps": 2, "momentum": 0.5}),
    (
        "Adam",
        {
            "gradient_accumulation_steps": 2,
            "use_ema": True,
            "ema_overwrite_frequency": 2,
            "loss_scale_factor": 4.0,
            "learning_rate": "schedule",
        },
    ),
]


@pytest.mark.parametrize(
    "name,kwargs", CASES, ids=[f"{n}-{'-'.join(sorted(k))}" for n, k in CASES]
)
def test_common_arguments_match_keras_step_by_step(name, kwargs):
    kwargs = dict(kwargs)
    if kwargs.get("learning_rate") == "schedule":
        kwargs["learning_rate"] = _schedule()
    inits, grads = _data(seed=len(kwargs) + len(name), steps=9)
    k_opt, k_vars, expected = _keras_run(name, kwargs, inits, grads)
    t_opt, params, actual = _torchfit_run(name, kwargs, inits, grads)
    _assert_traces_match(actual, expected)
    if kwargs.get("use_ema"):
        k_opt.finalize_variable_values(k_vars)
        t_opt.finalize_variable_values(params)
        for p, v in zip(params, k_vars):
            np.testing.assert_allclose(p.detach().numpy(), v.numpy(), rtol=1e-5, atol=1e-6)


def test_scale_loss_then_step_matches_keras_train_step_math():
    # Keras's train_step: loss = optimizer.scale_loss(loss); backward; apply
    # (which divides by the factor). The update equals the unscaled one.
    torch.manual_seed(0)
    x = torch.randn(8, 3)
    ref = torch.nn.Linear(3, 1)
    scaled = copy.deepcopy(ref)
    opt_ref = optimizers.Adam(ref.parameters(), learning_rate=0.1)
    opt_scaled = optimizers.Adam(scaled.parameters(), learning_rate=0.1, loss_scale_factor=1024.0)
    for _ in range(3):
        for model, opt in ((ref, opt_ref), (scaled, opt_scaled)):
            opt.zero_grad()
            loss = model(x).square().mean()
            opt.scale_loss(loss).backward()
            opt.step()
    for a, b in zip(ref.parameters(), scaled.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert opt_ref.scale_loss(2.0) == 2.0
    assert opt_scaled.scale_loss(torch.tensor(2.0)).item() == 2048.0
    with pytest.raises(TypeError, match="loss"):
        opt_scaled.scale_loss("big")


# --------------------------------------------------------------------------
# Compiled models: fit with the optimizer arguments, against Keras's fit
# --------------------------------------------------------------------------

DATA = rng_data(n=40)


@pytest.fixture
def fresh_keras_names():
    keras.utils.clear_session()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gradient_accumulation_steps": 2},
        {"loss_scale_factor": 64.0},
        {"use_ema": True, "ema_momentum": 0.8},
        {"gradient_accumulation_steps": 3, "use_ema": True, "ema_overwrite_frequency": 2},
    ],
    ids=lambda k: "-".join(sorted(k)),
)
def test_fit_matches_keras(kwargs, fresh_keras_names):
    tmodel, kmodel = mlp_pair([6, 8, 1])
    tmodel.compile(optimizer=optimizers.Adam(learning_rate=0.05, **kwargs), loss="mse")
    kmodel.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05, **kwargs), loss="mse")
    fit = dict(x=DATA["x"], y=DATA["y_reg"], batch_size=8, epochs=2, shuffle=False, verbose=0)
    t_hist, k_hist = tmodel.fit(**fit), kmodel.fit(**fit)
    np.testing.assert_allclose(t_hist.history["loss"], k_hist.history["loss"], rtol=2e-5)
    assert tmodel.optimizer.iterations == int(kmodel.optimizer.iterations.numpy())
    # Both fits end with optimizer.finalize_variable_values() (EMA weights in).
    np.testing.assert_allclose(
        tmodel.predict(DATA["x"], verbose=0), kmodel.predict(DATA["x"], verbose=0),
        rtol=1e-4, atol=1e-5,
    )


# --------------------------------------------------------------------------
# EMA swap API
# --------------------------------------------------------------------------


def _trained(**kwargs):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = optimizers.SGD(model, learning_rate=0.1, **kwargs)
    x = torch.randn(16, 4)
    for _ in range(5):
        opt.zero_grad()
        model(x).square().mean().backward()
        opt.step()
    return model, opt


def test_swap_ema_weights_swaps_and_restores():
    model, opt = _trained(use_ema=True, ema_momentum=0.5)
    weights = [p.detach().clone() for p in model.parameters()]
    averages = [opt.state[p]["average"].clone() for p in model.parameters()]
    assert not all(torch.equal(a, w) for a, w in zip(averages, weights))
    opt.swap_ema_weights()
    for p, a, w in zip(model.parameters(), averages, weights):
        assert torch.equal(p, a) and torch.equal(opt.state[p]["average"], w)
    opt.swap_ema_weights()
    for p, a, w in zip(model.parameters(), averages, weights):
        assert torch.equal(p, w) and torch.equal(opt.state[p]["average"], a)
    opt.copy_weights_to_ema()
    for p in model.parameters():
        assert torch.equal(opt.state[p]["average"], p)


def test_finalize_variable_values():
    model, opt = _trained(use_ema=True)
    averages = [opt.state[p]["average"].clone() for p in model.parameters()]
    opt.finalize_variable_values(list(model.parameters())[:1])
    assert torch.equal(model.weight, averages[0])
    assert not torch.equal(model.bias, averages[1])
    opt.finalize_variable_values()
    assert torch.equal(model.bias, averages[1])
    with pytest.raises(ValueError, match="var_list"):
        opt.finalize_variable_values([torch.nn.Parameter(torch.zeros(2))])
    with pytest.raises(TypeError, match="var_list"):
        opt.finalize_variable_values(3)
    # Without EMA it is a no-op, as in Keras.
    plain_model, plain = _trained()
    before = [p.detach().clone() for p in plain_model.parameters()]
    plain.finalize_variable_values()
    assert all(torch.equal(p, b) for p, b in zip(plain_model.parameters(), before))


def test_ema_methods_need_use_ema_and_binding():
    _, plain = _trained()
    with pytest.raises(ValueError, match="use_ema=True"):
        plain.swap_ema_weights()
    with pytest.raises(ValueError, match="use_ema"):
        plain.copy_weights_to_ema()
    unbound = optimizers.Adam(use_ema=True)
    with pytest.raises(RuntimeError, match="bind"):
        unbound.swap_ema_weights()
    # Bound but never stepped: nothing to swap, weights untouched.
    p = torch.nn.Parameter(torch.ones(2))
    fresh = optimizers.Adam([p], use_ema=True)
    fresh.swap_ema_weights()
    assert torch.equal(p, torch.ones(2))


# --------------------------------------------------------------------------
# State, atomicity, configuration
# --------------------------------------------------------------------------


def _steps(opt, params, grads):
    for step in grads:
        for p, g in zip(params, step):
            p.grad = None if g is None else torch.tensor(g)
        opt.step()


@pytest.mark.parametrize("stop", [3, 4])  # mid-accumulation and right after an update
def test_state_dict_round_trip_mid_accumulation(stop):
    inits, grads = _data(seed=2, steps=8)
    kwargs = dict(learning_rate=0.05, gradient_accumulation_steps=3, use_ema=True)
    a = [torch.nn.Parameter(torch.tensor(x)) for x in inits]
    opt_a = optimizers.Adam(a, **kwargs)
    _steps(opt_a, a, grads[:stop])
    buffer = io.BytesIO()
    torch.save(opt_a.state_dict(), buffer)
    buffer.seek(0)
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    opt_b = optimizers.Adam(b, **kwargs)
    opt_b.load_state_dict(torch.load(buffer, weights_only=True))
    assert opt_b.iterations == opt_a.iterations == stop // 3
    assert opt_b._micro_iterations == stop
    _steps(opt_a, a, grads[stop:])
    _steps(opt_b, b, grads[stop:])
    for x, y in zip(a, b):
        assert torch.equal(x, y)
        assert torch.equal(opt_a.state[x]["average"], opt_b.state[y]["average"])


def test_failing_step_leaves_accumulators_and_averages_untouched():
    inits, grads = _data(seed=3, steps=2)
    params = [torch.nn.Parameter(torch.tensor(x)) for x in inits]
    opt = optimizers.Adam(params, gradient_accumulation_steps=2, use_ema=True)
    _steps(opt, params, grads[:1])
    before = copy.deepcopy(opt.state_dict())
    weights = [p.detach().clone() for p in params]
    bad = [torch.ones_like(p) for p in params]
    bad[-1] = torch.ones(7)  # wrong shape, on the update micro-step
    with pytest.raises(ValueError, match="shape"):
        opt.apply(bad, params)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for key, entry in before["state"].items():
        for name, value in entry.items():
            assert torch.equal(after["state"][key][name], value), name
    assert all(torch.equal(p, w) for p, w in zip(params, weights))


def test_iterations_with_accumulation_and_setter():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = optimizers.SGD([p], learning_rate=1.0, gradient_accumulation_steps=2)
    p.grad = torch.ones(2)
    opt.step()
    assert opt.iterations == 0 and torch.equal(p, torch.zeros(2))
    p.grad = torch.full((2,), 3.0)
    opt.step()
    assert opt.iterations == 1 and torch.equal(p, torch.full((2,), -2.0))
    opt.iterations = 5
    assert opt.iterations == 5 and opt._micro_iterations == 10


def test_config_round_trip_with_common_arguments():
    opt = optimizers.Adam(
        learning_rate=optimizers.schedules.CosineDecay(0.1, 100),
        use_ema=True,
        ema_momentum=0.9,
        ema_overwrite_frequency=5,
        loss_scale_factor=8.0,
        gradient_accumulation_steps=4,
    )
    config = opt.get_config()
    for key in ("use_ema", "ema_momentum", "ema_overwrite_frequency",
                "loss_scale_factor", "gradient_accumulation_steps"):
        assert config[key] == getattr(opt, key)
    clone = optimizers.Adam.from_config(config)
    assert clone.get_config() == config
    # Keras's own config, with a Keras schedule, loads without Keras classes.
    k_opt = keras.optimizers.Adam(
        learning_rate=keras.optimizers.schedules.CosineDecay(0.1, 100),
        use_ema=True,
        gradient_accumulation_steps=4,
        loss_scale_factor=8.0,
    )
    loaded = optimizers.Adam.from_config(k_opt.get_config())
    assert isinstance(loaded._lr_schedule, optimizers.schedules.CosineDecay)
    assert loaded.use_ema and loaded.gradient_accumulation_steps == 4
    assert loaded.loss_scale_factor == 8.0
    keys = set(keras.optimizers.Adam().get_config())
    assert set(optimizers.Adam().get_config()) == keys
