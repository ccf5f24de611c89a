"""The in-place optimizer step (issue 17) and torch's names in param groups
(issue 18).

* Every optimizer, with every Keras option on, still matches Keras 3 step by
  step (the numbers of the previous, out-of-place implementation).
* A step that fails its checks leaves parameters, state and counters
  bitwise unchanged; Ctrl-C during the writes finishes the step first.
* Peak memory of a step (resident set growth, in a subprocess with glibc's
  ``MALLOC_MMAP_THRESHOLD_`` pinned so freed tensors leave the resident set)
  is at most the new state plus one parameter-sized temporary.
* torch's ``OneCycleLR`` cycles the ``beta_1``/``momentum`` the update uses.
"""

import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

import torchfit.optimizers as optimizers

keras = pytest.importorskip("keras")
sys.path.insert(0, os.path.dirname(__file__))
from test_optimizers import _assert_close, _make_params, _run_torchfit  # noqa: E402

SHAPES = [(6, 4), (4,), (2, 3, 5)]
STEPS = 5

#: ``(class name, rule arguments)``: every optimizer, with its variants.
RULES = [
    ("SGD", {}),
    ("SGD", {"momentum": 0.9}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("RMSprop", {}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("Adam", {}),
    ("Adam", {"amsgrad": True}),
    ("AdamW", {}),
    ("Adamax", {}),
    ("Nadam", {}),
    ("Adagrad", {}),
    ("Adadelta", {"learning_rate": 1.0}),
    ("Lion", {}),
    ("Ftrl", {"l1_regularization_strength": 0.01, "l2_regularization_strength": 0.1,
              "l2_shrinkage_regularization_strength": 0.1, "beta": 0.5}),
    ("Lamb", {}),
    ("Adafactor", {}),
]

#: Keras's options on top of every rule.
OPTIONS = {
    "plain": {},
    "weight_decay": {"weight_decay": 0.1},
    "clipnorm": {"clipnorm": 0.5},
    "clipvalue": {"clipvalue": 0.3},
    "global_clipnorm": {"global_clipnorm": 0.7},
    "use_ema": {"use_ema": True, "ema_momentum": 0.8, "ema_overwrite_frequency": 3},
    "accumulation": {"gradient_accumulation_steps": 2},
    "schedule": {"learning_rate": "schedule"},
    "loss_scale_factor": {"loss_scale_factor": 8.0},
}


def _arguments(module, rule_kwargs, option):
    kwargs = {"learning_rate": 0.05, **rule_kwargs, **OPTIONS[option]}
    if kwargs["learning_rate"] == "schedule":
        kwargs["learning_rate"] = module.schedules.ExponentialDecay(0.1, 2, 0.5)
    return kwargs


def _random_steps(seed):
    rng = np.random.default_rng(seed)
    inits = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(STEPS)]
    return inits, grads


def _keras_weights(name, kwargs, inits, grads):
    opt = getattr(keras.optimizers, name)(**kwargs)
    variables = [keras.Variable(x) for x in inits]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for step in grads:
            opt.apply_gradients([(torch.tensor(g), v) for g, v in zip(step, variables)])
    return [np.asarray(v.numpy()) for v in variables]


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("name,rule_kwargs", RULES, ids=[f"{n}{i}" for i, (n, _) in enumerate(RULES)])
def test_in_place_step_matches_keras_with_every_option(name, rule_kwargs, option):
    inits, grads = _random_steps(seed=len(name) + len(option))
    if option == "loss_scale_factor":  # torchfit divides .grad as Keras divides its grads
        scaled = [[g * 8.0 for g in step] for step in grads]
    else:
        scaled = grads
    expected = _keras_weights(name, _arguments(keras.optimizers, rule_kwargs, option), inits, scaled)
    params = _make_params(inits)
    opt = getattr(optimizers, name)(params, **_arguments(optimizers, rule_kwargs, option))
    actual = _run_torchfit(opt, params, scaled)
    _assert_close(actual, expected)


# --------------------------------------------------------------------------
# A step that fails its checks changes nothing
# --------------------------------------------------------------------------

def _everything(opt, params):
    """Parameters, state and param groups, as exact copies."""
    return copy.deepcopy(([p.detach() for p in params], opt.state_dict()))


def _assert_bitwise_equal(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_bitwise_equal(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_bitwise_equal(x, y)
    else:
        assert a == b or (a != a and b != b)


def _break_last_gradient(opt, params):
    params[-1].grad = params[-1].grad.to_sparse()
    return RuntimeError, "sparse"


def _break_learning_rate(opt, params):
    opt.param_groups[-1]["lr"] = float("nan")
    return ValueError, "learning rate"


def _break_scheduled_value(opt, params):
    """What a badly configured torch scheduler writes into the last group."""
    group = opt.param_groups[-1]
    if "betas" in group:
        group["betas"] = (1.5, group["betas"][1])
        return ValueError, "beta_1"
    if "momentum" in group:
        group["momentum"] = 2.0
        return ValueError, "momentum"
    group["lr"] = "fast"
    return ValueError, "learning rate"


@pytest.mark.parametrize("breaks", [_break_last_gradient, _break_learning_rate, _break_scheduled_value])
@pytest.mark.parametrize("option", ["plain", "clipnorm", "use_ema", "accumulation"])
@pytest.mark.parametrize("name,rule_kwargs", RULES, ids=[f"{n}{i}" for i, (n, _) in enumerate(RULES)])
def test_a_step_failing_its_checks_changes_nothing(name, rule_kwargs, option, breaks):
    inits, grads = _random_steps(seed=3)
    params = _make_params(inits)
    groups = [{"params": params[:2]}, {"params": params[2:]}]
    opt = getattr(optimizers, name)(groups, **_arguments(optimizers, rule_kwargs, option))
    _run_torchfit(opt, params, grads[:3])  # state exists; mid-accumulation with accumulation
    for p, g in zip(params, grads[3]):
        p.grad = torch.tensor(g)
    before = _everything(opt, params)
    error, match = breaks(opt, params)
    broken = copy.deepcopy(opt.param_groups[-1])
    with pytest.raises(error, match=match):
        opt.step()
    after = _everything(opt, params)
    broken.pop("params")
    for key, value in broken.items():  # the bad value itself stays where it was put
        after[1]["param_groups"][-1][key] = before[1]["param_groups"][-1][key]
    _assert_bitwise_equal(after, before)


def test_ctrl_c_during_the_writes_finishes_the_step_then_interrupts():
    inits, grads = _random_steps(seed=4)
    params, twins = _make_params(inits), _make_params(inits)

    class Interrupted(optimizers.Adam):
        def _update(self, group, *args, **kwargs):
            if group is self.param_groups[0]:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C after the first group's checks
            super()._update(group, *args, **kwargs)

    kwargs = dict(learning_rate=0.05, use_ema=True, weight_decay=0.1)
    opt = Interrupted([{"params": params[:1]}, {"params": params[1:]}], **kwargs)
    reference = optimizers.Adam([{"params": twins[:1]}, {"params": twins[1:]}], **kwargs)
    for p, t, g in zip(params, twins, grads[0]):
        p.grad, t.grad = torch.tensor(g), torch.tensor(g)
    with pytest.raises(KeyboardInterrupt):
        opt.step()
    reference.step()
    assert opt.iterations == reference.iterations == 1
    for p, t in zip(params, twins):
        assert torch.equal(p, t)
        for key, value in reference.state[t].items():
            assert torch.equal(opt.state[p][key], value), key
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --------------------------------------------------------------------------
# Peak memory of a step
# --------------------------------------------------------------------------

_MEMORY_SCRIPT = textwrap.dedent(r"""
    import json, sys
    import torch
    import torchfit.optimizers as optimizers

    torch.set_num_threads(1)

    def status(key):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024

    def peak_growth(step):
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set (VmHWM) to the current one
        before = status("VmRSS")
        step()
        return status("VmHWM") - before

    def state_bytes(opt):
        return sum(v.numel() * v.element_size() for s in opt.state.values()
                   for v in s.values() if isinstance(v, torch.Tensor))

    results = {}
    for name, kwargs in json.loads(sys.argv[1]):
        torch.manual_seed(0)
        model = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024, bias=False) for _ in range(3)])
        params = list(model.parameters())
        for p in params:
            p.grad = torch.randn_like(p)
        opt = getattr(optimizers, name)(params, **kwargs)
        steps = kwargs.get("gradient_accumulation_steps") or 1
        first = peak_growth(lambda: [opt.step() for _ in range(steps)])
        new_state = state_bytes(opt)
        later = peak_growth(lambda: [opt.step() for _ in range(steps)])
        results[name + json.dumps(kwargs)] = {"first": first, "later": later, "state": new_state}
        del opt, model, params
    print(json.dumps(results))
""")

_PARAM_BYTES = 3 * 1024 * 1024 * 4
_SLACK = 3 * 2**20  # interpreter and allocator noise

MEMORY_CASES = [(name, rule) for name, rule in RULES if name not in ("SGD",)] + [
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("Adam", {"weight_decay": 0.1, "use_ema": True}),
    ("Adam", {"clipnorm": 1.0}),
    ("AdamW", {"global_clipnorm": 1.0}),
    ("SGD", {"momentum": 0.9, "clipvalue": 0.1}),
    ("Adam", {"gradient_accumulation_steps": 2, "loss_scale_factor": 4.0}),
    ("Nadam", {"clipnorm": 1.0}),
    ("RMSprop", {"centered": True, "momentum": 0.5, "clipnorm": 1.0}),
    ("Lion", {"clipnorm": 1.0}),
    ("Ftrl", {"clipnorm": 1.0}),
    ("Lamb", {"clipnorm": 1.0}),
]


@pytest.fixture(scope="module")
def memory_figures():
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, json.dumps(MEMORY_CASES)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name,kwargs", MEMORY_CASES, ids=[f"{n}{i}" for i, (n, _) in enumerate(MEMORY_CASES)])
def test_peak_memory_of_a_step_is_state_plus_one_temporary(memory_figures, name, kwargs):
    """First step: the new state plus one parameter-sized temporary; later
    steps: one temporary (a rule that needs its gradient copy and a tensor's
    temporary (Nadam, RMSprop, Adagrad with clipping) gets one layer's size
    more, as tested by the bound on the largest tensor here)."""
    figures = memory_figures[name + json.dumps(kwargs)]
    layer = _PARAM_BYTES // 3
    bound = _PARAM_BYTES + layer + _SLACK
    assert figures["later"] <= bound, figures
    assert figures["first"] <= figures["state"] + bound, figures


# --------------------------------------------------------------------------
# torch's schedulers cycle the momentum the update uses
# --------------------------------------------------------------------------

def _one_cycle_run(name, kwargs, steps, follow_keras_names):
    """Train with OneCycleLR; with ``follow_keras_names`` a twin optimizer
    without the scheduler gets the cycled values through Keras's attributes."""
    inits, grads = _random_steps(seed=5)
    params = _make_params(inits)
    opt = getattr(optimizers, name)(params, **kwargs)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)
    twins = _make_params(inits)
    twin = getattr(optimizers, name)(twins, **kwargs)
    seen = []
    for step in range(steps):
        group = opt.param_groups[0]
        cycled = group["betas"][0] if "betas" in group else group["momentum"]
        seen.append(cycled)
        twin.learning_rate = group["lr"]
        if "betas" in group:
            twin.beta_1 = cycled
        else:
            twin.momentum = cycled
        for p, t, g in zip(params, twins, grads[step % STEPS]):
            p.grad, t.grad = torch.tensor(g), torch.tensor(g)
        opt.step()
        twin.step()
        scheduler.step()
    return params, twins, seen, opt


@pytest.mark.parametrize("name,kwargs", [
    ("Adam", {}), ("AdamW", {}), ("Adamax", {}), ("Nadam", {}), ("Lamb", {}), ("Lion", {}),
    ("SGD", {}), ("SGD", {"momentum": 0.5, "nesterov": True}), ("RMSprop", {"momentum": 0.3}),
])
def test_one_cycle_lr_cycles_the_momentum_the_update_uses(name, kwargs):
    params, twins, seen, opt = _one_cycle_run(name, kwargs, steps=8, follow_keras_names=True)
    assert len(set(seen)) > 2  # the momentum really cycled
    for p, t in zip(params, twins):
        assert torch.equal(p, t)  # ...and the update used it, step by step
    group = opt.param_groups[0]
    if "betas" in group:
        # Keras's attributes read the scheduler's last write (synced on access).
        assert (opt.beta_1, opt.beta_2) == group["betas"] == (group["beta_1"], group["beta_2"])


def test_cyclic_lr_accepts_adam_and_keras_names_stay_in_sync():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = optimizers.Adam([p])
    scheduler = torch.optim.lr_scheduler.CyclicLR(opt, base_lr=0.001, max_lr=0.01, step_size_up=2)
    p.grad = torch.ones(3)
    opt.step()
    scheduler.step()
    assert opt.beta_1 == opt.param_groups[0]["betas"][0] != 0.9
    opt.beta_1 = 0.7  # Keras's name wins when it is the one written
    assert opt.param_groups[0]["betas"] == (0.7, 0.999)
    assert opt.get_config()["beta_1"] == 0.7 and "betas" not in opt.get_config()
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))], "betas": (0.5, 0.9)})
    assert opt.param_groups[1]["beta_1"] == 0.5 and opt.param_groups[1]["beta_2"] == 0.9
    with pytest.raises(ValueError, match="beta_1"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))], "betas": (1.5, 0.9)})
