"""torchfit.optimizers.schedules, differential against
keras.optimizers.schedules, plus the torch lr_scheduler bridges."""

import math
import warnings

import numpy as np
import pytest
import torch

import torchfit.optimizers as optimizers
from torchfit.optimizers import schedules

keras = pytest.importorskip("keras")

CASES = [
    ("ExponentialDecay", (0.1, 7, 0.8), {}),
    ("ExponentialDecay", (0.1, 7, 0.8), {"staircase": True}),
    ("ExponentialDecay", (1.0, 3.5, 1.2), {}),
    ("PiecewiseConstantDecay", ([3, 10, 20], [1.0, 0.5, 0.1, 0.01]), {}),
    ("PiecewiseConstantDecay", ([5], [0.3, 0.2]), {}),
    ("PolynomialDecay", (0.1, 10), {}),
    ("PolynomialDecay", (0.1, 10), {"end_learning_rate": 0.01, "power": 2.0}),
    ("PolynomialDecay", (0.1, 10), {"cycle": True, "power": 0.5}),
    ("InverseTimeDecay", (0.1, 5, 0.5), {}),
    ("InverseTimeDecay", (0.1, 5, 0.5), {"staircase": True}),
    ("CosineDecay", (0.1, 20), {}),
    ("CosineDecay", (0.1, 20), {"alpha": 0.1}),
    ("CosineDecay", (0.0, 20), {"warmup_target": 0.2, "warmup_steps": 7}),
    ("CosineDecay", (0.01, 15), {"alpha": 0.2, "warmup_target": 0.1, "warmup_steps": 4}),
    ("CosineDecayRestarts", (0.1, 5), {}),
    ("CosineDecayRestarts", (0.1, 5), {"t_mul": 1.0, "m_mul": 0.5, "alpha": 0.1}),
    ("CosineDecayRestarts", (0.1, 3), {"t_mul": 1.5, "m_mul": 0.8}),
]
IDS = [f"{n}-{'-'.join(sorted(k)) or 'defaults'}-{i}" for i, (n, _, k) in enumerate(CASES)]


@pytest.mark.parametrize("name,args,kwargs", CASES, ids=IDS)
def test_values_match_keras(name, args, kwargs):
    expected = getattr(keras.optimizers.schedules, name)(*args, **kwargs)
    actual = getattr(schedules, name)(*args, **kwargs)
    steps = list(range(0, 70))
    k_values = np.array([float(expected(s)) for s in steps], dtype=np.float32)
    t_values = [actual(s) for s in steps]
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in t_values)
    np.testing.assert_array_equal(np.array([v.item() for v in t_values], dtype=np.float32), k_values)
    # A step given as a tensor (what an optimizer may pass) gives the same.
    assert actual(torch.tensor(9)).item() == pytest.approx(float(expected(9)), rel=1e-7)


