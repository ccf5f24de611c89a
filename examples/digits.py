"""Train a small CNN on scikit-learn's bundled digits (no download) with torchfit.

The model is a plain ``nn.Module`` with the ``KerasStyleModule`` mixin; the
rest is Keras's API: compile, fit with validation_split and a progress bar,
summary, evaluate on a held-out split, predict. The history is saved as CSV and
its curves as a PNG next to it (``History.plot``, with matplotlib installed).

    python examples/digits.py [--epochs N] [--history digits_history.csv] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import os

import numpy as np
import torch
from torch import nn

import torchfit


class DigitsCNN(torchfit.KerasStyleModule, nn.Module):
    """Two 3x3 conv blocks and a linear classifier for 8x8 grey digits."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Dropout(0.25),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(), nn.Dropout(0.3),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def load_digits_split(test_fraction: float = 0.2, seed: int = 0):
    """Digits scaled to [0, 1] as (N, 1, 8, 8) float32, split into train/test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[:, None, :, :]
    y = digits.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(len(x) * (1 - test_fraction))
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def save_history_csv(history: torchfit.History, path: str) -> None:
    keys = list(history.history)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["epoch"] + keys)
        for row, epoch in enumerate(history.epoch):
            writer.writerow([epoch] + [history.history[k][row] for k in keys])


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--history", default="digits_history.csv")
    parser.add_argument("--verbose", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2 epochs (smoke test)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    (x_train, y_train), (x_test, y_test) = load_digits_split()
    model = DigitsCNN()
    model.compile(
        optimizer=torchfit.optimizers.Adam(learning_rate=2e-3),
        loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    epochs = 2 if args.quick else args.epochs
    history = model.fit(
        x_train, y_train, batch_size=32, epochs=epochs,
        validation_split=0.1, verbose=args.verbose,
    )
    results = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    probabilities = model.predict(x_test[:5], verbose=0)
    predicted = probabilities.argmax(axis=-1)

    if args.verbose:
        model.summary()  # output shapes recorded from the first training batch
    save_history_csv(history, args.history)
    print(f"test loss: {results['loss']:.4f}  test accuracy: {results['accuracy']:.4f}")
    print(f"first predictions: {predicted.tolist()}  labels: {y_test[:5].tolist()}")
    print(f"history saved to {os.path.abspath(args.history)}")
    save_plot(history, os.path.splitext(args.history)[0] + ".png")
    return results


def save_plot(history: torchfit.History, path: str) -> None:
    """Save the training curves, or say how to get them without matplotlib."""
    try:
        history.plot(path)
    except ImportError as error:
        print(f"no plot saved: {error}")
        return
    print(f"training curves saved to {os.path.abspath(path)}")


if __name__ == "__main__":
    main()
