"""A model with three named outputs: per-output losses, ``loss_weights`` and metrics.

One shared convolutional trunk on scikit-learn's bundled digits (no download) and
three heads, returned as a dict (its keys name the outputs, as layer names do in
Keras):

- ``digit``: 10 logits, sparse categorical crossentropy, accuracy;
- ``parity``: the probability that the digit is odd (sigmoid), binary
  crossentropy, accuracy (resolved to binary accuracy by the output's shape);
- ``ink``: how much of the image is inked (a regression target), mean squared
  error, mean absolute error.

``compile`` takes a dict of losses, ``loss_weights`` and a dict of metric lists
keyed like the outputs; ``y`` is a dict with the same keys. The logs follow
Keras's names: ``loss`` (the weighted total), ``digit_loss``,
``digit_accuracy``, ``parity_loss``, ..., and ``val_`` versions of each.
A model that returns a tuple or list instead would name its outputs with a
class attribute ``output_names = [...]``.

    python examples/multi_output.py [--epochs 10] [--quick]
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch import nn

import torchfit
from digits import load_digits_split


class DigitHeads(torchfit.KerasStyleModule, nn.Module):
    """A shared conv trunk with three heads, returned as a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # 8x8 -> 4x4
            nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(),
        )
        self.digit = nn.Linear(64, 10)
        self.parity = nn.Linear(64, 1)
        self.ink = nn.Linear(64, 1)

    def forward(self, image: torch.Tensor) -> Dict[str, torch.Tensor]:
        features = self.trunk(image)
        return {
            "digit": self.digit(features),                    # logits
            "parity": torch.sigmoid(self.parity(features)),   # probability of "odd"
            "ink": self.ink(features),                        # regression
        }


def targets(images: np.ndarray, labels: np.ndarray) -> Dict[str, np.ndarray]:
    """The three targets, keyed like the model's outputs."""
    return {
        "digit": labels,
        "parity": (labels % 2).astype("float32")[:, None],
        "ink": (images > 0.5).mean(axis=(1, 2, 3)).astype("float32")[:, None] * 10.0,
    }


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 epochs (smoke test)")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    (x_train, labels_train), (x_test, labels_test) = load_digits_split()
    y_train, y_test = targets(x_train, labels_train), targets(x_test, labels_test)

    model = DigitHeads()
    model.compile(
        optimizer=torchfit.optimizers.Adam(learning_rate=2e-3),
        loss={
            "digit": torchfit.losses.SparseCategoricalCrossentropy(from_logits=True),
            "parity": "binary_crossentropy",
            "ink": "mse",
        },
        loss_weights={"digit": 1.0, "parity": 0.5, "ink": 0.2},
        metrics={"digit": ["accuracy"], "parity": ["accuracy"], "ink": ["mae"]},
    )
    epochs = 3 if args.quick else args.epochs
    history = model.fit(x_train, y_train, batch_size=32, epochs=epochs,
                        validation_split=0.1, verbose=args.verbose)

    results = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    predictions = model.predict(x_test[:5], verbose=0)  # a dict of NumPy arrays

    print("log names:", sorted(history.history))
    print("evaluate order (metrics_names):", model.metrics_names)
    for output in ("digit", "parity", "ink"):
        shown = {k: round(v, 4) for k, v in results.items() if k.startswith(output)}
        print(f"test {output}: {shown}")
    print(f"weighted total test loss: {results['loss']:.4f}")
    print("first predictions: digit", predictions["digit"].argmax(-1).tolist(),
          "odd", (predictions["parity"][:, 0] > 0.5).astype(int).tolist(),
          "labels", labels_test[:5].tolist())
    return {"test": results, "history": history.history, "metrics_names": model.metrics_names}


if __name__ == "__main__":
    main()
