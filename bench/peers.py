"""torchfit against a hand-written loop and against peers, in one process.

Same MLP (64-256-256-10), same data, batch size, optimizer (Adam, Keras
numbers) and epochs. Each contender runs ``--repeats`` times interleaved; the
median seconds per epoch are printed with the ratio to the hand-written loop.
Peers run when installed: Keras 3 on the torch backend (``keras``), and
Poutyne/skorch/Lightning if present. A contender that is not installed is
reported as skipped.

    python bench/peers.py [--samples 8192] [--epochs 2] [--repeats 3] [--device cpu|cuda]
        [--jit] [--amp] [--steps-per-execution N] [--markdown bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Callable, Dict, Optional

import numpy as np
import torch
from torch import nn

import torchfit

os.environ.setdefault("KERAS_BACKEND", "torch")


class MLP(torchfit.KerasStyleModule, nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                 nn.Linear(256, 10))

    def forward(self, x):
        return self.net(x)


def data(samples: int):
    rng = np.random.default_rng(0)
    return rng.normal(size=(samples, 64)).astype("float32"), rng.integers(0, 10, samples).astype("int64")


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_hand(x, y, args) -> float:
    model = MLP().to(args.device)
    optimizer = torchfit.optimizers.Adam(model.parameters(), learning_rate=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x).to(args.device), torch.from_numpy(y).to(args.device)
    amp = args.amp and args.device == "cuda"
    scaler = torch.amp.GradScaler(enabled=amp)
    start = time.perf_counter()
    for _ in range(args.epochs):
        perm = torch.randperm(len(xt), device=args.device)
        xs, ys = xt[perm], yt[perm]
        total = torch.zeros((), device=args.device)
        correct = torch.zeros((), device=args.device)
        for i in range(0, len(xs), args.batch_size):
            xb, yb = xs[i:i + args.batch_size], ys[i:i + args.batch_size]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(args.device, dtype=torch.float16, enabled=amp):
                out = model(xb)
                loss = loss_fn(out, yb)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            with torch.no_grad():
                total += loss.detach() * len(xb)
                correct += (out.argmax(-1) == yb).sum()
        float(total), float(correct)
    sync(args.device)
    return (time.perf_counter() - start) / args.epochs


def run_torchfit(x, y, args) -> float:
    model = MLP().to(args.device)
    if args.amp:
        model.dtype_policy = "mixed_float16"
    model.compile(optimizer=torchfit.optimizers.Adam(learning_rate=1e-3), loss=nn.CrossEntropyLoss(),
                  metrics=["accuracy"], jit_compile=bool(args.jit),
                  steps_per_execution=args.steps_per_execution)
    model.fit(x[:args.batch_size * 4], y[:args.batch_size * 4], batch_size=args.batch_size, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
    sync(args.device)
    return (time.perf_counter() - start) / args.epochs


def run_keras(x, y, args) -> Optional[float]:
    try:
        import keras
    except ImportError:
        return None
    if keras.backend.backend() != "torch":
        return None
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu"),
                              keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=bool(args.jit))
    model.fit(x[:args.batch_size * 4], y[:args.batch_size * 4], batch_size=args.batch_size, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
    return (time.perf_counter() - start) / args.epochs


def run_poutyne(x, y, args) -> Optional[float]:
    try:
        import poutyne
    except ImportError:
        return None
    network = MLP().to(args.device)
    model = poutyne.Model(network, torchfit.optimizers.Adam(network.parameters(), learning_rate=1e-3),
                          nn.CrossEntropyLoss(), batch_metrics=["accuracy"], device=args.device)
    start = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=False)
    return (time.perf_counter() - start) / args.epochs


CONTENDERS: Dict[str, Callable] = {
    "hand-written loop": run_hand,
    "torchfit fit": run_torchfit,
    "keras 3 (torch backend)": run_keras,
    "poutyne": run_poutyne,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--jit", action="store_true", help="jit_compile=True for torchfit and Keras")
    parser.add_argument("--amp", action="store_true", help="mixed_float16 (CUDA)")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--markdown", help="append a results table to this file")
    args = parser.parse_args()
    x, y = data(args.samples)
    times: Dict[str, list] = {name: [] for name in CONTENDERS}
    for _ in range(args.repeats):
        for name, fn in CONTENDERS.items():
            torch.manual_seed(0)
            value = fn(x, y, args)
            if value is not None:
                times[name].append(value)
    base = statistics.median(times["hand-written loop"])
    header = (f"device {args.device} ({platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} threads), torch {torch.__version__}, batch {args.batch_size}, "
              f"{args.samples} samples, jit={args.jit}, amp={args.amp}, "
              f"steps_per_execution={args.steps_per_execution}")
    rows = []
    for name, values in times.items():
        if values:
            median = statistics.median(values)
            rows.append(f"| {name} | {median * 1000:.1f} | {median / base:.2f} |")
        else:
            rows.append(f"| {name} | not installed | - |")
    table = "\n".join([header, "", "| contender | ms/epoch | ratio to hand-written |", "|---|---|---|"] + rows)
    print(table)
    if args.markdown:
        with open(args.markdown, "a") as handle:
            handle.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
