"""The main example runs end to end (quick mode) and learns."""

import runpy
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_digits_example_quick(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import digits

    history_csv = tmp_path / "history.csv"
    results = digits.main(["--quick", "--verbose", "0", "--history", str(history_csv)])
    assert results["accuracy"] > 0.8
    header = history_csv.read_text().splitlines()[0].split(",")
    assert header == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
