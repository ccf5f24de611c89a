"""Customizing what happens in ``fit()``: overriding ``train_step`` and ``test_step``.

The torchfit version of Keras's guide "Customizing what happens in fit()" (its
PyTorch edition). ``fit`` still does the looping, callbacks, validation and
progress bar; you write the step. In torchfit the step is plain PyTorch:
``self.optimizer`` is a ``torch.optim.Optimizer``, so a step is
``zero_grad() / forward / loss.backward() / step()``.

Two models, on bundled or generated data (no download):

1. ``ClippedClassifier`` keeps ``compile()``'s loss and metrics
   (``self.compute_loss`` / ``self.compute_metrics``) and adds what the default
   step doesn't do: clipping the global gradient norm, and logging that norm
   (measured before clipping) as a metric. It honours ``sample_weight`` / ``class_weight`` too.
2. ``LowLevelRegressor`` is compiled with an optimizer only: it computes its own
   loss, keeps its own metric objects (listed in the ``metrics`` property so
   ``fit``/``evaluate`` reset them at each epoch) and overrides ``test_step``
   as well.

Each batch arrives as ``data``; ``torchfit.data.unpack_x_y_sample_weight(data)``
splits it into ``(x, y, sample_weight)`` whatever the input type was. (Under
``torchrun``, call the model as ``torchfit.module.call_model(self, x)`` instead of
``self(x)`` so that the forward pass goes through DistributedDataParallel.)

    python examples/custom_train_step.py [--epochs 8] [--quick]
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch import nn

import torchfit
from torchfit.data import unpack_x_y_sample_weight
from digits import load_digits_split


class ClippedClassifier(torchfit.KerasStyleModule, nn.Module):
    """An MLP whose ``train_step`` clips gradients and logs their norm."""

    def __init__(self, max_grad_norm: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        self.max_grad_norm = max_grad_norm
        # A metric object is not an nn.Module: it adds nothing to state_dict().
        self.grad_norm_tracker = torchfit.metrics.Mean(name="grad_norm")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def train_step(self, data: Any) -> Dict[str, Any]:
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        self.optimizer.zero_grad()
        y_pred = self(x)                                   # forward pass
        loss = self.compute_loss(x, y, y_pred, sample_weight)  # compile()'s loss
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.parameters(), self.max_grad_norm)
        self.optimizer.step()

        for metric in self.metrics:
            if metric.name == "loss":                      # the loss tracker
                metric.update_state(loss.detach())
        self.grad_norm_tracker.update_state(norm)
        logs = self.compute_metrics(x, y, y_pred.detach(), sample_weight)  # compile()'s metrics
        return {**logs, "grad_norm": self.grad_norm_tracker.result()}

    @property
    def metrics(self) -> List[Any]:
        # Listed here, the tracker is reset at the start of every epoch.
        return super().metrics + [self.grad_norm_tracker]


class LowLevelRegressor(torchfit.KerasStyleModule, nn.Module):
    """Compiled with an optimizer only: its own loss, metrics and test step."""

    def __init__(self, features: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, 1))
        self.loss_fn = torchfit.losses.MeanSquaredError()
        self.loss_tracker = torchfit.metrics.Mean(name="loss")
        self.mae_metric = torchfit.metrics.MeanAbsoluteError(name="mae")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def train_step(self, data: Any) -> Dict[str, Any]:
        x, y, _ = unpack_x_y_sample_weight(data)
        self.optimizer.zero_grad()
        y_pred = self(x)
        loss = self.loss_fn(y, y_pred)                     # Keras order: (y_true, y_pred)
        loss.backward()
        self.optimizer.step()
        self.loss_tracker.update_state(loss.detach())
        self.mae_metric.update_state(y, y_pred.detach())
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    def test_step(self, data: Any) -> Dict[str, Any]:
        x, y, _ = unpack_x_y_sample_weight(data)
        y_pred = self(x)                                   # evaluate runs this under no_grad
        self.loss_tracker.update_state(self.loss_fn(y, y_pred))
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    @property
    def metrics(self) -> List[Any]:
        return [self.loss_tracker, self.mae_metric]


def regression_data(samples: int = 2000, features: int = 10, seed: int = 0):
    """A smooth nonlinear target of normal features (generated, seeded)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(samples, features)).astype("float32")
    w = rng.normal(size=(features,)) / np.sqrt(features)
    y = x @ w + 0.5 * np.sin(3 * x[:, 0]) + 0.1 * rng.normal(size=samples)
    return x, y.astype("float32")[:, None]


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 epochs (smoke test)")
    args = parser.parse_args(argv)
    epochs = 3 if args.quick else args.epochs
    torch.manual_seed(0)

    # 1. compile()'s loss and metrics, a custom step around them.
    (x_train, y_train), (x_test, y_test) = load_digits_split()
    classifier = ClippedClassifier(max_grad_norm=1.0)
    classifier.compile(optimizer=torch.optim.Adam(classifier.parameters(), lr=1e-3),
                       loss=nn.CrossEntropyLoss(), metrics=["accuracy"])
    # class_weight reaches the custom step as its per-sample `sample_weight`.
    class_weight = {digit: (2.0 if digit == 8 else 1.0) for digit in range(10)}
    history = classifier.fit(x_train, y_train, batch_size=32, epochs=epochs, class_weight=class_weight,
                             validation_split=0.1, verbose=args.verbose)
    classified = classifier.evaluate(x_test, y_test, verbose=0, return_dict=True)
    print(f"ClippedClassifier: logs {sorted(history.history)}")
    print(f"  grad_norm per epoch {[round(v, 3) for v in history.history['grad_norm']]}; "
          f"test accuracy {classified['accuracy']:.4f}")

    # 2. Everything in the step: own loss, own metrics, own test step.
    x, y = regression_data()
    x_fit, y_fit, x_hold, y_hold = x[:1600], y[:1600], x[1600:], y[1600:]
    regressor = LowLevelRegressor(features=x.shape[1])
    regressor.compile(optimizer=torchfit.optimizers.Adam(learning_rate=3e-3))  # no loss, no metrics
    reg_history = regressor.fit(x_fit, y_fit, batch_size=32, epochs=epochs,
                                validation_data=(x_hold, y_hold), verbose=args.verbose)
    regressed = regressor.evaluate(x_hold, y_hold, verbose=0, return_dict=True)
    baseline_mae = float(np.abs(y_hold - y_fit.mean()).mean())
    print(f"LowLevelRegressor: val_mae per epoch {[round(v, 3) for v in reg_history.history['val_mae']]}")
    print(f"  held-out mae {regressed['mae']:.4f} (predicting the mean: {baseline_mae:.4f})")
    return {
        "classifier": classified,
        "classifier_history": history.history,
        "regressor": regressed,
        "regressor_history": reg_history.history,
        "baseline_mae": baseline_mae,
    }


if __name__ == "__main__":
    main()
