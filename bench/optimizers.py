"""One optimizer step of every torchfit optimizer against its torch reference.

Model: ``--layers`` x ``nn.Linear(--width, --width)`` (default 3 x 4096 x 4096
+ bias, about 50M parameters) with random gradients. Every measurement runs in
a fresh subprocess (``--worker``); the medians and their ratios torchfit /
torch are printed:

* time of one step: each of ``--repeats`` processes holds both optimizers (on
  two copies of the model) and steps them alternately ``--steps`` times after
  a first step each, so that load from other processes on a shared machine
  hits both sides alike; the median over all of them;
* peak memory growth of the first step (state created + temporaries) and of a
  later step (temporaries only), each side alone in its own process:
  resident set growth on CPU, with glibc's ``MALLOC_MMAP_THRESHOLD_`` pinned
  so freed tensors leave the resident set (peak reset through
  ``/proc/self/clear_refs``), or ``torch.cuda.max_memory_allocated`` growth on
  CUDA.

The reference is torch's foreach optimizer for the same algorithm where torch
has one (for Adagrad, Adadelta, Adamax, NAdam and RMSprop torch's variant
differs from Keras's in epsilon placement or initial values, not in the kernels
needed), otherwise a hand-written ``torch._foreach_*`` version of the Keras
rule below (Lion, Lamb, Ftrl, ScheduleFreeAdamW, Muon; Muon's Newton-Schulz
iteration is matrix products, so run it at a smaller ``--width`` on CPU).
Keras's options are measured on Adam against their idiomatic torch equivalent
(``clip_grad_norm_``, ``GradScaler``...).
``--fit`` instead times ``fit(optimizer="adam")`` against a hand-written loop
with ``torch.optim.Adam`` on the same model.

    python bench/optimizers.py [--repeats 3] [--only adam,sgd] [--device cpu|cuda]
        [--threads 2] [--width 4096] [--layers 3] [--fit] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch
from torch import nn

import torchfit
import torchfit.optimizers as topt

LR = 1e-3


# ----------------------------------------------------------------------------- references
class KerasRuleReference(torch.optim.Optimizer):
    """Hand-written foreach versions of Keras rules torch does not ship."""

    def __init__(self, params: Any, rule: str, **hyper: Any) -> None:
        super().__init__(params, {"lr": LR, **hyper})
        self.rule = rule
        self.iterations = 0

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            grads = [p.grad for p in params]
            getattr(self, "_" + self.rule)(group, params, grads, [self.state[p] for p in params])
        self.iterations += 1

    def _buffers(self, states: List[Dict[str, Any]], params: List[torch.Tensor], key: str,
                 fill: float = 0.0) -> List[torch.Tensor]:
        for state, p in zip(states, params):
            if key not in state:
                state[key] = torch.full_like(p, fill)
        return [s[key] for s in states]

    def _lion(self, group: Dict[str, Any], params: List[torch.Tensor], grads: List[torch.Tensor],
              states: List[Dict[str, Any]]) -> None:
        m = self._buffers(states, params, "m")
        c = torch._foreach_lerp(m, grads, 0.1)
        torch._foreach_sign_(c)
        torch._foreach_add_(params, c, alpha=-group["lr"])
        del c
        torch._foreach_lerp_(m, grads, 0.01)

    def _lamb(self, group: Dict[str, Any], params: List[torch.Tensor], grads: List[torch.Tensor],
              states: List[Dict[str, Any]]) -> None:
        m, v = self._buffers(states, params, "m"), self._buffers(states, params, "v")
        t = self.iterations + 1
        torch._foreach_lerp_(m, grads, 0.1)
        torch._foreach_mul_(v, 0.999)
        torch._foreach_addcmul_(v, grads, grads, value=0.001)
        r = torch._foreach_div(v, 1 - 0.999**t)
        torch._foreach_sqrt_(r)
        torch._foreach_add_(r, 1e-7)
        torch._foreach_reciprocal_(r)
        torch._foreach_mul_(r, m)
        torch._foreach_div_(r, 1 - 0.9**t)
        ratios = [w / u for w, u in zip(torch._foreach_norm(params), torch._foreach_norm(r))]
        torch._foreach_mul_(r, ratios)
        torch._foreach_add_(params, r, alpha=-group["lr"])

    def _ftrl(self, group: Dict[str, Any], params: List[torch.Tensor], grads: List[torch.Tensor],
              states: List[Dict[str, Any]]) -> None:
        n = self._buffers(states, params, "n", 0.1)
        z = self._buffers(states, params, "z")
        lr = group["lr"]
        old = torch._foreach_sqrt(n)
        torch._foreach_addcmul_(n, grads, grads)
        new = torch._foreach_sqrt(n)
        torch._foreach_add_(z, grads)
        torch._foreach_neg_(old)
        torch._foreach_add_(old, new)
        torch._foreach_div_(old, lr)
        torch._foreach_mul_(old, params)
        torch._foreach_sub_(z, old)
        torch._foreach_div_(new, lr)
        torch._foreach_clamp_min_(old, 0.0)  # reuse: clip(z, -l1, l1) with l1 = 0
        torch._foreach_mul_(old, 0.0)
        torch._foreach_sub_(old, z)
        torch._foreach_div_(old, new)
        torch._foreach_copy_(params, old)

    def _schedule_free_adamw(self, group: Dict[str, Any], params: List[torch.Tensor],
                             grads: List[torch.Tensor], states: List[Dict[str, Any]]) -> None:
        """Keras's ScheduleFreeAdamW (lr 0.0025, no warmup): ``y`` in the
        parameters, ``z`` and ``v`` as state, one temporary."""
        t, lr = self.iterations + 1, 0.0025
        if not states[0]:
            for state, p in zip(states, params):
                state["z"] = p.detach().clone()
        z, v = [s["z"] for s in states], self._buffers(states, params, "v")
        torch._foreach_mul_(v, 0.999)
        torch._foreach_addcmul_(v, grads, grads, value=0.001)
        d = torch._foreach_div(v, 1 - 0.999**t)
        torch._foreach_sqrt_(d)
        torch._foreach_add_(d, 1e-8)
        torch._foreach_add_(params, z, alpha=-0.1)  # x = (y - 0.1 z) / 0.9
        torch._foreach_div_(params, 0.9)
        torch._foreach_addcdiv_(z, grads, d, value=-lr)
        del d
        torch._foreach_lerp_(params, z, 1.0 / t)
        torch._foreach_mul_(params, 0.9)
        torch._foreach_add_(params, z, alpha=0.1)

    def _muon(self, group: Dict[str, Any], params: List[torch.Tensor], grads: List[torch.Tensor],
              states: List[Dict[str, Any]]) -> None:
        """Keras's Muon defaults: decay 0.004; matrices take nesterov momentum
        0.95, 5 quintic Newton-Schulz iterations (``addmm``, as torch's Muon)
        and rms_rate 0.2; the rest an AdamW step."""
        lr = group["lr"]
        torch._foreach_mul_(params, 1 - 0.004 * lr)
        matrices = [i for i, p in enumerate(params) if p.ndim == 2]
        rest = [i for i, p in enumerate(params) if p.ndim != 2]
        mp, mg = [params[i] for i in matrices], [grads[i] for i in matrices]
        m = self._buffers([states[i] for i in matrices], mp, "m")
        torch._foreach_mul_(m, 0.95)
        torch._foreach_add_(m, mg)
        for p, g, b in zip(mp, mg, m):
            x = torch.add(g, b, alpha=0.95)
            tall = x.shape[0] > x.shape[1]
            x = x.T if tall else x
            x = x / (torch.linalg.vector_norm(x) + 1e-7)
            for _ in range(5):
                a = x @ x.T
                x = torch.addmm(x, torch.addmm(a, a, a, beta=-4.7750, alpha=2.0315), x, beta=3.4445)
            p.add_(x.T if tall else x, alpha=-lr * math.sqrt(max(p.shape)) * 0.2)
        self._adam([params[i] for i in rest], [grads[i] for i in rest], [states[i] for i in rest], lr)

    def _adam(self, params: List[torch.Tensor], grads: List[torch.Tensor],
              states: List[Dict[str, Any]], lr: float) -> None:
        """Keras's Adam rule (epsilon outside the root), betas 0.9/0.999."""
        m, v = self._buffers(states, params, "m"), self._buffers(states, params, "v")
        t = self.iterations + 1
        torch._foreach_lerp_(m, grads, 0.1)
        torch._foreach_mul_(v, 0.999)
        torch._foreach_addcmul_(v, grads, grads, value=0.001)
        d = torch._foreach_sqrt(v)
        torch._foreach_add_(d, 1e-7)
        torch._foreach_addcdiv_(params, m, d, value=-lr * math.sqrt(1 - 0.999**t) / (1 - 0.9**t))

    def _accumulate(self, group: Dict[str, Any], params: List[torch.Tensor],
                    grads: List[torch.Tensor], states: List[Dict[str, Any]]) -> None:
        """Keras's gradient accumulation (2 micro-steps) around torch's Adam."""
        acc = self._buffers(states, params, "acc")
        torch._foreach_add_(acc, grads)
        if self.iterations % 2 == 1:
            torch._foreach_div_(acc, 2)
            saved = [p.grad for p in params]
            for p, a in zip(params, acc):
                p.grad = a
            group["adam"].step()
            for p, g in zip(params, saved):
                p.grad = g
            torch._foreach_zero_(acc)


def _per_tensor_clipnorm(params: Sequence[torch.Tensor], clipnorm: float) -> None:
    grads = [p.grad for p in params]
    norms = torch._foreach_norm(grads)
    torch._foreach_mul_(grads, clipnorm)
    torch._foreach_div_(grads, [torch.clamp_min(n, clipnorm) for n in norms])


def _torch_adam(params: List[torch.Tensor], **kwargs: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=LR, eps=1e-7, foreach=True, **kwargs)


def _with_hook(optimizer: torch.optim.Optimizer, before: Callable[[], None] = lambda: None,
               after: Callable[[], None] = lambda: None) -> Callable[[], None]:
    def step() -> None:
        before()
        optimizer.step()
        after()
    step.optimizer = optimizer  # type: ignore[attr-defined]
    return step


def _ema_after(params: List[torch.Tensor]) -> Callable[[], None]:
    averages: List[torch.Tensor] = []

    def update() -> None:
        if not averages:
            averages.extend(p.detach().clone() for p in params)
        else:
            torch._foreach_lerp_(averages, params, 0.01)
    return update


def _scaled_step(optimizer: torch.optim.Optimizer, device: str) -> Callable[[], None]:
    scaler = torch.amp.GradScaler(device)
    scaler.scale(torch.ones((), device=device))  # creates the scale, as a scaled loss would

    def step() -> None:
        scaler.step(optimizer)
        scaler.update()
    step.optimizer = optimizer  # type: ignore[attr-defined]
    return step


def _schedule() -> Any:
    return topt.schedules.ExponentialDecay(LR, 100, 0.9)


def _scheduled(optimizer: torch.optim.Optimizer) -> Callable[[], None]:
    """What a hand-written loop does with a Keras schedule: set ``lr``, step."""
    schedule, count = _schedule(), [0]

    def step() -> None:
        value = float(schedule(count[0]))
        count[0] += 1
        for group in optimizer.param_groups:
            group["lr"] = value
        optimizer.step()
    step.optimizer = optimizer  # type: ignore[attr-defined]
    return step


#: name -> (torch reference builder, torchfit builder, micro-steps per update).
Builder = Callable[[List[torch.Tensor], str], Callable[[], None]]
CASES: Dict[str, Tuple[Builder, Builder, int]] = {
    "adam": (lambda p, d: _with_hook(_torch_adam(p)),
             lambda p, d: _with_hook(topt.Adam(p)), 1),
    "adamw": (lambda p, d: _with_hook(torch.optim.AdamW(p, lr=LR, eps=1e-7, weight_decay=0.004, foreach=True)),
              lambda p, d: _with_hook(topt.AdamW(p)), 1),
    "adam_amsgrad": (lambda p, d: _with_hook(_torch_adam(p, amsgrad=True)),
                     lambda p, d: _with_hook(topt.Adam(p, amsgrad=True)), 1),
    "sgd": (lambda p, d: _with_hook(torch.optim.SGD(p, lr=0.01, foreach=True)),
            lambda p, d: _with_hook(topt.SGD(p)), 1),
    "sgd_momentum": (lambda p, d: _with_hook(torch.optim.SGD(p, lr=0.01, momentum=0.9, foreach=True)),
                     lambda p, d: _with_hook(topt.SGD(p, momentum=0.9)), 1),
    "sgd_nesterov": (lambda p, d: _with_hook(torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True,
                                                             foreach=True)),
                     lambda p, d: _with_hook(topt.SGD(p, momentum=0.9, nesterov=True)), 1),
    "rmsprop": (lambda p, d: _with_hook(torch.optim.RMSprop(p, lr=LR, alpha=0.9, eps=1e-7, foreach=True)),
                lambda p, d: _with_hook(topt.RMSprop(p)), 1),
    "rmsprop_centered_momentum": (
        lambda p, d: _with_hook(torch.optim.RMSprop(p, lr=LR, alpha=0.9, eps=1e-7, momentum=0.5,
                                                    centered=True, foreach=True)),
        lambda p, d: _with_hook(topt.RMSprop(p, momentum=0.5, centered=True)), 1),
    "adagrad": (lambda p, d: _with_hook(torch.optim.Adagrad(p, lr=LR, initial_accumulator_value=0.1,
                                                            eps=1e-7, foreach=True)),
                lambda p, d: _with_hook(topt.Adagrad(p)), 1),
    "adadelta": (lambda p, d: _with_hook(torch.optim.Adadelta(p, lr=LR, rho=0.95, eps=1e-7, foreach=True)),
                 lambda p, d: _with_hook(topt.Adadelta(p)), 1),
    "adamax": (lambda p, d: _with_hook(torch.optim.Adamax(p, lr=LR, eps=1e-7, foreach=True)),
               lambda p, d: _with_hook(topt.Adamax(p)), 1),
    "nadam": (lambda p, d: _with_hook(torch.optim.NAdam(p, lr=LR, eps=1e-7, foreach=True)),
              lambda p, d: _with_hook(topt.Nadam(p)), 1),
    "lion": (lambda p, d: _with_hook(KerasRuleReference(p, "lion")),
             lambda p, d: _with_hook(topt.Lion(p)), 1),
    "lamb": (lambda p, d: _with_hook(KerasRuleReference(p, "lamb")),
             lambda p, d: _with_hook(topt.Lamb(p)), 1),
    "ftrl": (lambda p, d: _with_hook(KerasRuleReference(p, "ftrl")),
             lambda p, d: _with_hook(topt.Ftrl(p)), 1),
    "schedule_free_adamw": (lambda p, d: _with_hook(KerasRuleReference(p, "schedule_free_adamw")),
                            lambda p, d: _with_hook(topt.ScheduleFreeAdamW(p)), 1),
    # Newton-Schulz costs 15 matrix products per matrix: run it at a smaller --width on CPU.
    "muon": (lambda p, d: _with_hook(KerasRuleReference(p, "muon")),
             lambda p, d: _with_hook(topt.Muon(p)), 1),
    "adafactor": (lambda p, d: _with_hook(torch.optim.Adafactor(p, lr=LR, foreach=True)),
                  lambda p, d: _with_hook(topt.Adafactor(p)), 1),
    # Keras's options, on Adam.
    "adam+weight_decay": (lambda p, d: _with_hook(torch.optim.AdamW(p, lr=LR, eps=1e-7, weight_decay=0.01,
                                                                    foreach=True)),
                          lambda p, d: _with_hook(topt.Adam(p, weight_decay=0.01)), 1),
    "adam+clipnorm": (lambda p, d: _with_hook(_torch_adam(p), before=lambda: _per_tensor_clipnorm(p, 1.0)),
                      lambda p, d: _with_hook(topt.Adam(p, clipnorm=1.0)), 1),
    "adam+clipvalue": (lambda p, d: _with_hook(_torch_adam(p), before=lambda: nn.utils.clip_grad_value_(
                           p, 0.01, foreach=True)),
                       lambda p, d: _with_hook(topt.Adam(p, clipvalue=0.01)), 1),
    "adam+global_clipnorm": (lambda p, d: _with_hook(_torch_adam(p), before=lambda: nn.utils.clip_grad_norm_(
                                 p, 1.0, foreach=True)),
                             lambda p, d: _with_hook(topt.Adam(p, global_clipnorm=1.0)), 1),
    "adam+use_ema": (lambda p, d: _with_hook(_torch_adam(p), after=_ema_after(p)),
                     lambda p, d: _with_hook(topt.Adam(p, use_ema=True)), 1),
    "adam+accumulation": (lambda p, d: _with_hook(KerasRuleReference(p, "accumulate", adam=_torch_adam(p))),
                          lambda p, d: _with_hook(topt.Adam(p, gradient_accumulation_steps=2)), 2),
    "adam+schedule": (lambda p, d: _scheduled(_torch_adam(p)),
                      lambda p, d: _with_hook(topt.Adam(p, learning_rate=_schedule())), 1),
    "adam+loss_scale": (lambda p, d: _scaled_step(_torch_adam(p), d),
                        lambda p, d: _scaled_step(topt.Adam(p), d), 1),
}


