"""Reading a large array: speed of a shuffled pass and of predict on arrays read in place.

Shuffled epochs gather their batches group by group (``GROUP_BYTES`` at a
time, not the whole epoch up front), and read-only (memory-mapped) or
Fortran-ordered arrays are copied out group by group instead of whole; this
shows what that costs per pass. Memory is bounded by tests/test_memory_bounds.py.

- ``shuffled pass``: every batch of one ``shuffle=True`` epoch, adapter only;
- ``predict <kind>``: ``model.predict`` of a one-layer model on a C-ordered,
  Fortran-ordered and memory-mapped copy of the same array.

    python bench/large_inputs.py [--rows 2000000] [--columns 32] [--batch-size 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

import torchfit
from torchfit.data import get_adapter


def best_of(repeats: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--columns", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = np.random.default_rng(0).random((args.rows, args.columns), dtype=np.float32)
    y = np.zeros((args.rows, 1), dtype=np.float32)
    print(f"{args.rows} x {args.columns} float32 ({x.nbytes / 2**20:.0f} MB), "
          f"batch size {args.batch_size}, best of {args.repeats}")
    adapter = get_adapter(x, y, batch_size=args.batch_size, shuffle=True)
    seconds = best_of(args.repeats, lambda: sum(1 for _ in adapter.get_iterator()))
    print(f"shuffled pass      {seconds:7.3f} s")
    model = torchfit.keras_style(nn.Sequential(nn.Linear(args.columns, 1)))
    model.compile(optimizer="sgd", loss="mse")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "x.npy")
        np.save(path, x)
        for kind, data in (("C-ordered", x), ("Fortran-ordered", np.asfortranarray(x)),
                           ("memory-mapped", np.load(path, mmap_mode="r"))):
            seconds = best_of(args.repeats, lambda: model.predict(data, batch_size=1024, verbose=0))
            print(f"predict {kind:<15} {seconds:7.3f} s")
            del data


if __name__ == "__main__":
    main()