@pytest.mark.parametrize("name,args,kwargs", CASES, ids=IDS)
def test_config_round_trip_and_keras_interchange(name, args, kwargs):
    schedule = getattr(schedules, name)(*args, **kwargs)
    keras_schedule = getattr(keras.optimizers.schedules, name)(*args, **kwargs)
    assert schedule.get_config() == keras_schedule.get_config()
    clone = type(schedule).from_config(schedule.get_config())
    assert clone.get_config() == schedule.get_config()
    assert schedules.deserialize(schedules.serialize(schedule)).get_config() == schedule.get_config()
    # Keras's serialized dict loads as the torchfit class.
    loaded = schedules.deserialize(keras.optimizers.schedules.serialize(keras_schedule))
    assert type(loaded) is type(schedule)
    assert loaded(11).item() == schedule(11).item()
    # And torchfit's config builds the Keras class.
    rebuilt = type(keras_schedule).from_config(schedule.get_config())
    assert float(rebuilt(11)) == schedule(11).item()


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("SGD", {"momentum": 0.9}),
        ("Adam", {"weight_decay": 0.05}),
        ("RMSprop", {"gradient_accumulation_steps": 2}),
    ],
)
def test_optimizer_with_schedule_matches_keras(name, kwargs):
    rng = np.random.default_rng(0)
    init = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(10)]
    make = lambda module: module.CosineDecay(0.05, 6, alpha=0.1, warmup_target=0.2, warmup_steps=3)  # noqa: E731

    k_opt = getattr(keras.optimizers, name)(learning_rate=make(keras.optimizers.schedules), **kwargs)
    k_var = keras.Variable(init)
    p = torch.nn.Parameter(torch.tensor(init))
    t_opt = getattr(optimizers, name)([p], learning_rate=make(schedules), **kwargs)
    for g in grads:
        # `learning_rate` reads the value the next step will use.
        assert t_opt.learning_rate == pytest.approx(float(k_opt.learning_rate), rel=1e-6)
        k_opt.apply_gradients([(torch.tensor(g), k_var)])
        p.grad = torch.tensor(g)
        t_opt.step()
    np.testing.assert_allclose(p.detach().numpy(), k_var.numpy(), rtol=1e-5, atol=1e-6)
    assert t_opt.iterations == int(k_opt.iterations.numpy())
    assert isinstance(t_opt.get_config()["learning_rate"], dict)
    restored = type(t_opt).from_config(t_opt.get_config())
    assert restored.learning_rate == pytest.approx(make(schedules)(0).item())


def test_compiled_model_fit_with_schedule_matches_keras():
    import sys

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from twins import mlp_pair, rng_data

    keras.utils.clear_session()
    data = rng_data(n=40)
    tmodel, kmodel = mlp_pair([6, 8, 1])
    tmodel.compile(
        optimizer=optimizers.SGD(learning_rate=schedules.ExponentialDecay(0.1, 2, 0.7)), loss="mse"
    )
    kmodel.compile(
        optimizer=keras.optimizers.SGD(
            learning_rate=keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.7)
        ),
        loss="mse",
    )
    fit = dict(x=data["x"], y=data["y_reg"], batch_size=8, epochs=3, shuffle=False, verbose=0)
    t_hist, k_hist = tmodel.fit(**fit), kmodel.fit(**fit)
    np.testing.assert_allclose(t_hist.history["loss"], k_hist.history["loss"], rtol=2e-5)
    assert tmodel.optimizer.learning_rate == pytest.approx(float(kmodel.optimizer.learning_rate))


# --------------------------------------------------------------------------
# torch bridges
# --------------------------------------------------------------------------


def test_torch_schedulers_drive_bound_torchfit_optimizers():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = optimizers.Adam([p], learning_rate=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=10, cycle_momentum=False)
    seen, torch_seen = [], []
    for _ in range(10):
        seen.append(opt.learning_rate)
        torch_seen.append(opt.param_groups[0]["lr"])
        p.grad = torch.ones(3)
        opt.step()
        scheduler.step() if len(seen) < 10 else None
    assert seen == torch_seen and len(set(seen)) > 5
    assert opt.iterations == 10
    # Reference: the same scheduler on a torch optimizer sees the same rates.
    q = torch.nn.Parameter(torch.zeros(3))
    ref_opt = torch.optim.Adam([q], lr=0.1)
    ref = torch.optim.lr_scheduler.OneCycleLR(ref_opt, max_lr=0.5, total_steps=10, cycle_momentum=False)
    ref_seen = []
    for _ in range(10):
        ref_seen.append(ref_opt.param_groups[0]["lr"])
        q.grad = torch.ones(3)
        ref_opt.step()
        ref.step() if len(ref_seen) < 10 else None
    assert seen == pytest.approx(ref_seen)


