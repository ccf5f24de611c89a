"""``History.plot()`` and ``plot_history()``: one panel per metric with its ``val_`` twin."""

import builtins
import os

import numpy as np
import pytest
from torch import nn

import torchfit
from torchfit.callbacks import CSVLogger, History, plot_history

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")


def trained(tmp_path, validation_freq=1, epochs=4):
    x = np.random.RandomState(0).rand(120, 8).astype("float32")
    y = x[:, :3].argmax(axis=1)
    model = torchfit.keras_style(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)))
    model.compile(optimizer="adam", loss=nn.CrossEntropyLoss(), metrics=["accuracy"])
    csv_path = tmp_path / "history.csv"
    history = model.fit(x, y, epochs=epochs, batch_size=32, validation_split=0.25, verbose=0,
                        validation_freq=validation_freq, callbacks=[CSVLogger(str(csv_path))])
    return history, csv_path


def plotted(figure):
    """``{panel title: {line label: (x, y)}}`` of a figure."""
    return {axes.get_title(): {line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
                               for line in axes.lines}
            for axes in figure.axes}


def test_plot_draws_each_metric_with_its_val_twin_and_the_recorded_values(tmp_path):
    history, _ = trained(tmp_path)
    figure = history.plot()
    lines = plotted(figure)
    assert list(lines) == ["loss", "accuracy"]
    for name in ("loss", "accuracy"):
        assert set(lines[name]) == {name, f"val_{name}"}
        for key in (name, f"val_{name}"):
            x, y = lines[name][key]
            assert x == [1, 2, 3, 4]
            np.testing.assert_allclose(y, history.history[key], rtol=1e-6)
    assert all(axes.get_xlabel() == "epoch" for axes in figure.axes)


def test_validation_points_sit_at_the_epochs_that_validated(tmp_path):
    history, csv_path = trained(tmp_path, validation_freq=2)
    for figure in (history.plot(), plot_history(str(csv_path))):
        x, y = plotted(figure)["loss"]["val_loss"]
        assert x == [2, 4]
        np.testing.assert_allclose(y, history.history["val_loss"], rtol=1e-6)


def test_a_history_filled_by_hand_plots_consecutive_epochs():
    history = History()
    history.history = {"loss": [3.0, 2.0, 1.0], "val_loss": [2.0]}
    lines = plotted(history.plot())["loss"]
    assert lines == {"loss": ([1, 2, 3], [3.0, 2.0, 1.0]), "val_loss": ([1], [2.0])}


def test_csv_form_equals_the_history_and_saves_a_png(tmp_path):
    history, csv_path = trained(tmp_path)
    out = tmp_path / "curves.png"
    figure = plot_history(csv_path, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from_history = plotted(history.plot())
    from_csv = plotted(figure)
    assert list(from_csv) == list(from_history)
    for title, series in from_history.items():
        for label, (x, y) in series.items():
            assert from_csv[title][label][0] == x
            np.testing.assert_allclose(from_csv[title][label][1], y, rtol=1e-6)


def test_dict_form_metrics_selection_and_svg(tmp_path):
    logs = {"loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 2.0], "mae": [1.0, 0.5, 0.2]}
    figure = plot_history(logs, tmp_path / "loss.svg", metrics=["loss"])
    assert plotted(figure) == {"loss": {"loss": ([1, 2, 3], [3.0, 2.0, 1.0]),
                                        "val_loss": ([1, 2, 3], [3.5, 2.5, 2.0])}}
    assert (tmp_path / "loss.svg").read_text().lstrip().startswith("<?xml")
    assert list(plotted(plot_history(logs))) == ["loss", "mae"]


@pytest.mark.parametrize("history, error, words", [
    (5, TypeError, ["`history`", "History", "Received", "int"]),
    ({"loss": "abc"}, TypeError, ["'loss'", "list of numbers"]),
    ({"loss": [1.0, "x"]}, TypeError, ["'loss'", "numbers", "str"]),
    ({}, ValueError, ["`history`", "no logged values"]),
])
def test_bad_history_is_named(history, error, words):
    with pytest.raises(error) as info:
        plot_history(history)
    for word in words:
        assert word in str(info.value)


def test_bad_csv_file_is_named(tmp_path):
    not_a_log = tmp_path / "other.csv"
    not_a_log.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"not a CSVLogger file.*'epoch'"):
        plot_history(not_a_log)
    garbled = tmp_path / "garbled.csv"
    garbled.write_text("epoch,loss\n0,1.5\n1,oops\n")
    with pytest.raises(ValueError, match=r"line 3 .* 'oops', not a number"):
        plot_history(garbled)
    with pytest.raises(ValueError, match="cannot read"):
        plot_history(tmp_path / "missing.csv")


def test_bad_metrics_and_path_write_nothing(tmp_path):
    logs = {"loss": [1.0, 0.5]}
    with pytest.raises(ValueError, match=r"`metrics`: no logged series named \['acc'\]"):
        plot_history(logs, tmp_path / "a.png", metrics=["acc"])
    with pytest.raises(TypeError, match="`metrics` must be a non-empty list"):
        plot_history(logs, metrics="loss")
    with pytest.raises(ValueError, match=r"`path` must end with an image suffix.*'.*\.txt'"):
        plot_history(logs, tmp_path / "a.txt")
    with pytest.raises(TypeError, match="`path` must be a path"):
        plot_history(logs, 3)
    assert os.listdir(tmp_path) == []


def test_a_failing_save_leaves_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "curves.png"
    out.write_bytes(b"old")
    from matplotlib.figure import Figure

    def broken(self, *args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        plot_history({"loss": [1.0]}, out)
    assert out.read_bytes() == b"old" and os.listdir(tmp_path) == ["curves.png"]


def test_missing_matplotlib_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    history = History()
    history.on_epoch_end(0, {"loss": 1.0})
    with pytest.raises(ImportError, match=r"pip install 'torchfit\[plot\]'"):
        history.plot()
