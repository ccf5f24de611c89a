"""The same Keras-style training on several processes, with ``torchrun``.

    torchrun --nproc_per_node=2 examples/ddp.py [--epochs N] [--batch-size B] [--fsdp]
             [--checkpoint model.pt] [--quick]

Nothing in the training code is specific to distribution: ``fit`` finds the
process group, wraps the model in ``DistributedDataParallel`` for the train
step, gives each process its share of the arrays and reports logs combined
over all processes. ``batch_size`` is per process (as in torch DDP): with 2
processes and ``--batch-size 32`` each optimizer step sees 64 samples. Only
rank 0 prints the progress bar and writes the checkpoint, which is a plain
``state_dict`` (no ``module.`` prefix) that loads into the model without
torchfit. It also runs as a single process: ``python examples/ddp.py``.
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch import nn

import torchfit
from torchfit import distributed


class MLP(torchfit.KerasStyleModule, nn.Module):
    """A small classifier for 20 features and 3 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def make_data(samples: int, seed: int = 0):
    """Three Gaussian blobs in 20 dimensions (the same on every process)."""
    centers = np.random.default_rng(1234).normal(scale=2.0, size=(3, 20))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, size=samples)
    x = centers[y] + rng.normal(size=(samples, 20))
    return x.astype("float32"), y.astype("int64")


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="per process")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--fsdp", action="store_true", help="shard the model with FSDP")
    parser.add_argument("--checkpoint", default=None, help="where rank 0 saves the weights")
    parser.add_argument("--verbose", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 epochs on 600 samples")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.samples = 2, 600

    distributed.initialize()  # under torchrun: gloo on CPU, nccl on CUDA; else nothing
    if args.fsdp:
        distributed.set_distribution(distributed.FSDP())

    torch.manual_seed(0)  # fit() starts every process from rank 0's weights anyway
    model = MLP().to(distributed.device())
    model.compile(optimizer="adam", loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x, y = make_data(args.samples)
    x_test, y_test = make_data(500, seed=1)

    history = model.fit(
        x, y, batch_size=args.batch_size, epochs=args.epochs, validation_split=0.2,
        verbose=args.verbose if distributed.is_main_process() else 0,
        callbacks=[torchfit.callbacks.EarlyStopping(monitor="val_loss", patience=2)],
    )
    loss, accuracy = model.evaluate(x_test, y_test, batch_size=args.batch_size, verbose=0)
    probabilities = model.predict(x_test, batch_size=args.batch_size, verbose=0)

    state = distributed.full_state_dict(model)  # a collective under FSDP: every rank calls it
    if args.checkpoint and distributed.is_main_process():
        torch.save(state, args.checkpoint)
    if distributed.is_main_process():
        print(f"processes: {distributed.world_size()}  epochs run: {len(history.epoch)}  "
              f"test loss: {loss:.4f}  test accuracy: {accuracy:.4f}  "
              f"predictions: {probabilities.shape[0]} rows", flush=True)
    return {"history": history.history, "loss": loss, "accuracy": accuracy,
            "rows": int(probabilities.shape[0])}


if __name__ == "__main__":
    main()
    distributed.shutdown()  # after main(): the model and its DDP wrapper are gone
