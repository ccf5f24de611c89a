"""Muon and ScheduleFreeAdamW update in place (issue 17) with the numbers of
their previous pure rules.

The oracles below are the pure (``_compute_update``) rules the two optimizers
had before, written per tensor with plain torch ops; the base class runs them
through its pure path (everything computed, then copied in), so every Keras
option (decay, clipping, EMA, accumulation, schedules) goes through the same
pipeline on both sides.
"""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from test_optimizers_inplace import _MEMORY_SCRIPT, _PARAM_BYTES, _SLACK

import torchfit.optimizers as topt
from torchfit.optimizers.base import Optimizer
from torchfit.optimizers.muon import newton_schulz


def _as_float32(value: float) -> float:
    return float(torch.tensor(value, dtype=torch.float32))


class PureScheduleFree(topt.ScheduleFreeAdamW):
    _update = Optimizer._update

    def _compute_update(self, group, params, grads, states, lr, iteration):
        t = iteration + 1
        b1, b2 = _as_float32(group["beta_1"]), _as_float32(group["beta_2"])
        lr = _as_float32(lr) * (min(t / group["warmup_steps"], 1.0) if group["warmup_steps"] else 1.0)
        new_params, new_states = [], []
        for y, g, s in zip(params, grads, states):
            v = s["velocity"] * b2 + (1 - b2) * g * g
            z = s["momentum"] - lr * g / (torch.sqrt(v / (1 - b2**t)) + group["epsilon"])
            x = (y - (1 - b1) * s["momentum"]) / b1
            x = x + (z - x) / t
            new_params.append(b1 * x + (1 - b1) * z)
            new_states.append({"momentum": z, "velocity": v})
        return new_params, new_states


class PureMuon(topt.Muon):
    _update = Optimizer._update

    def _compute_update(self, group, params, grads, states, lr, iteration):
        t = iteration + 1
        new_params, new_states = [], []
        for p, g, s in zip(params, grads, states):
            if group["use_adamw"]:
                b1, b2 = _as_float32(group["adam_beta_1"]), _as_float32(group["adam_beta_2"])
                alpha = _as_float32(lr * group["adam_lr_ratio"]) * math.sqrt(1 - b2**t) / (1 - b1**t)
                m = s["momentum"] + (g - s["momentum"]) * (1 - group["adam_beta_1"])
                v = s["velocity"] * group["adam_beta_2"] + (1 - group["adam_beta_2"]) * g * g
                new_params.append(p - alpha * m / (torch.sqrt(v) + group["epsilon"]))
                new_states.append({"momentum": m, "velocity": v})
                continue
            m = s["momentum"] * group["momentum"] + g
            direction = g + group["momentum"] * m if group["nesterov"] else m
            update = lr * newton_schulz(direction, group["ns_steps"], group["muon_a"],
                                        group["muon_b"], group["muon_c"])
            if group["rms_rate"] is not None:
                update = update * math.sqrt(max(p.shape)) * group["rms_rate"]
            new_params.append(p - update)
            new_states.append({"momentum": m})
        return new_params, new_states


OPTIONS = [
    {},
    {"weight_decay": 0.05},
    {"clipnorm": 0.5},
    {"global_clipnorm": 0.5},
    {"clipvalue": 0.01},
    {"use_ema": True, "ema_overwrite_frequency": 2},
    {"gradient_accumulation_steps": 2},
    {"loss_scale_factor": 4.0},
    {"learning_rate": topt.schedules.ExponentialDecay(0.01, 2, 0.5)},
]
PAIRS = {
    "schedule_free": (topt.ScheduleFreeAdamW, PureScheduleFree, [{}, {"warmup_steps": 3}]),
    "muon": (topt.Muon, PureMuon, [{}, {"nesterov": False}, {"rms_rate": None}]),
}


def _parameters(seed):
    torch.manual_seed(seed)
    shapes = [(7, 5), (5, 9), (9,), (3, 2, 2)]
    return [torch.nn.Parameter(torch.randn(*s)) for s in shapes]


def _run(cls, options, seed, steps=5):
    params = _parameters(seed)
    opt = cls(params, **options)
    for k in range(steps):
        torch.manual_seed(1000 * seed + k)
        for p in params:
            p.grad = torch.randn_like(p)
        opt.step()
    return params, opt


