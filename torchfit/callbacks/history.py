"""``History``: the per-epoch record returned by ``fit``, and its plot."""

from __future__ import annotations

import csv
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..saving.files import atomic_write
from ..validation import _received, check_path
from .callback import Callback, Logs

#: ``{log name: (epoch numbers, values)}``: one plotted series each.
Series = Dict[str, Tuple[List[int], List[float]]]

_PLOT_EXTRA = ("matplotlib is needed to plot a history and is not installed. Install it with "
               "`pip install 'torchfit[plot]'` (or `pip install matplotlib`).")


class History(Callback):
    """Records epoch-end logs; ``fit`` returns it and sets ``model.history``.

    Attributes:
        history: ``{log name: [value per epoch]}``.
        epoch: the epoch indices that were recorded.
        params: ``{"verbose", "epochs", "steps"}`` of the ``fit`` call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: Dict[str, List[Any]] = {}
        self.epoch: List[int] = []
        # The epoch index of each value, per log name: validation logs are
        # missing from the epochs that skip validation (validation_freq).
        self._epochs_of: Dict[str, List[int]] = {}

    def on_train_begin(self, logs: Logs = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
            self._epochs_of.setdefault(key, []).append(epoch)
        if self.model is not None:
            self.model.history = self

    def plot(self, path: Any = None, metrics: Optional[Sequence[str]] = None) -> Any:
        """Draw the training curves; see :func:`plot_history`.

        Returns the ``matplotlib.figure.Figure``; saves it to ``path`` when given.
        """
        return plot_history(self, path, metrics=metrics)

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


def plot_history(history: Any, path: Any = None, metrics: Optional[Sequence[str]] = None) -> Any:
    """Plot a training history: one panel per metric, with its ``val_`` twin.

    Epochs (counted from 1, as the progress bar shows them) are on the x axis;
    each panel has the training series and, when logged, the validation
    series of the same name (validation points only where validation ran).
    Needs matplotlib (``pip install 'torchfit[plot]'``), imported only here.

    Args:
        history: a :class:`History` (as ``fit`` returns it), a dict
            ``{name: [value per epoch]}`` such as its ``.history`` (each list
            is taken as epochs 1, 2, ...), or the path of a CSV file written
            by ``CSVLogger`` (``"NA"`` cells are skipped).
        path: where to save the figure (the format follows the suffix, e.g.
            ``.png``, ``.pdf``, ``.svg``); written atomically. None: not saved.
        metrics: the panels to draw, by training log name (e.g. ``["loss"]``);
            None draws every logged series.

    Returns:
        The ``matplotlib.figure.Figure`` (not registered with ``pyplot``, so it
        needs no closing; Jupyter shows it when it is a cell's last value).
    """
    series = _series_of(history)
    panels = _panels(series, metrics)
    if path is not None:
        path = check_path(path, "path")
        _check_format(path)
    figure = _draw(series, panels)
    if path is not None:
        atomic_write(path, lambda f: figure.savefig(f, format=_format_of(path)), "path")
    return figure


# ------------------------------------------------------------------ the series
def _series_of(history: Any) -> Series:
    if isinstance(history, History):
        return {key: (_epochs_of(history, key, len(values)), _floats(key, values))
                for key, values in history.history.items()}
    if isinstance(history, Mapping):
        return {_check_key(key): (list(range(len(values))), _floats(key, values))
                for key, values in history.items()}
    if isinstance(history, (str, os.PathLike)):
        return _read_csv(check_path(history, "history"))
    raise TypeError("Argument `history` must be a torchfit History, a dict {name: [value per "
                    f"epoch]}} or the path of a CSVLogger file. Received: {_received(history)}.")


def _epochs_of(history: History, key: str, count: int) -> List[int]:
    """The epoch of each recorded value of ``key``; consecutive epochs for a
    history filled by hand (its values were not recorded by ``on_epoch_end``)."""
    for epochs in (getattr(history, "_epochs_of", {}).get(key), history.epoch):
        if epochs is not None and len(epochs) == count:
            return list(epochs)
    return list(range(count))


def _check_key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError(f"Argument `history`: log names must be strings. Received: {_received(key)}.")
    return key


def _floats(key: str, values: Any) -> List[float]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"Argument `history`: the values of {key!r} must be a list of numbers, "
                        f"one per epoch. Received: {_received(values)}.")
    out = []
    for value in values:
        try:
            out.append(float(value))
        except (TypeError, ValueError):
            raise TypeError(f"Argument `history`: the values of {key!r} must be numbers. "
                            f"Received: {_received(value)}.") from None
    return out


def _read_csv(path: str) -> Series:
    """The series of a CSVLogger file; the separator is sniffed (CSVLogger's ``separator``)."""
    try:
        with open(path, newline="") as f:
            text = f.read()
    except OSError as error:
        raise ValueError(f"Argument `history`: cannot read the CSV file {path!r} "
                         f"({type(error).__name__}: {error}).") from error
    try:
        dialect: Any = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t| ")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(text.splitlines(), dialect))
    if not rows or "epoch" not in rows[0]:
        raise ValueError(f"Argument `history`: {path!r} is not a CSVLogger file (expected a "
                         f"header row with an 'epoch' column). Received the header: "
                         f"{rows[0] if rows else 'none (empty file)'}.")
    header = rows[0]
    series: Series = {key: ([], []) for key in header if key != "epoch"}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"Argument `history`: line {number} of {path!r} has {len(row)} "
                             f"cells; the header has {len(header)}.")
        cells = dict(zip(header, row))
        epoch = _number(cells["epoch"], path, number)
        for key, (epochs, values) in series.items():
            value = _number(cells[key], path, number)
            if not math.isnan(value):
                epochs.append(int(epoch))
                values.append(value)
    return series


def _number(cell: str, path: str, line: int) -> float:
    if cell.strip() in ("", "NA", "nan"):
        return math.nan
    try:
        return float(cell)
    except ValueError:
        raise ValueError(f"Argument `history`: line {line} of {path!r} holds {cell!r}, "
                         "not a number.") from None


def _panels(series: Series, metrics: Optional[Sequence[str]]) -> List[str]:
    """Panel names: each training name, and validation names without a training twin;
    ``loss`` first, as Keras orders its logs."""
    names = [key for key in series if not (key.startswith("val_") and key[4:] in series)]
    names.sort(key=lambda key: key != "loss")
    if metrics is None:
        if not names:
            raise ValueError("Argument `history` holds no logged values to plot. Received an "
                             "empty history (was fit() run?).")
        return names
    if isinstance(metrics, str) or not isinstance(metrics, Sequence) or not metrics:
        raise TypeError("Argument `metrics` must be a non-empty list of log names or None. "
                        f"Received: {_received(metrics)}.")
    unknown = [m for m in metrics if m not in names]
    if unknown:
        raise ValueError(f"Argument `metrics`: no logged series named {unknown}. "
                         f"Logged: {names}.")
    return list(metrics)


# -------------------------------------------------------------------- drawing
def _format_of(path: str) -> str:
    return os.path.splitext(path)[1][1:].lower()


def _check_format(path: str) -> None:
    figure_class = _figure_class()
    formats = figure_class().canvas.get_supported_filetypes()
    if _format_of(path) not in formats:
        raise ValueError(f"Argument `path` must end with an image suffix ({', '.join(sorted(formats))}). "
                         f"Received: {path!r}.")


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure  # optional dependency: the `plot` extra
    except ImportError as error:
        raise ImportError(_PLOT_EXTRA) from error
    return Figure


def _draw(series: Series, panels: List[str]) -> Any:
    columns = min(len(panels), 3)
    rows = math.ceil(len(panels) / columns)
    figure = _figure_class()(figsize=(4.5 * columns, 3.2 * rows), layout="constrained")
    for index, name in enumerate(panels):
        axes = figure.add_subplot(rows, columns, index + 1)
        for key in (name, f"val_{name}"):
            if key in series:
                epochs, values = series[key]
                axes.plot([e + 1 for e in epochs], values, marker="o" if len(values) < 30 else None,
                          markersize=3, label=key)
        axes.set_title(name)
        axes.set_xlabel("epoch")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(True, alpha=0.3)
        axes.legend()
    return figure
