"""What verbose=1 (tqdm bar) and verbose=2 (one line per epoch) print."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import torchfit


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x)


X = np.random.default_rng(0).normal(size=(20, 3)).astype("float32")
Y = np.arange(20) % 2


def compiled():
    model = Net()
    model.compile(optimizer="sgd", loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def test_verbose_2_prints_one_line_per_epoch(capsys):
    compiled().fit(X, Y, batch_size=8, epochs=2, verbose=2, validation_split=0.2)
    err = capsys.readouterr().err
    lines = [l for l in err.splitlines() if l.strip()]
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    for line in (lines[1], lines[3]):
        assert line.startswith("2/2 - ")
        for key in ("accuracy: ", "loss: ", "val_accuracy: ", "val_loss: "):
            assert key in line


def test_verbose_1_draws_a_tqdm_bar_with_logs(capsys):
    compiled().fit(X, Y, batch_size=8, epochs=1, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 1/1" in err and "3/3" in err and "loss=" in err and "accuracy=" in err


def test_verbose_0_prints_nothing(capsys):
    model = compiled()
    model.fit(X, Y, epochs=1, verbose=0)
    model.evaluate(X, Y, verbose=0)
    model.predict(X, verbose=0)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_evaluate_and_predict_bars(capsys):
    model = compiled()
    model.evaluate(X, Y, batch_size=5, verbose=1)
    model.predict(X, batch_size=5, verbose=1)
    err = capsys.readouterr().err
    assert "Evaluate" in err and "Predict" in err and "4/4" in err
    model.evaluate(X, Y, batch_size=5, verbose=2)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("4/4 - ") and "loss: " in line


def test_progress_bar_does_not_sync_every_step(monkeypatch):
    """Batch logs are tensors; the bar converts them only when it refreshes."""
    conversions = []
    original = torch.Tensor.__float__

    def counting_float(self):
        conversions.append(1)
        return original(self)

    monkeypatch.setattr(torch.Tensor, "__float__", counting_float)
    bar = torchfit.callbacks.ProgbarLogger(refresh_seconds=3600)
    model = compiled()
    model.fit(np.repeat(X, 10, axis=0), np.repeat(Y, 10), batch_size=2, epochs=1,
              callbacks=[bar], verbose=1)
    steps = 100
    assert len(conversions) < steps / 5
