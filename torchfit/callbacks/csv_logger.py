"""``CSVLogger``: write the epoch logs to a CSV file, one row an epoch."""

from __future__ import annotations

import collections
import csv
import os
from typing import Any, Dict, List, Optional

import numpy as np

from .. import validation as check
from ..logs import as_float
from .callback import Callback, Logs


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        return value
    value = as_float(value)
    if isinstance(value, (list, tuple, np.ndarray)) or hasattr(value, "tolist"):
        items = np.asarray(value).ravel().tolist() if not isinstance(value, (list, tuple)) else value
        return f'"[{", ".join(map(str, items))}]"'
    return value


class CSVLogger(Callback):
    """Stream epoch results to a CSV file.

    The columns are ``epoch`` then the log names, sorted; without validation
    logs in the first epoch the ``val_`` columns are added anyway (filled with
    ``NA``), as Keras does.

    Args:
        filename: the CSV file (str or ``os.PathLike``).
        separator: the column separator (one character).
        append: append to an existing file (no second header) instead of
            overwriting it; use it when training resumes.
    """

    main_process_only = True  # writes files or posts: rank 0 only

    def __init__(self, filename: Any, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        owner = type(self).__name__
        self.filename = check.check_path(filename, "filename", owner=owner)
        self.sep = check.check_string(separator, "separator", owner=owner)
        if len(self.sep) != 1:
            raise ValueError(f"{owner}: argument `separator` must be a single character. "
                             f"Received: {separator!r}.")
        self.append = check.check_bool(append, "append", owner=owner)
        self.writer: Any = None
        self.keys: Optional[List[str]] = None
        self.append_header = True
        self.csv_file: Any = None

    def on_train_begin(self, logs: Logs = None) -> None:
        if os.path.isdir(self.filename):
            raise IsADirectoryError(
                f"CSVLogger: argument `filename` must name a file. Received a path that is an "
                f"existing directory: {self.filename}"
            )
        mode = "w"
        if self.append:
            mode = "a"
            if os.path.exists(self.filename):
                with open(self.filename, "r", newline="") as f:
                    self.append_header = not bool(len(f.readline()))
            else:
                self.append_header = True
        else:
            self.append_header = True
        self._close()
        directory = os.path.dirname(self.filename)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self.csv_file = open(self.filename, mode, newline="")
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(k.startswith("val_") for k in self.keys):
                self.keys.extend(f"val_{k}" for k in list(self.keys))
        if self.writer is None:
            dialect = type("TorchfitCSVDialect", (csv.excel,), {"delimiter": self.sep})
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=dialect)
            if self.append_header:
                self.writer.writeheader()
        row: Dict[str, Any] = collections.OrderedDict(epoch=epoch)
        row.update((key, _cell(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs: Logs = None) -> None:
        self._close()
        self.writer = None

    def _close(self) -> None:
        if self.csv_file is not None and not self.csv_file.closed:
            self.csv_file.close()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, Any]:
        return {"keys": None if self.keys is None else list(self.keys)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if self.keys is None and state.get("keys") is not None:
            self.keys = list(state["keys"])
            # A resumed run appends to a file that already has the header.
            if self.append and self.writer is None and self.csv_file is not None:
                self.append_header = self.append_header and self.csv_file.tell() == 0
