"""Every example runs end to end in quick mode and learns something."""

import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def examples_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def load(name):
    return importlib.import_module(name)


def test_digits_example_quick(tmp_path, examples_path, capsys):
    digits = load("digits")
    history_csv = tmp_path / "history.csv"
    results = digits.main(["--quick", "--verbose", "0", "--history", str(history_csv)])
    assert results["accuracy"] > 0.8
    header = history_csv.read_text().splitlines()[0].split(",")
    assert header == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    out = capsys.readouterr().out
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "history.png").read_bytes()[:4] == b"\x89PNG"
        assert f"training curves saved to {tmp_path / 'history.png'}" in out
    else:
        assert "pip install 'torchfit[plot]'" in out


def test_existing_torchvision_model_quick(tmp_path, examples_path):
    example = load("existing_torchvision_model")
    results = example.main(["--quick", "--verbose", "0", "--checkpoint-dir", str(tmp_path)])
    assert results["backbone"] in ("torchvision", "fallback")
    assert results["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert (tmp_path / "best.pt").exists()
    val_accuracy = results["history"]["val_accuracy"]
    assert results["best_val_accuracy"] == max(val_accuracy)
    assert val_accuracy[results["best_epoch"] - 1] == max(val_accuracy)
    if results["best_epoch"] == 2:  # the checkpoint holds the final weights
        assert results["test_accuracy"] == results["last_epoch_test_accuracy"]
    rates = results["history"]["learning_rate"]
    assert len(rates) == 2 and rates[0] > rates[1]  # the torch scheduler stepped


def test_existing_torchvision_model_falls_back_without_torchvision(monkeypatch, examples_path, capsys):
    example = load("existing_torchvision_model")
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    constructor, source = example.resnet18_constructor()
    assert (constructor, source) == (example.ResNet18, "fallback")
    assert "torchvision is not usable here" in capsys.readouterr().out


def test_fallback_resnet_matches_torchvision_keys(examples_path):
    try:
        from torchvision.models import resnet18
    except Exception as error:  # not installed, or built for another torch
        pytest.skip(f"torchvision is not usable: {error}")
    example = load("existing_torchvision_model")
    ours = {k: tuple(v.shape) for k, v in example.ResNet18(num_classes=10).state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in resnet18(num_classes=10).state_dict().items()}
    assert ours == theirs


def test_multi_output_quick(examples_path):
    example = load("multi_output")
    results = example.main(["--quick", "--verbose", "0"])
    test = results["test"]
    assert set(results["history"]) == {
        prefix + name
        for prefix in ("", "val_")
        for name in ("loss", "digit_loss", "digit_accuracy", "parity_loss", "parity_accuracy",
                     "ink_loss", "ink_mae")
    }
    assert results["metrics_names"][0] == "loss"
    assert test["digit_accuracy"] > 0.6 and test["parity_accuracy"] > 0.6
    history = results["history"]
    assert history["ink_mae"][-1] < history["ink_mae"][0]
    expected_total = test["digit_loss"] + 0.5 * test["parity_loss"] + 0.2 * test["ink_loss"]
    assert test["loss"] == pytest.approx(expected_total, rel=1e-4)  # loss_weights applied


def test_custom_train_step_quick(examples_path):
    example = load("custom_train_step")
    results = example.main(["--quick", "--verbose", "0"])
    assert results["classifier"]["accuracy"] > 0.6
    # As in Keras, every metric in `model.metrics` is reported in validation too.
    assert set(results["classifier_history"]) == {"accuracy", "grad_norm", "loss", "val_accuracy",
                                                  "val_grad_norm", "val_loss"}
    assert all(np.isfinite(results["classifier_history"]["grad_norm"]))
    assert set(results["regressor"]) == {"loss", "mae"}
    assert results["regressor"]["mae"] < 0.6 * results["baseline_mae"]
    losses = results["regressor_history"]["loss"]
    assert losses[-1] < losses[0]


def test_sequence_sample_weight_quick(examples_path):
    example = load("sequence_sample_weight")
    results = example.main(["--quick", "--verbose", "0"])
    assert results["masked"]["accuracy"] > 0.8
    assert results["masked"]["accuracy"] == pytest.approx(results["by_hand"], abs=1e-4)
    assert results["unmasked"]["accuracy"] < results["masked"]["accuracy"] - 0.1


@pytest.mark.parametrize("name", ["digits", "existing_torchvision_model", "multi_output",
                                  "custom_train_step", "sequence_sample_weight"])
def test_example_has_a_docstring_and_a_quick_flag(name):
    source = (EXAMPLES / f"{name}.py").read_text()
    assert source.lstrip().startswith('"""') and '"--quick"' in source