def _state_tensors(opt):
    return {(i, k): v.clone() for i, p in enumerate(p for g in opt.param_groups for p in g["params"])
            for k, v in opt.state[p].items() if isinstance(v, torch.Tensor)}


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_in_place_equals_pure_rule(name, options):
    fast, pure, variants = PAIRS[name]
    for seed, variant in enumerate(variants):
        kwargs = {**options, **variant}
        got, got_opt = _run(fast, kwargs, seed)
        want, want_opt = _run(pure, kwargs, seed)
        assert fast._updates_in_place and not pure(None)._updates_in_place
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        got_state, want_state = _state_tensors(got_opt), _state_tensors(want_opt)
        assert got_state.keys() == want_state.keys()
        for key in got_state:
            torch.testing.assert_close(got_state[key], want_state[key], rtol=1e-5, atol=1e-6)
        assert got_opt.iterations == want_opt.iterations


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_failing_step_leaves_everything_bitwise_unchanged(name):
    params, opt = _run(PAIRS[name][0], {"weight_decay": 0.1}, seed=3, steps=2)
    before_params = [p.detach().clone() for p in params]
    before_state = _state_tensors(opt)
    grads = [torch.randn_like(p) for p in params]
    grads[-1] = torch.randn(2, 2)  # wrong shape, on the last group: checked before any write
    with pytest.raises(ValueError):
        opt.apply(grads, params)
    for p, b in zip(params, before_params):
        assert torch.equal(p, b)
    after = _state_tensors(opt)
    assert after.keys() == before_state.keys()
    assert all(torch.equal(after[k], before_state[k]) for k in after)
    assert opt.iterations == 2


def test_muon_group_of_vectors_without_adamw_fails_before_writing():
    matrix = torch.nn.Parameter(torch.randn(4, 3))
    vector = torch.nn.Parameter(torch.randn(5))
    opt = topt.Muon([matrix])
    opt.add_param_group({"params": [vector], "use_adamw": False})
    before = (matrix.detach().clone(), vector.detach().clone())
    matrix.grad, vector.grad = torch.randn(4, 3), torch.randn(5)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        opt.step()
    assert torch.equal(matrix, before[0]) and torch.equal(vector, before[1])
    assert opt.iterations == 0 and not any(opt.state[p] for p in (matrix, vector))


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_grad_is_never_written(name):
    params = _parameters(5)
    opt = PAIRS[name][0](params)
    grads = [torch.randn_like(p) for p in params]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    opt.step()
    assert all(torch.equal(p.grad, g) for p, g in zip(params, grads))


# --------------------------------------------------------------------------
# Peak memory of a step (the same measuring script as the other optimizers)
# --------------------------------------------------------------------------

MEMORY_CASES = [
    ("ScheduleFreeAdamW", {}),
    ("ScheduleFreeAdamW", {"weight_decay": 0.1, "clipnorm": 1.0}),
    ("Muon", {}),
    ("Muon", {"clipnorm": 1.0, "use_ema": True}),
]


def _memory_figures(name, kwargs):
    """One case in its own process (earlier cases in the same process shift
    the allocator's figures)."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, json.dumps([(name, kwargs)])],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])[name + json.dumps(kwargs)]


@pytest.mark.parametrize("name,kwargs", MEMORY_CASES, ids=[f"{n}{i}" for i, (n, _) in enumerate(MEMORY_CASES)])
def test_peak_memory_of_a_step(name, kwargs):
    """3 x 1024 x 1024 matrices. ScheduleFreeAdamW: one parameter-sized
    temporary (the denominator, or the clipped gradient copy and a layer's
    denominator). Muon: Newton-Schulz holds four matrices of one layer at a
    time (x, A, the polynomial, the new x; as torch's Muon), nothing across
    layers, plus the clipped gradient copy when clipping; its first step
    also allocates the matrix-product library's workspace (a layer more)."""
    figures = _memory_figures(name, kwargs)
    layer = _PARAM_BYTES // 3
    if name == "Muon":
        copy = _PARAM_BYTES if "clipnorm" in kwargs else 0
        later, first_extra = copy + 4 * layer + _SLACK, 2 * layer
    else:
        # The first clipped step measures up to two layers more than later
        # ones (not yet explained; the later steps are within the bound).
        later = _PARAM_BYTES + layer + _SLACK
        first_extra = 2 * layer if "clipnorm" in kwargs else 0
    assert figures["later"] <= later, figures
    assert figures["first"] <= figures["state"] + later + first_extra, figures
