"""``SwapEMAWeights``: evaluate and predict with the optimizer's moving-average weights."""

from __future__ import annotations

from typing import Any, Dict, List

from ..optimizers._unwrap import unwrap_loss_scale
from .. import validation as check
from .callback import Callback, Logs


class SwapEMAWeights(Callback):
    """Put the optimizer's EMA weights into the model for evaluation and prediction.

    Needs an optimizer created with ``use_ema=True`` (torchfit optimizers;
    any optimizer with ``use_ema`` and a ``swap_ema_weights()`` method works).
    Before ``evaluate``/``predict`` (and the validation inside ``fit``) the
    weights and their averages are exchanged, and exchanged back afterwards,
    so training continues on the raw weights.

    Args:
        swap_on_epoch: also hold the EMA weights in the model from the end of
            each epoch until the start of the next, so that callbacks that run
            at epoch end (e.g. ``ModelCheckpoint``) see them. After the last
            epoch the model keeps the EMA weights.
    """

    def __init__(self, swap_on_epoch: bool = False) -> None:
        super().__init__()
        self.swap_on_epoch = check.check_bool(swap_on_epoch, "swap_on_epoch",
                                              owner=type(self).__name__)
        self._ema_weights_in_model = False

    def _ema_optimizers(self) -> List[Any]:
        owner = type(self).__name__
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = unwrap_loss_scale(optimizer)
        if optimizer is None:
            raise ValueError(f"{owner} needs a compiled model with an optimizer; received a "
                             "model whose `optimizer` is None.")
        candidates = list(getattr(optimizer, "optimizers", None) or [optimizer])
        chosen = [opt for opt in candidates if getattr(opt, "use_ema", False)]
        if not chosen:
            raise ValueError(
                f"{owner} must be used when `use_ema=True` is set on the optimizer. "
                f"Received {type(optimizer).__name__} with "
                f"use_ema={getattr(optimizer, 'use_ema', None)}."
            )
        for opt in chosen:
            if not callable(getattr(opt, "swap_ema_weights", None)):
                raise TypeError(
                    f"{owner} needs an optimizer with a `swap_ema_weights()` method (torchfit "
                    f"optimizers have one). Received: {type(opt).__name__}."
                )
        return chosen

    def _swap(self) -> None:
        for optimizer in self._ema_optimizers():
            optimizer.swap_ema_weights()

    def _copy_weights_to_ema(self) -> None:
        for optimizer in self._ema_optimizers():
            copy = getattr(optimizer, "copy_weights_to_ema", None)
            if callable(copy):
                copy()

    def _swap_in(self) -> None:
        if not self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = True

    def _swap_out(self) -> None:
        if self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = False

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        if self.swap_on_epoch:
            self._swap_out()

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._swap_in()
            if epoch == self.params.get("epochs", 0) - 1:
                # The run ends holding the EMA weights; make the averages agree,
                # so a final "weights <- averages" leaves them as they are.
                self._copy_weights_to_ema()

    def on_test_begin(self, logs: Logs = None) -> None:
        self._swap_in()

    def on_test_end(self, logs: Logs = None) -> None:
        self._swap_out()

    def on_predict_begin(self, logs: Logs = None) -> None:
        self._swap_in()

    def on_predict_end(self, logs: Logs = None) -> None:
        self._swap_out()

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict[str, Any]:
        return {"ema_weights_in_model": self._ema_weights_in_model}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self._ema_weights_in_model = bool(state["ema_weights_in_model"])
