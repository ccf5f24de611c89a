"""Overhead of ``fit`` against a hand-written PyTorch loop, in one process.

Same MLP (~100k parameters), same data, batch size 64, same optimizer (Keras's
Adam from ``torchfit.optimizers`` in both, so only the loop differs). Prints
seconds per epoch for each and the ratio fit / hand-written (lower is better;
1.00 means no overhead). Runs are interleaved and the median is reported.

    python bench/overhead.py [--samples 8192] [--epochs 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn

import torchfit


class MLP(torchfit.KerasStyleModule, nn.Module):
    def __init__(self, in_dim: int = 64, hidden: int = 256, classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.net(x)


def make_data(samples: int, in_dim: int = 64, classes: int = 10):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, in_dim)).astype("float32")
    y = rng.integers(0, classes, size=samples).astype("int64")
    return x, y


def hand_written(x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = MLP()
    optimizer = torchfit.optimizers.Adam(model.parameters(), learning_rate=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        xs, ys = xt[perm], yt[perm]
        total, seen, correct = torch.zeros(()), 0, torch.zeros(())
        for i in range(0, len(xs), batch_size):
            xb, yb = xs[i:i + batch_size], ys[i:i + batch_size]
            optimizer.zero_grad(set_to_none=True)
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            optimizer.step()
            with torch.no_grad():  # the same bookkeeping fit does: mean loss and accuracy
                total += loss.detach() * len(xb)
                correct += (out.argmax(-1) == yb).sum()
                seen += len(xb)
        float(total / seen), float(correct / seen)
    return (time.perf_counter() - start) / epochs


def with_fit(x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = MLP()
    model.compile(optimizer=torchfit.optimizers.Adam(learning_rate=1e-3),
                  loss=nn.CrossEntropyLoss(), metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    x, y = make_data(args.samples)
    params = sum(p.numel() for p in MLP().parameters())
    hand_written(x, y, 1, args.batch_size), with_fit(x, y, 1, args.batch_size)  # warm up
    hand, fit = [], []
    for _ in range(args.repeats):
        hand.append(hand_written(x, y, args.epochs, args.batch_size))
        fit.append(with_fit(x, y, args.epochs, args.batch_size))
    h, f = statistics.median(hand), statistics.median(fit)
    print(f"model: MLP, {params} parameters; batch {args.batch_size}; {args.samples} samples; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"hand-written loop: {h * 1000:.1f} ms/epoch")
    print(f"torchfit fit:      {f * 1000:.1f} ms/epoch")
    print(f"ratio fit/hand-written: {f / h:.3f}")


if __name__ == "__main__":
    main()
