"""``History``: the per-epoch record returned by ``fit``."""

from __future__ import annotations

from typing import Any, Dict, List

from .callback import Callback, Logs


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

    def on_train_begin(self, logs: Logs = None) -> None:
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"
