"""``ProgbarLogger``: tqdm progress bars (verbose=1) or one line per epoch (verbose=2).

In a Jupyter kernel the bar is tqdm's notebook widget (with ipywidgets
installed) and text goes to ``stdout``, as Keras prints it (notebooks show
``stderr`` as red blocks); elsewhere it is tqdm's text bar on ``stderr``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, Optional

from .callback import Callback, Logs


def format_value(value: Any) -> str:
    value = float(value)  # host sync: only when the display is refreshed
    if value != 0 and (abs(value) >= 1e4 or abs(value) < 1e-3):
        return f"{value:.4e}"
    return f"{value:.4f}"


def format_logs(logs: Logs) -> Dict[str, str]:
    return {k: format_value(v) for k, v in (logs or {}).items() if _is_scalar(v)}


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ZMQ shell, as in
    JupyterLab, Notebook, VS Code and Colab), not a terminal IPython."""
    zmqshell = sys.modules.get("ipykernel.zmqshell")
    if zmqshell is None:
        return False
    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    return isinstance(shell, zmqshell.ZMQInteractiveShell)


def _bar_class(notebook: bool) -> Any:
    """tqdm's notebook bar in a kernel that can show widgets, its text bar otherwise."""
    if notebook:
        from tqdm import notebook as tqdm_notebook  # imports ipywidgets, if installed

        if tqdm_notebook.IProgress is not None:
            return tqdm_notebook.tqdm
    from tqdm.std import tqdm

    return tqdm


def _is_scalar(value: Any) -> bool:
    if isinstance(value, (int, float)):
        return True
    numel = getattr(value, "numel", None)
    return callable(numel) and numel() == 1


class ProgbarLogger(Callback):
    """Prints progress to ``stderr`` (tqdm) or, with ``verbose=2``, one line an epoch.

    The display is refreshed at most every ``refresh_seconds``; batch logs are
    converted to numbers only then, so the loop is not made to wait on the
    device after every step.
    """

    reads_batch_logs_immediately = True

    def __init__(self, refresh_seconds: float = 0.1, file: Any = None) -> None:
        super().__init__()
        self.refresh_seconds = refresh_seconds
        self.file = file
        self._bar: Any = None
        self._verbose = 1
        self._epochs = 1
        self._started = 0.0
        self._last_refresh = 0.0
        self._seen = 0  # batches finished
        self._shown = 0  # batches the bar shows
        self._training = False

    def set_params(self, params: Dict[str, Any]) -> None:
        super().set_params(params)
        self._verbose = params.get("verbose", 1)
        self._epochs = params.get("epochs", 1)

    def _stream(self) -> Any:
        if self.file is not None:
            return self.file
        return sys.stdout if in_notebook() else sys.stderr

    def _open(self, total: Optional[int], description: Optional[str] = None) -> None:
        self._close()
        self._started = self._last_refresh = time.monotonic()
        self._seen = self._shown = 0
        if self._verbose != 1:
            return
        bar_class = _bar_class(self.file is None and in_notebook())
        self._bar = bar_class(
            total=total, desc=description, unit="step", file=self._stream(),
            dynamic_ncols=True, leave=True,
        )

    def close(self) -> None:
        """Close an open bar (the loop calls this when a run fails)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    _close = close

    def _advance(self, batch: int, logs: Logs) -> None:
        self._seen = batch + 1
        now = time.monotonic()
        if self._bar is not None and now - self._last_refresh >= self.refresh_seconds:
            self._refresh(logs)
            self._last_refresh = now

    def _refresh(self, logs: Logs) -> None:
        self._bar.update(self._seen - self._shown)
        self._shown = self._seen
        self._bar.set_postfix(format_logs(logs), refresh=True)

    def _finish(self, logs: Logs) -> None:
        """Show the final logs: on the bar, or as one line with verbose=2."""
        if self._bar is not None:
            self._refresh(logs)
            self._close()
        elif self._verbose == 2:
            self._line(f"{self._seen}/{self._seen}", logs)

    def _line(self, prefix: str, logs: Logs) -> None:
        elapsed = time.monotonic() - self._started
        parts = [prefix, f"{elapsed:.0f}s"] + [f"{k}: {v}" for k, v in format_logs(logs).items()]
        print(" - ".join(p for p in parts if p), file=self._stream(), flush=True)

    # fit
    def on_train_begin(self, logs: Logs = None) -> None:
        self._training = True

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        self._open(self.params.get("steps"), f"Epoch {epoch + 1}/{self._epochs}")
        if self._verbose == 2:
            print(f"Epoch {epoch + 1}/{self._epochs}", file=self._stream(), flush=True)

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._advance(batch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self._finish(logs)

    def on_train_end(self, logs: Logs = None) -> None:
        self._training = False
        self._close()

    # evaluate (a stand-alone call; validation inside fit is shown in the epoch line)
    def on_test_begin(self, logs: Logs = None) -> None:
        if not self._training:
            self._open(self.params.get("steps"), "Evaluate")

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        if not self._training:
            self._advance(batch, logs)

    def on_test_end(self, logs: Logs = None) -> None:
        if not self._training:
            self._finish(logs)

    # predict
    def on_predict_begin(self, logs: Logs = None) -> None:
        self._open(self.params.get("steps"), "Predict")

    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None:
        self._advance(batch, None)

    def on_predict_end(self, logs: Logs = None) -> None:
        self._finish(None)
