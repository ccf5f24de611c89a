"""Cost of each input type in ``fit``, against a hand-written loop, in one process.

The same MLP (~100k parameters), the same 8192 samples, batch size 64, the same
optimizer (Keras's Adam from ``torchfit.optimizers``) and the same bookkeeping
(mean loss and accuracy) in every variant; every epoch reshuffles the data:

- ``hand-written``: a plain PyTorch loop over ``DataLoader(TensorDataset(x, y),
  batch_size=64, shuffle=True)`` (the baseline);
- ``fit(arrays)``: ``model.fit(x_numpy, y_numpy, batch_size=64)``;
- ``fit(DataLoader)``: ``model.fit(the same DataLoader, shuffle=False)``;
- ``fit(generator)``: ``model.fit(a generator of shuffled slices, steps_per_epoch=128)``.

Prints milliseconds per epoch (median over interleaved repeats) and each
variant's ratio to the hand-written loop (1.00 = no overhead; lower is
better). Array input slices whole batches out of the tensors, so it should
cost no more than the DataLoader, which indexes and collates sample by sample.

    python bench/data.py [--samples 8192] [--epochs 3] [--repeats 5] [--batch-size 64]
                         [--threads N] [--clock wall|cpu]

``--clock cpu`` times with ``time.process_time`` (CPU seconds of this process),
steadier than wall time on a machine shared with other jobs; use it with
``--threads 1``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from typing import Callable, Dict, Iterator, List

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import torchfit
from overhead import MLP, make_data  # bench/ is on sys.path when a script there runs

# The model and data are bench/overhead.py's, so the figures compare.
clock = time.perf_counter


def loader_for(x: np.ndarray, y: np.ndarray, batch_size: int) -> DataLoader:
    return DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                      batch_size=batch_size, shuffle=True)


def hand_written(x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> float:
    torch.manual_seed(0)
    model = MLP()
    optimizer = torchfit.optimizers.Adam(model.parameters(), learning_rate=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = loader_for(x, y, batch_size)
    start = clock()
    for _ in range(epochs):
        model.train()
        total, seen, correct = torch.zeros(()), 0, torch.zeros(())
        for xb, yb in loader:
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
    return (clock() - start) / epochs


def compiled_model() -> MLP:
    torch.manual_seed(0)
    model = MLP()
    model.compile(optimizer=torchfit.optimizers.Adam(learning_rate=1e-3),
                  loss=nn.CrossEntropyLoss(), metrics=["accuracy"])
    return model


def fit_arrays(x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> float:
    model = compiled_model()
    start = clock()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return (clock() - start) / epochs


def fit_loader(x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> float:
    model = compiled_model()
    loader = loader_for(x, y, batch_size)
    start = clock()
    model.fit(loader, epochs=epochs, verbose=0, shuffle=False)
    return (clock() - start) / epochs


def shuffled_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> Iterator[tuple]:
    while True:
        order = torch.randperm(len(x))
        xs, ys = x[order], y[order]
        for i in range(0, len(xs), batch_size):
            yield xs[i:i + batch_size], ys[i:i + batch_size]


def fit_generator(x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> float:
    model = compiled_model()
    steps = -(-len(x) // batch_size)
    batches = shuffled_batches(torch.from_numpy(x), torch.from_numpy(y), batch_size)
    start = clock()
    model.fit(batches, epochs=epochs, steps_per_epoch=steps, verbose=0, shuffle=False)
    return (clock() - start) / epochs


VARIANTS: Dict[str, Callable[[np.ndarray, np.ndarray, int, int], float]] = {
    "hand-written (DataLoader)": hand_written,
    "fit(arrays)": fit_arrays,
    "fit(DataLoader)": fit_loader,
    "fit(generator)": fit_generator,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    x, y = make_data(args.samples)
    for run in VARIANTS.values():  # warm up
        run(x, y, 1, args.batch_size)
    times: Dict[str, List[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeats):  # interleaved, so drift hits every variant alike
        for name, run in VARIANTS.items():
            times[name].append(run(x, y, args.epochs, args.batch_size))
    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["hand-written (DataLoader)"]
    params = sum(p.numel() for p in MLP().parameters())
    print(f"model: MLP, {params} parameters; batch {args.batch_size}; {args.samples} samples; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"median of {args.repeats} x {args.epochs} epochs; {args.clock} clock")
    for name, value in median.items():
        print(f"{name:<27} {value * 1000:8.1f} ms/epoch   ratio to hand-written {value / base:.3f}")
    print(f"fit(arrays) / fit(DataLoader): {median['fit(arrays)'] / median['fit(DataLoader)']:.3f}")


if __name__ == "__main__":
    main()
