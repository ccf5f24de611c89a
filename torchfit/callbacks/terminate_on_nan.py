"""``TerminateOnNaN``: stop training when the loss becomes NaN or infinite."""

from __future__ import annotations

import math

from .. import validation as check
from ..logs import as_float
from .callback import Callback, Logs


class TerminateOnNaN(Callback):
    """Stop ``fit`` at the first batch whose ``loss`` is NaN or infinite.

    This reads the batch loss after every batch-level callback call, which
    makes the loop wait for the device once per call.

    Args:
        raise_error: raise a ``RuntimeError`` immediately instead of setting
            ``model.stop_training`` (which lets the epoch end normally).
    """

    reads_batch_logs_immediately = True

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = check.check_bool(raise_error, "raise_error", owner=type(self).__name__)

    def on_batch_end(self, batch: int, logs: Logs = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = as_float(loss)
        if not isinstance(value, float) or math.isfinite(value):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. Loss value: {value}. "
                "Terminating training immediately."
            )
        print(f"Batch {batch}: Invalid loss, terminating training")
        self.model.stop_training = True