def test_torch_scheduler_state_dict_round_trip():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = optimizers.SGD([p], learning_rate=1.0)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    for _ in range(3):
        p.grad = torch.ones(2)
        opt.step()
        scheduler.step()
    assert opt.learning_rate == pytest.approx(0.125)
    q = torch.nn.Parameter(torch.zeros(2))
    opt2 = optimizers.SGD([q], learning_rate=1.0)
    opt2.load_state_dict(opt.state_dict())
    sched2 = torch.optim.lr_scheduler.ExponentialLR(opt2, gamma=0.5)
    sched2.load_state_dict(scheduler.state_dict())
    sched2.step()
    scheduler.step()
    assert opt2.learning_rate == opt.learning_rate == pytest.approx(0.0625)


def test_schedule_lr_on_plain_torch_optimizer_matches_torchfit_schedule():
    schedule = schedules.PiecewiseConstantDecay([2, 4], [0.3, 0.2, 0.1])
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=99.0)
    scheduler = schedules.ScheduleLR(opt, schedule)
    q = torch.nn.Parameter(torch.zeros(2))
    tf_opt = optimizers.SGD([q], learning_rate=schedule)
    used = []
    for _ in range(7):
        used.append(opt.param_groups[0]["lr"])
        assert used[-1] == pytest.approx(tf_opt.learning_rate)
        p.grad = torch.ones(2)
        q.grad = torch.ones(2)
        opt.step()
        tf_opt.step()
        scheduler.step()
    assert used == pytest.approx([0.3, 0.3, 0.3, 0.2, 0.2, 0.1, 0.1])
    torch.testing.assert_close(p.detach(), q.detach())
    state = scheduler.state_dict()
    assert state["last_epoch"] == 7 and "schedule" not in state
    # Plain callables work too.
    r = torch.nn.Parameter(torch.zeros(1))
    lam = schedules.ScheduleLR(torch.optim.SGD([r], lr=1.0), lambda step: 0.5 / (1 + step))
    assert lam.get_last_lr() == [0.5]


def test_schedule_lr_validation():
    with pytest.raises(TypeError, match="optimizer"):
        schedules.ScheduleLR("sgd", schedules.CosineDecay(0.1, 10))
    with pytest.raises(ValueError, match="bound"):
        schedules.ScheduleLR(optimizers.SGD(), schedules.CosineDecay(0.1, 10))
    p = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(TypeError, match="schedule"):
        schedules.ScheduleLR(torch.optim.SGD([p], lr=0.1), 0.5)


# --------------------------------------------------------------------------
# Base class and validation
# --------------------------------------------------------------------------