# ----------------------------------------------------------------------------- measuring
def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} in /proc/self/status")


def _peak_growth(run: Callable[[], None], device: str) -> int:
    """Bytes the peak memory rises above the current level while ``run`` runs."""
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        run()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak resident set (VmHWM) restarts at the current one
    before = _status("VmRSS")
    run()
    return _status("VmHWM") - before


def _model(width: int, layers: int, device: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(width, width) for _ in range(layers)]).to(device)


def _build(case: str, side: str, args: argparse.Namespace) -> Callable[[], None]:
    """A model with random gradients and one update of ``side``'s optimizer."""
    params = list(_model(args.width, args.layers, args.device).parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    reference, ours, micro = CASES[case]
    return _updater((reference if side == "torch" else ours)(params, args.device), micro)


def _timed(update: Callable[[], None], device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    update()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def memory_worker(case: str, side: str, args: argparse.Namespace) -> Dict[str, float]:
    """One side alone in a fresh process: peak growth of a first and a later update."""
    update = _build(case, side, args)
    first = _peak_growth(update, args.device)
    update()
    return {"first": first, "later": _peak_growth(update, args.device)}


def time_worker(case: str, args: argparse.Namespace) -> Dict[str, float]:
    """Both sides in one fresh process, updated alternately."""
    updates = {side: _build(case, side, args) for side in ("torch", "torchfit")}
    times: Dict[str, List[float]] = {side: [] for side in updates}
    for update in updates.values():
        update()  # state created
    for _ in range(args.steps):
        for side, update in updates.items():
            times[side].append(_timed(update, args.device))
    return {side: statistics.median(values) for side, values in times.items()}


def _updater(step: Callable[[], None], micro: int) -> Callable[[], None]:
    """One update: ``micro`` calls of ``step`` (gradient accumulation)."""
    def update() -> None:
        for _ in range(micro):
            step()
    return update


def fit_worker(args: argparse.Namespace) -> Dict[str, float]:
    """Seconds per step of a hand-written loop with ``torch.optim.Adam`` and of
    ``fit(optimizer="adam")``, epochs alternately, in one process."""
    torch.manual_seed(0)
    batches = args.fit_steps
    x = torch.randn(batches * 32, args.width)
    y = torch.randn(batches * 32, args.width)
    net = _model(args.width, args.layers, args.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR, eps=1e-7, foreach=True)
    loss_fn = nn.MSELoss()
    model = _keras_model(args)
    model.compile(optimizer="adam", loss="mse")

    def hand_written() -> None:
        for i in range(batches):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[i * 32:(i + 1) * 32]), y[i * 32:(i + 1) * 32])
            loss.backward()
            optimizer.step()
            float(loss.detach())

    def with_fit() -> None:
        model.fit(x.numpy(), y.numpy(), batch_size=32, epochs=1, shuffle=False, verbose=0)

    epochs = {"torch": hand_written, "torchfit": with_fit}
    times: Dict[str, List[float]] = {side: [] for side in epochs}
    for epoch in epochs.values():
        epoch()  # warm up: state created
    for _ in range(args.steps):
        for side, epoch in epochs.items():
            times[side].append(_timed(epoch, args.device) / batches)
    return {side: statistics.median(values) for side, values in times.items()}


