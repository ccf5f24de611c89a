"""Tests for torchfit.optimizers, mostly differential against Keras 3.

tests/conftest.py selects Keras's torch backend. Each differential test
creates the same float32 variables in Keras and torchfit, applies the same
random gradients (Keras: ``apply_gradients``; torchfit: ``.grad`` +
``step()``) and compares the results.
"""

import copy
import inspect
import io
import math
import pickle
import warnings

import numpy as np
import pytest
import torch

import torchfit.optimizers as optimizers

keras = pytest.importorskip("keras")

SHAPES = [(5, 3), (3,), (2, 3, 4)]
RTOL, ATOL = 1e-5, 1e-6


def _data(seed, steps, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    inits = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [
        [rng.standard_normal(s).astype(np.float32) for s in shapes]
        for _ in range(steps)
    ]
    return inits, grads


def _run_keras(name, kwargs, inits, grads, names=None, exclude=None):
    opt = getattr(keras.optimizers, name)(**kwargs)
    if exclude:
        opt.exclude_from_weight_decay(var_names=exclude)
    variables = [
        keras.Variable(x, name=(names[i] if names else None))
        for i, x in enumerate(inits)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns about None gradients.
        for step in grads:
            pairs = [
                (None if g is None else torch.tensor(g), v)
                for g, v in zip(step, variables)
            ]
            opt.apply_gradients(pairs)
    return [np.asarray(v.numpy()) for v in variables], int(opt.iterations.numpy())


def _make_params(inits):
    return [torch.nn.Parameter(torch.tensor(x)) for x in inits]


def _run_torchfit(opt, params, grads):
    for step in grads:
        for p, g in zip(params, step):
            p.grad = None if g is None else torch.tensor(g)
        opt.step()
    return [p.detach().numpy().copy() for p in params]


def _assert_close(actual, expected):
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL)


CASES = [
    ("SGD", {}),
    ("SGD", {"learning_rate": 0.1, "momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"learning_rate": 0.1, "clipvalue": 0.3}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("RMSprop", {"rho": 0.8, "centered": True, "clipnorm": 0.5}),
    ("Adam", {}),
    ("Adam", {"learning_rate": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    ("Adam", {"beta_1": 0.5, "beta_2": 0.9, "epsilon": 1e-3, "clipnorm": 0.5}),
    ("Adam", {"learning_rate": 0.05, "global_clipnorm": 1.0}),
    ("AdamW", {}),
    ("AdamW", {"learning_rate": 0.05, "weight_decay": 0.3, "amsgrad": True}),
    ("Adamax", {}),
    ("Adamax", {"learning_rate": 0.05, "beta_1": 0.5, "clipvalue": 0.5}),
    ("Nadam", {}),
    ("Nadam", {"learning_rate": 0.05, "beta_1": 0.8, "weight_decay": 0.05}),
    ("Adagrad", {}),
    ("Adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5}),
    ("Adadelta", {}),
    ("Adadelta", {"learning_rate": 1.0, "rho": 0.5, "global_clipnorm": 2.0}),
    ("Lion", {}),
    ("Lion", {"learning_rate": 0.01, "beta_1": 0.5, "weight_decay": 0.5}),
    ("Ftrl", {}),
    (
        "Ftrl",
        {
            "learning_rate": 0.1,
            "learning_rate_power": -0.3,
            "l1_regularization_strength": 0.01,
            "l2_regularization_strength": 0.1,
            "l2_shrinkage_regularization_strength": 0.1,
            "beta": 0.5,
        },
    ),
    ("Lamb", {}),
    ("Lamb", {"learning_rate": 0.05, "weight_decay": 0.1, "clipnorm": 1.0}),
    ("Adafactor", {}),
    ("Adafactor", {"learning_rate": 0.5, "clip_threshold": 0.5}),
    ("Adafactor", {"learning_rate": 0.05, "relative_step": False, "epsilon_2": 0.1}),
]


@pytest.mark.parametrize(
    "name,kwargs",
    CASES,
    ids=[f"{n}-{'-'.join(sorted(k)) or 'defaults'}" for n, k in CASES],
)
def test_matches_keras(name, kwargs):
    inits, grads = _data(seed=len(kwargs) + len(name), steps=8)
    expected, keras_iterations = _run_keras(name, kwargs, inits, grads)
    params = _make_params(inits)
    opt = getattr(optimizers, name)(params, **kwargs)
    actual = _run_torchfit(opt, params, grads)
    _assert_close(actual, expected)
    assert opt.iterations == keras_iterations == len(grads)
    assert isinstance(opt.iterations, int)
    # The update actually moved the parameters (the test is not vacuous).
    assert any(not np.allclose(a, x) for a, x in zip(actual, inits))


@pytest.mark.parametrize("name", ["Adam", "Nadam", "SGD", "Adafactor"])
def test_missing_gradients_match_keras(name):
    # A parameter without a gradient is skipped, but `iterations` (and the
    # bias corrections that depend on it) still advance, as in Keras.
    inits, grads = _data(seed=7, steps=6)
    grads[0][1] = None
    grads[1][1] = None
    grads[3][0] = None
    kwargs = {"momentum": 0.9} if name == "SGD" else {}
    expected, iterations = _run_keras(name, kwargs, inits, grads)
    params = _make_params(inits)
    opt = getattr(optimizers, name)(params, **kwargs)
    _assert_close(_run_torchfit(opt, params, grads), expected)
    assert opt.iterations == iterations == 6


def test_callable_schedule_matches_keras():
    class Halving(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1 * 0.5 ** (step // 2)

    schedule = Halving()
    inits, grads = _data(seed=3, steps=6)
    kwargs = {"learning_rate": schedule, "weight_decay": 0.2}
    expected, _ = _run_keras("Adam", kwargs, inits, grads)
    params = _make_params(inits)
    opt = optimizers.Adam(params, **kwargs)
    _assert_close(_run_torchfit(opt, params, grads), expected)
    # The value used by the last step was written into the param groups.
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** (5 // 2))
    assert opt.learning_rate == pytest.approx(0.1 * 0.5 ** (6 // 2))


def test_zero_argument_callable_learning_rate():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = optimizers.SGD([p], learning_rate=lambda: 0.5)
    p.grad = torch.ones(2)
    opt.step()
    assert torch.allclose(p, torch.full((2,), -0.5))


def test_exclude_from_weight_decay_matches_keras():
    inits, grads = _data(seed=11, steps=5, shapes=[(4, 3), (3,)])
    kwargs = {"learning_rate": 0.05, "weight_decay": 0.5}
    expected, _ = _run_keras(
        "AdamW", kwargs, inits, grads, names=["kernel", "bias"], exclude=["bias"]
    )
    params = _make_params(inits)
    opt = optimizers.AdamW(
        [("dense.kernel", params[0]), ("dense.bias", params[1])], **kwargs
    )
    opt.exclude_from_weight_decay(var_names=["bias"])
    _assert_close(_run_torchfit(opt, params, grads), expected)


def test_apply_gradients_matches_step():
    inits, grads = _data(seed=5, steps=4)
    a = _make_params(inits)
    b = _make_params(inits)
    opt_a = optimizers.Nadam(a, learning_rate=0.05)
    _run_torchfit(opt_a, a, grads)
    opt_b = optimizers.Nadam(learning_rate=0.05)
    for step in grads:
        result = opt_b.apply_gradients(zip([torch.tensor(g) for g in step], b))
    assert opt_b.is_bound and result == opt_b.iterations == 4
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert all(p.grad is None for p in b)


def test_apply_gradients_with_named_parameters_matches_keras_names():
    """(name, tensor) pairs bind an unbound optimizer with their names, so
    ``exclude_from_weight_decay(var_names=...)`` matches them as Keras matches
    its variables' names."""
    inits, grads = _data(seed=12, steps=3, shapes=[(4, 3), (3,)])
    kwargs = {"learning_rate": 0.05, "weight_decay": 0.5}
    expected, _ = _run_keras(
        "AdamW", kwargs, inits, grads, names=["kernel", "bias"], exclude=["bias"]
    )
    params = _make_params(inits)
    opt = optimizers.AdamW(**kwargs)
    opt.exclude_from_weight_decay(var_names=["bias"])
    named = [("dense.kernel", params[0]), ("dense.bias", params[1])]
    for step in grads:
        opt.apply_gradients(zip([torch.tensor(g) for g in step], named))
    assert opt.param_groups[0]["param_names"] == ["dense.kernel", "dense.bias"]
    _assert_close([p.detach().numpy() for p in params], expected)


def test_apply_rejects_an_entry_that_is_neither_tensor_nor_named_pair():
    p = torch.nn.Parameter(torch.ones(2))
    opt = optimizers.SGD(learning_rate=0.1)
    with pytest.raises(TypeError, match=r"`trainable_variables`.*\(name, tensor\) pairs.*"
                                        r"Received: an entry \(2, "):
        opt.apply([torch.ones(2)], [(2, p)])
    assert not opt.is_bound and torch.equal(p, torch.ones(2))



def test_wrapper_optimizers_apply_named_pairs_like_their_inner_optimizer():
    """LossScaleOptimizer and MultiOptimizer take (name, tensor) pairs in apply
    as the plain optimizer does: the names bind (and route) the parameters."""
    def fresh():
        torch.manual_seed(0)
        return [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]

    grads = [torch.full((4, 3), 0.5), torch.full((3,), -0.25)]
    names = ["dense.kernel", "dense.bias"]

    reference = fresh()
    plain = optimizers.AdamW(learning_rate=0.05, weight_decay=0.5)
    plain.exclude_from_weight_decay(var_names=["bias"])
    plain.apply(grads, list(zip(names, reference)))

    scaled_params = fresh()
    inner = optimizers.AdamW(learning_rate=0.05, weight_decay=0.5)
    inner.exclude_from_weight_decay(var_names=["bias"])
    scaled = optimizers.LossScaleOptimizer(inner, initial_scale=1.0)
    scaled.apply(grads, list(zip(names, scaled_params)))
    assert inner.param_groups[0]["param_names"] == names
    for got, want in zip(scaled_params, reference):
        torch.testing.assert_close(got, want)

    routed = fresh()
    sgd, adamw = optimizers.SGD(learning_rate=0.1), optimizers.AdamW(learning_rate=0.05)
    multi = optimizers.MultiOptimizer(optimizers.OptimizerMap(adamw, {r"dense\.bias": sgd}))
    before = [p.detach().clone() for p in routed]
    multi.apply(grads, list(zip(names, routed)))
    assert sgd.param_groups[0]["params"][0] is routed[1]
    assert adamw.param_groups[0]["params"][0] is routed[0]
    torch.testing.assert_close(routed[1], before[1] - 0.1 * grads[1])


def test_wrapper_optimizers_refuse_a_bad_trainable_variables_entry():
    p = torch.nn.Parameter(torch.ones(2))
    for wrapper in (optimizers.LossScaleOptimizer(optimizers.SGD(learning_rate=0.1)),
                    optimizers.MultiOptimizer(optimizers.OptimizerMap(
                        optimizers.SGD(learning_rate=0.1)))):
        with pytest.raises(TypeError, match=r"`trainable_variables`.*Received: an entry \(2, "):
            wrapper.apply([torch.ones(2)], [(2, p)])
        assert torch.equal(p, torch.ones(2))

# --------------------------------------------------------------------------
# torch integration: schedulers, binding, state_dict
# --------------------------------------------------------------------------


def test_step_lr_scheduler_drives_learning_rate():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = optimizers.SGD([p], learning_rate=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    assert opt.param_groups[0]["initial_lr"] == 0.1
    used = []
    for _ in range(6):
        used.append(opt.learning_rate)
        p.grad = torch.ones(3)
        opt.step()
        scheduler.step()
    assert used == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    assert torch.allclose(p, torch.full((3,), -sum(used)))
    assert opt.iterations == 6
    assert scheduler.get_last_lr() == pytest.approx([0.0125])


def test_scheduler_on_optimizer_bound_later():
    p = torch.nn.Parameter(torch.ones(2))
    opt = optimizers.Adam(learning_rate=0.01)
    opt.learning_rate = 0.02
    opt.bind([p])
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (1 + epoch))
    for _ in range(3):
        p.grad = torch.ones(2)
        opt.step()
        scheduler.step()
    assert opt.learning_rate == pytest.approx(0.02 / 4)
    assert opt.param_groups[0]["initial_lr"] == 0.02


def test_unbound_then_bind():
    inits, grads = _data(seed=2, steps=5)
    opt = optimizers.RMSprop(momentum=0.5, centered=True)
    assert not opt.is_bound
    assert opt.learning_rate == 0.001 and opt.iterations == 0
    assert opt.momentum == 0.5
    with pytest.raises(AttributeError, match="bind"):
        opt.param_groups
    with pytest.raises(RuntimeError, match="bind"):
        opt.step()
    with pytest.raises(RuntimeError, match="bind"):
        opt.state_dict()
    opt.zero_grad()  # harmless while unbound
    assert "unbound" in repr(opt)
    assert opt.bind([]) is opt  # Keras's build([]): nothing to bind yet
    assert not opt.is_bound
    params = _make_params(inits)
    assert opt.bind(params) is opt
    assert opt.is_bound and len(opt.param_groups) == 1
    with pytest.raises(RuntimeError, match="already bound"):
        opt.build(params)
    reference = _make_params(inits)
    ref_opt = optimizers.RMSprop(reference, momentum=0.5, centered=True)
    for a, b in zip(_run_torchfit(opt, params, grads), _run_torchfit(ref_opt, reference, grads)):
        np.testing.assert_array_equal(a, b)


def test_bind_keeps_iterations_and_accepts_module():
    model = torch.nn.Linear(3, 2)
    opt = optimizers.Adam()
    opt.iterations = 7
    opt.bind(model)
    assert opt.iterations == 7
    assert [g["iterations"] for g in opt.param_groups] == [7]
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    assert opt.iterations == 8


@pytest.mark.parametrize("name", sorted(optimizers.ALL_OBJECTS_DICT))
def test_state_dict_round_trip(name):
    cls = optimizers.ALL_OBJECTS_DICT[name]
    inits, grads = _data(seed=4, steps=6)
    kwargs = {"learning_rate": 0.01}
    a = _make_params(inits)
    opt_a = cls(a, **kwargs)
    _run_torchfit(opt_a, a, grads[:3])
    buffer = io.BytesIO()
    torch.save(opt_a.state_dict(), buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    opt_b = cls(b, **kwargs)
    opt_b.load_state_dict(saved)
    assert opt_b.iterations == 3
    out_a = _run_torchfit(opt_a, a, grads[3:])
    out_b = _run_torchfit(opt_b, b, grads[3:])
    for x, y in zip(out_a, out_b):
        np.testing.assert_array_equal(x, y)
    assert opt_a.iterations == opt_b.iterations == 6


def test_iterations_is_settable_and_saved():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = optimizers.Adam([p])
    opt.iterations = 41
    assert opt.state_dict()["param_groups"][0]["iterations"] == 41
    p.grad = torch.ones(2)
    opt.step()
    assert opt.iterations == 42
    with pytest.raises(ValueError, match="iterations"):
        opt.iterations = -1


def test_param_groups_and_hooks():
    w = torch.nn.Parameter(torch.ones(2))
    b = torch.nn.Parameter(torch.ones(2))
    opt = optimizers.SGD(
        [{"params": [w]}, {"params": [b], "learning_rate": 0.5, "weight_decay": 0.0}],
        learning_rate=0.1,
        weight_decay=0.5,
    )
    calls = []
    opt.register_step_pre_hook(lambda *args: calls.append("pre"))
    opt.register_step_post_hook(lambda *args: calls.append("post"))
    w.grad = torch.ones(2)
    b.grad = torch.ones(2)
    opt.step()
    assert calls == ["pre", "post"]
    assert torch.allclose(w, torch.full((2,), 1 - 0.1 * 0.5 - 0.1))
    assert torch.allclose(b, torch.full((2,), 0.5))
    extra = torch.nn.Parameter(torch.ones(1))
    opt.add_param_group({"params": [extra]})
    assert opt.param_groups[-1]["iterations"] == 1
    with pytest.raises(ValueError, match="momentum"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(1))], "momentum": 2.0})


def test_hyperparameter_attributes_follow_param_groups():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = optimizers.SGD([p], momentum=0.5)
    assert opt.momentum == 0.5
    opt.momentum = 0.8
    assert opt.param_groups[0]["momentum"] == 0.8
    with pytest.raises(ValueError, match="momentum"):
        opt.momentum = 1.5
    opt.learning_rate = 0.3
    assert opt.param_groups[0]["lr"] == 0.3 and opt.learning_rate == 0.3


def test_grad_is_not_modified_by_clipping():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = optimizers.SGD([p], learning_rate=1.0, clipnorm=1.0)
    p.grad = torch.tensor([3.0, 4.0, 0.0])
    opt.step()
    assert torch.equal(p.grad, torch.tensor([3.0, 4.0, 0.0]))
    assert torch.allclose(p, torch.tensor([-0.6, -0.8, 0.0]))


def test_step_with_closure_and_without_grads():
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = optimizers.Adam([p], learning_rate=0.1)
    assert opt.step() is None and opt.iterations == 0  # nothing to do

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(5.0)
    assert opt.iterations == 1 and not torch.equal(p, torch.tensor([1.0, 2.0]))


# --------------------------------------------------------------------------
# A failing step leaves everything untouched
# --------------------------------------------------------------------------


def _snapshot(opt, params):
    return (
        [p.detach().clone() for p in params],
        copy.deepcopy(opt.state_dict()),
    )


def _assert_unchanged(opt, params, snapshot):
    before, state = snapshot
    for p, b in zip(params, before):
        assert torch.equal(p, b)
    after = opt.state_dict()
    assert after["param_groups"] == state["param_groups"]
    assert after["state"].keys() == state["state"].keys()
    for key, entry in state["state"].items():
        for name, value in entry.items():
            assert torch.equal(after["state"][key][name], value)


def test_non_finite_learning_rate_raises_before_updating():
    params = _make_params(_data(seed=1, steps=0)[0])
    opt = optimizers.Adam(params, weight_decay=0.1)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    snapshot = _snapshot(opt, params)
    opt.param_groups[0]["lr"] = float("nan")
    with pytest.raises(ValueError, match="learning rate"):
        opt.step()
    opt.param_groups[0]["lr"] = 0.001
    _assert_unchanged(opt, params, snapshot)


def test_failing_schedule_raises_before_updating():
    def schedule(iterations):
        if iterations >= 1:
            raise RuntimeError("schedule exploded")
        return 0.1

    params = _make_params(_data(seed=1, steps=0)[0])
    opt = optimizers.SGD(params, learning_rate=schedule, momentum=0.9)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    snapshot = _snapshot(opt, params)
    with pytest.raises(RuntimeError, match="exploded"):
        opt.step()
    _assert_unchanged(opt, params, snapshot)


def test_bad_gradient_on_a_later_param_leaves_earlier_ones_untouched():
    params = _make_params(_data(seed=1, steps=0)[0])
    opt = optimizers.Adam(params)
    params[0].grad = torch.ones_like(params[0])
    params[1].grad = torch.ones_like(params[1])
    params[2].grad = torch.ones_like(params[2])
    opt.step()
    snapshot = _snapshot(opt, params)
    params[2].grad = torch.ones_like(params[2]).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()
    _assert_unchanged(opt, params, snapshot)


def test_error_inside_a_pure_update_rule_leaves_params_untouched():
    """A ``_compute_update`` (pure) rule is computed for every group before
    anything is written, weight decay included; built-in rules write in place
    and are covered by tests/test_optimizers_inplace.py."""

    class Failing(optimizers.Optimizer):
        armed = False

        def _compute_update(self, group, params, grads, states, lr, iteration):
            if Failing.armed and group is self.param_groups[-1]:
                raise RuntimeError("boom")
            return [p - lr * g for p, g in zip(params, grads)], [{} for _ in params]

    params = _make_params(_data(seed=1, steps=0)[0])
    opt = Failing([{"params": params[:2]}, {"params": params[2:]}], weight_decay=0.1, use_ema=True)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    snapshot = _snapshot(opt, params)
    Failing.armed = True
    with pytest.raises(RuntimeError, match="boom"):
        opt.step()
    _assert_unchanged(opt, params, snapshot)


# --------------------------------------------------------------------------
# get(), config, copying
# --------------------------------------------------------------------------

DEFAULTS = {
    "sgd": ("SGD", {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}),
    "rmsprop": (
        "RMSprop",
        {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False},
    ),
    "adam": (
        "Adam",
        {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "amsgrad": False},
    ),
    "adamw": ("AdamW", {"learning_rate": 0.001, "weight_decay": 0.004}),
    "adamax": ("Adamax", {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999}),
    "nadam": ("Nadam", {"learning_rate": 0.001, "epsilon": 1e-7}),
    "adagrad": ("Adagrad", {"initial_accumulator_value": 0.1, "epsilon": 1e-7}),
    "adadelta": ("Adadelta", {"learning_rate": 0.001, "rho": 0.95, "epsilon": 1e-7}),
    "lion": ("Lion", {"beta_1": 0.9, "beta_2": 0.99}),
    "ftrl": ("Ftrl", {"learning_rate_power": -0.5, "initial_accumulator_value": 0.1}),
    "lamb": ("Lamb", {"beta_2": 0.999}),
    "adafactor": ("Adafactor", {"beta_2_decay": -0.8, "epsilon_2": 1e-3}),
}


@pytest.mark.parametrize("alias", sorted(DEFAULTS))
def test_get_aliases_give_keras_defaults(alias):
    class_name, expected = DEFAULTS[alias]
    for spelling in (alias, alias.upper(), class_name):
        opt = optimizers.get(spelling)
        assert type(opt) is getattr(optimizers, class_name)
        assert not opt.is_bound
    config = opt.get_config()
    for key, value in expected.items():
        assert config[key] == value, key
    # Same defaults as Keras itself.
    keras_config = getattr(keras.optimizers, class_name)().get_config()
    for key, value in config.items():
        if key != "name":
            assert keras_config[key] == pytest.approx(value), key


def test_get_other_identifiers():
    p = torch.nn.Parameter(torch.zeros(2))
    bound = optimizers.get("adam", [p])
    assert bound.is_bound and bound.param_groups[0]["params"][0] is p
    assert optimizers.get(bound) is bound
    unbound = optimizers.SGD()
    assert optimizers.get(unbound, [p]) is unbound and unbound.is_bound
    native = torch.optim.SGD([p], lr=0.1)
    assert optimizers.get(native) is native
    from_dict = optimizers.get(
        {"class_name": "RMSprop", "config": {"learning_rate": 0.01, "centered": True}}
    )
    assert isinstance(from_dict, optimizers.RMSprop)
    assert from_dict.learning_rate == 0.01 and from_dict.centered is True


def test_get_errors():
    assert optimizers.get(None) is None  # as keras.optimizers.get
    with pytest.raises(ValueError) as info:
        optimizers.get("adamm")
    message = str(info.value)
    assert "`optimizer`" in message and "'adamm'" in message
    assert "Did you mean 'adam'" in message and "'rmsprop'" in message
    with pytest.raises(TypeError, match="optimizer"):
        optimizers.get(3)
    with pytest.raises(ValueError, match="optimizer"):
        optimizers.get({"class_name": "nope", "config": {}})


@pytest.mark.parametrize("name", sorted(optimizers.ALL_OBJECTS_DICT))
def test_config_round_trip_and_keras_config(name):
    cls = optimizers.ALL_OBJECTS_DICT[name]
    opt = cls(learning_rate=0.02, clipnorm=1.5, name="custom")
    config = opt.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    assert optimizers.deserialize(optimizers.serialize(opt)).get_config() == config
    # A Keras config (with its EMA / loss-scale keys at their defaults) loads.
    keras_config = getattr(keras.optimizers, cls.__name__)(learning_rate=0.02).get_config()
    loaded = cls.from_config(keras_config)
    assert loaded.learning_rate == pytest.approx(0.02)


def test_deepcopy_and_pickle_keep_configuration():
    opt = optimizers.Adam(learning_rate=0.02, global_clipnorm=2.0, name="a")
    clone = copy.deepcopy(opt)
    assert clone.get_config() == opt.get_config() and not clone.is_bound
    p = torch.nn.Parameter(torch.ones(2))
    opt.bind([p])
    p.grad = torch.ones(2)
    opt.step()
    restored = pickle.loads(pickle.dumps(opt))
    assert restored.get_config() == opt.get_config()
    assert restored.iterations == 1 and restored.global_clipnorm == 2.0


# --------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------

INVALID = [
    ("SGD", {"learning_rate": -0.1}, ValueError, ["learning_rate", "-0.1", ">= 0"]),
    ("Adam", {"learning_rate": float("nan")}, ValueError, ["learning_rate", "nan"]),
    ("Adam", {"learning_rate": "0.1"}, TypeError, ["learning_rate", "'0.1'", "str"]),
    ("SGD", {"momentum": 1.5}, ValueError, ["momentum", "[0, 1]", "1.5"]),
    ("SGD", {"momentum": -0.1}, ValueError, ["momentum", "-0.1"]),
    ("SGD", {"nesterov": "yes"}, TypeError, ["nesterov", "bool", "'yes'"]),
    ("RMSprop", {"rho": 1.0}, ValueError, ["rho", "[0, 1)", "1.0"]),
    ("RMSprop", {"epsilon": -1e-7}, ValueError, ["epsilon", ">= 0"]),
    ("Adam", {"beta_1": 1.0}, ValueError, ["beta_1", "[0, 1)"]),
    ("Adam", {"beta_2": True}, TypeError, ["beta_2", "bool"]),
    ("Nadam", {"beta_2": -0.5}, ValueError, ["beta_2"]),
    ("Lion", {"beta_1": 0.0}, ValueError, ["beta_1", "SignSGD", "0.0"]),
    ("Adadelta", {"rho": 2}, ValueError, ["rho"]),
    ("Adagrad", {"initial_accumulator_value": -1.0}, ValueError, ["initial_accumulator_value"]),
    ("Ftrl", {"learning_rate_power": 0.5}, ValueError, ["learning_rate_power", "negative or zero"]),
    ("Ftrl", {"l1_regularization_strength": -1.0}, ValueError, ["l1_regularization_strength"]),
    ("Adafactor", {"clip_threshold": 0.0}, ValueError, ["clip_threshold"]),
    ("Adam", {"weight_decay": -0.1}, ValueError, ["weight_decay", ">= 0"]),
    ("AdamW", {"weight_decay": None}, ValueError, ["weight_decay", "None"]),
    ("Adam", {"clipnorm": 0.0}, ValueError, ["clipnorm", "> 0"]),
    ("Adam", {"clipvalue": "big"}, TypeError, ["clipvalue"]),
    (
        "Adam",
        {"clipnorm": 1.0, "global_clipnorm": 1.0},
        ValueError,
        ["clipnorm", "global_clipnorm", "Only one"],
    ),
    ("SGD", {"clipnorm": 1.0, "clipvalue": 1.0}, ValueError, ["clipvalue", "Only one"]),
    ("Adam", {"momentum": 0.9}, ValueError, ["momentum", "not recognized", "unexpected"]),
    ("Adam", {"name": 3}, TypeError, ["name", "str"]),
    ("Adam", {"use_ema": 1}, TypeError, ["use_ema", "bool", "1"]),
    ("Adam", {"use_ema": True, "ema_momentum": 1.5}, ValueError, ["ema_momentum", "[0, 1]", "1.5"]),
    ("SGD", {"ema_overwrite_frequency": 0}, ValueError, ["ema_overwrite_frequency", ">= 1", "0"]),
    ("SGD", {"ema_overwrite_frequency": 2.0}, TypeError, ["ema_overwrite_frequency", "int", "float"]),
    ("SGD", {"gradient_accumulation_steps": 1}, ValueError, ["gradient_accumulation_steps", ">= 2", "1"]),
    ("SGD", {"gradient_accumulation_steps": "4"}, TypeError, ["gradient_accumulation_steps", "'4'"]),
    ("Adam", {"loss_scale_factor": 0.0}, ValueError, ["loss_scale_factor", "> 0"]),
    ("Adam", {"loss_scale_factor": "8"}, TypeError, ["loss_scale_factor", "'8'"]),
]


@pytest.mark.parametrize(
    "name,kwargs,error,fragments",
    INVALID,
    ids=[f"{n}-{'-'.join(k)}" for n, k, _, _ in INVALID],
)
def test_argument_validation(name, kwargs, error, fragments):
    with pytest.raises(error) as info:
        getattr(optimizers, name)(**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_float_passed_to_bind_gives_hint():
    with pytest.raises(TypeError, match="learning_rate=0.1"):
        optimizers.SGD().bind(0.1)


@pytest.mark.parametrize("name", sorted(optimizers.ALL_OBJECTS_DICT))
def test_keras_positional_form(name):
    """``X(1e-3)``/``X(schedule)`` take the first positional argument as
    ``learning_rate``, the next ones in Keras's order; torch's form and
    ``params=`` keep working."""
    cls = optimizers.ALL_OBJECTS_DICT[name]
    keras_cls = getattr(keras.optimizers, cls.__name__)
    second = list(inspect.signature(keras_cls).parameters)[1]
    value = optimizers.get(name).get_config()[second]
    value = not value if isinstance(value, bool) else (0.5 if value is None else value * 0.5)
    opt = cls(0.05, value)
    assert not opt.is_bound
    assert opt.learning_rate == pytest.approx(0.05)
    assert opt.get_config()[second] == value
    schedule = optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    assert cls(schedule)._lr_schedule is schedule
    assert cls(lambda: 0.2).learning_rate == pytest.approx(0.2)
    p = torch.nn.Parameter(torch.zeros(3))
    for opt in (cls([p], 0.05), cls(params=[p], learning_rate=0.05), cls(0.05, params=[p])):
        assert opt.is_bound and opt.learning_rate == pytest.approx(0.05)
    with pytest.raises(TypeError, match="learning_rate"):
        cls(0.05, learning_rate=0.1)
    with pytest.raises(TypeError, match="positional"):
        cls(*([0.05] * (len(inspect.signature(keras_cls).parameters) + 1)))


def test_learning_rate_setter_validation():
    opt = optimizers.Adam()
    with pytest.raises(ValueError, match="learning_rate"):
        opt.learning_rate = -1.0
    scheduled = optimizers.Adam(learning_rate=lambda it: 0.1)
    with pytest.raises(TypeError, match="learning_rate"):
        scheduled.learning_rate = 0.5
    scheduled.learning_rate = lambda it: 0.2
    assert scheduled.learning_rate == pytest.approx(0.2)
    assert math.isclose(optimizers.Adam(learning_rate=1).learning_rate, 1.0)


def test_custom_subclass_extension_point():
    class SignSGD(optimizers.Optimizer):
        def _compute_update(self, group, params, grads, states, lr, iteration):
            scale = group["scale"]
            new_params = [p - lr * scale * torch.sign(g) for p, g in zip(params, grads)]
            return new_params, [{} for _ in params]

    p = torch.nn.Parameter(torch.zeros(3))
    opt = SignSGD([p], learning_rate=0.1, scale=2.0)
    p.grad = torch.tensor([-3.0, 0.0, 5.0])
    opt.step()
    assert torch.allclose(p, torch.tensor([0.2, 0.0, -0.2]))
    assert opt.get_config()["scale"] == 2.0 and opt.iterations == 1
    with pytest.raises(NotImplementedError):
        optimizers.Optimizer([p]).step()