def test_custom_schedule_subclass():
    class Halving(schedules.LearningRateSchedule):
        def __init__(self, start):
            self.start = start

        def __call__(self, step):
            return self.start * 0.5 ** (step // 2)

        def get_config(self):
            return {"start": self.start}

    schedule = Halving(0.8)
    assert Halving.from_config(schedule.get_config())(4) == pytest.approx(0.2)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = optimizers.SGD([p], learning_rate=schedule)
    config = opt.get_config()
    clone = optimizers.SGD.from_config(config, custom_objects={"Halving": Halving})
    assert clone.learning_rate == pytest.approx(0.8)
    with pytest.raises(NotImplementedError, match="__call__"):
        schedules.LearningRateSchedule()(0)
    with pytest.raises(NotImplementedError, match="get_config"):
        schedules.LearningRateSchedule().get_config()
    with pytest.raises(TypeError, match="config"):
        schedules.ExponentialDecay.from_config([0.1, 10, 0.5])


INVALID = [
    ("ExponentialDecay", (0.1, 0, 0.5), {}, ValueError, ["decay_steps", "> 0", "0"]),
    ("ExponentialDecay", (0.1, -3, 0.5), {}, ValueError, ["decay_steps", "-3"]),
    ("ExponentialDecay", ("0.1", 10, 0.5), {}, TypeError, ["initial_learning_rate", "'0.1'", "str"]),
    ("ExponentialDecay", (-0.1, 10, 0.5), {}, ValueError, ["initial_learning_rate", ">= 0"]),
    ("ExponentialDecay", (0.1, 10, None), {}, TypeError, ["decay_rate", "None"]),
    ("ExponentialDecay", (0.1, 10, 0.5), {"staircase": "yes"}, TypeError, ["staircase", "bool"]),
    ("ExponentialDecay", (0.1, 10, 0.5), {"name": 3}, TypeError, ["name", "str"]),
    ("InverseTimeDecay", (0.1, float("nan"), 0.5), {}, ValueError, ["decay_steps", "nan"]),
    ("PolynomialDecay", (0.1, 10), {"cycle": 1}, TypeError, ["cycle", "bool"]),
    ("PolynomialDecay", (0.1, 10), {"end_learning_rate": -1.0}, ValueError, ["end_learning_rate"]),
    ("CosineDecay", (0.1, 10), {"warmup_steps": -1}, ValueError, ["warmup_steps", ">= 0"]),
    ("CosineDecay", (0.1, 10), {"warmup_target": "high"}, TypeError, ["warmup_target"]),
    ("CosineDecayRestarts", (0.1, 0), {}, ValueError, ["first_decay_steps", "> 0"]),
    ("CosineDecayRestarts", (0.1, 10), {"t_mul": 0.0}, ValueError, ["t_mul", "> 0"]),
    ("CosineDecayRestarts", (0.1, 10), {"m_mul": -0.5}, ValueError, ["m_mul", ">= 0"]),
    ("PiecewiseConstantDecay", ([1, 2], [0.1, 0.2]), {}, ValueError, ["boundaries", "values", "length 2"]),
    ("PiecewiseConstantDecay", ([], [0.1]), {}, ValueError, ["boundaries", "non-empty"]),
    ("PiecewiseConstantDecay", (5, [0.1, 0.2]), {}, TypeError, ["boundaries", "list", "int"]),
    ("PiecewiseConstantDecay", ([5, 2], [0.1, 0.2, 0.3]), {}, ValueError, ["non-decreasing", "[5, 2]"]),
    ("PiecewiseConstantDecay", ([5], [0.1, "x"]), {}, TypeError, ["values[1]", "'x'"]),
]


@pytest.mark.parametrize(
    "name,args,kwargs,error,fragments", INVALID, ids=[f"{c[0]}-{i}" for i, c in enumerate(INVALID)]
)
def test_argument_validation(name, args, kwargs, error, fragments):
    with pytest.raises(error) as info:
        getattr(schedules, name)(*args, **kwargs)
    message = str(info.value)
    assert name in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_bad_step_and_serialization_errors():
    schedule = schedules.ExponentialDecay(0.1, 10, 0.5)
    with pytest.raises(TypeError, match="step"):
        schedule("3")
    with pytest.raises(TypeError, match="step"):
        schedule(torch.ones(2))
    assert schedule(np.int64(10)).item() == pytest.approx(0.05)
    with pytest.raises(ValueError, match="class_name"):
        schedules.deserialize({"config": {}})
    with pytest.raises(ValueError, match="Nope"):
        schedules.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(TypeError, match="learning_rate_schedule"):
        schedules.serialize(lambda step: 0.1)
    with pytest.raises(TypeError, match="identifier"):
        schedules.get(0.1)
    assert schedules.get(schedule) is schedule
    assert isinstance(schedules.get(schedules.serialize(schedule)), schedules.ExponentialDecay)
    assert "ExponentialDecay(" in repr(schedule)
    assert math.isclose(float(schedule(0)), 0.1, rel_tol=1e-7)


def test_schedule_at_tensor_step_on_other_dtypes():
    schedule = schedules.CosineDecay(torch.tensor(0.1, dtype=torch.float64), 10)
    value = schedule(torch.tensor(3, dtype=torch.int32))
    assert value.dtype == torch.float64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert schedule(3.5).item() > 0