def _keras_model(args: argparse.Namespace) -> Any:
    class Net(torchfit.KerasStyleModule, nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _model(args.width, args.layers, args.device)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)
    torch.manual_seed(0)
    return Net()


# ----------------------------------------------------------------------------- driving
def _spawn(case: str, side: str, args: argparse.Namespace) -> Dict[str, float]:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    command = [sys.executable, __file__, "--worker", case, "--side", side, "--device", args.device,
               "--threads", str(args.threads), "--width", str(args.width), "--layers", str(args.layers),
               "--steps", str(args.steps), "--fit-steps", str(args.fit_steps)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{case}/{side} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure(case: str, args: argparse.Namespace) -> str:
    """One table row: paired times over ``--repeats`` processes; memory of
    each side alone (not affected by load, measured once)."""
    pairs = [_spawn(case, "pair", args) for _ in range(args.repeats)]
    t = statistics.median(p["torch"] for p in pairs)
    f = statistics.median(p["torchfit"] for p in pairs)
    if case == "fit":
        return f"| fit(optimizer='adam') vs hand-written loop | {t * 1e3:.1f} | {f * 1e3:.1f} | {f / t:.3f} | - | - | - |"
    memory = {side: _spawn(case, side, args) for side in ("torch", "torchfit")}
    mt, mf = memory["torch"], memory["torchfit"]
    memory_ratio = mf["later"] / mt["later"] if mt["later"] > 0 else math.nan
    return (f"| {case} | {t * 1e3:.1f} | {f * 1e3:.1f} | {f / t:.3f} "
            f"| {_mib(mt['first'])} / {_mib(mt['later'])} | {_mib(mf['first'])} / {_mib(mf['later'])} "
            f"| {memory_ratio:.2f} |")


def _mib(value: float) -> str:
    return f"{value / 2**20:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5, help="timed updates per side and process")
    parser.add_argument("--only", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--fit", action="store_true", help="time fit(optimizer='adam') instead")
    parser.add_argument("--fit-steps", type=int, default=4)
    parser.add_argument("--markdown", default="", help="append the table to this file")
    parser.add_argument("--worker", default="", help=argparse.SUPPRESS)
    parser.add_argument("--side", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        torch.set_num_threads(args.threads)
        torch.set_flush_denormal(True)
        if args.worker == "fit":
            result = fit_worker(args)
        elif args.side == "pair":
            result = time_worker(args.worker, args)
        else:
            result = memory_worker(args.worker, args.side, args)
        print(json.dumps(result))
        return
    cases = ["fit"] if args.fit else ([c for c in args.only.split(",") if c] or list(CASES))
    unknown = sorted(set(cases) - set(CASES) - {"fit"})
    if unknown:
        parser.error(f"--only: unknown cases {unknown}; expected some of {sorted(CASES)}")
    n = sum(p.numel() for p in _model(args.width, args.layers, "cpu").parameters())
    header = (f"model: {args.layers} x Linear({args.width}, {args.width}), {n / 1e6:.1f}M parameters; "
              f"{args.device}, {args.threads} threads; torch {torch.__version__}; "
              f"{platform.machine()}, {os.cpu_count()} cores; times: medians of {args.steps} alternated "
              f"updates x {args.repeats} fresh processes")
    lines = [header, "",
             "| case | torch ms | torchfit ms | time ratio | torch peak first/later MiB "
             "| torchfit peak first/later MiB | later-step memory ratio |",
             "|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for case in cases:
        line = _measure(case, args)
        lines.append(line)
        print(line, flush=True)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("\n")
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
