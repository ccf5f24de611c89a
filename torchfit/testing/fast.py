"""Fast mode: caps on every keras-style ``fit()`` call (:func:`limit_fit`)."""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import warnings
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, Optional

from ..module import KerasStyleModule
from ..validation import is_int as _is_int
from ..validation import check_int

DEFAULT_FAST_MAX_EPOCHS = 1
DEFAULT_FAST_MAX_STEPS_PER_EPOCH = 2


# ------------------------------------------------------------------- fast mode
@dataclass(frozen=True)
class FitLimits:
    """Caps applied to ``fit()`` calls inside :func:`limit_fit` (fast mode).

    Attributes:
        max_epochs: at most this many epochs are run per ``fit`` call
            (``epochs`` becomes ``min(epochs, initial_epoch + max_epochs)``);
            None: no cap.
        max_steps_per_epoch: at most this many training batches per epoch,
            and as many validation batches (``steps_per_epoch`` and
            ``validation_steps`` become their minimum with this value, or this
            value when they were None; an epoch over data with fewer batches
            simply ends with the data); None: no cap.
    """

    max_epochs: Optional[int] = DEFAULT_FAST_MAX_EPOCHS
    max_steps_per_epoch: Optional[int] = DEFAULT_FAST_MAX_STEPS_PER_EPOCH

    def __post_init__(self) -> None:
        check_int(self.max_epochs, "max_epochs", 1, allow_none=True, function="FitLimits")
        check_int(self.max_steps_per_epoch, "max_steps_per_epoch", 1, allow_none=True,
                  function="FitLimits")

    def tightest(self, other: Optional["FitLimits"]) -> "FitLimits":
        """The limits that satisfy both ``self`` and ``other`` (for nesting)."""
        if other is None:
            return self

        def low(a: Optional[int], b: Optional[int]) -> Optional[int]:
            return b if a is None else a if b is None else min(a, b)

        return FitLimits(low(self.max_epochs, other.max_epochs),
                         low(self.max_steps_per_epoch, other.max_steps_per_epoch))

    def apply(self, arguments: Dict[str, Any]) -> bool:
        """Cap the bound arguments of one ``fit`` call in place.

        Values of the wrong type are left alone, for ``fit`` to reject. Returns
        True when a step count was introduced where the call had none (the
        data may then end before the cap, which is not worth a warning).
        """
        introduced = False
        epochs = arguments.get("epochs")
        if self.max_epochs is not None and _is_int(epochs):
            initial_epoch = arguments.get("initial_epoch", 0)
            start = int(initial_epoch) if _is_int(initial_epoch) else 0
            arguments["epochs"] = min(int(epochs), start + self.max_epochs)
        if self.max_steps_per_epoch is not None:
            for name in ("steps_per_epoch", "validation_steps"):
                if name not in arguments:
                    continue
                value = arguments[name]
                if value is None:
                    arguments[name] = self.max_steps_per_epoch
                    introduced = True
                elif _is_int(value):
                    arguments[name] = min(int(value), self.max_steps_per_epoch)
        return introduced


_ACTIVE_LIMITS: ContextVar[Optional[FitLimits]] = ContextVar("torchfit_fit_limits", default=None)
_PATCH_LOCK = threading.Lock()
_patch_depth = 0
_original_fit: Optional[Callable[..., Any]] = None
_limited_fit: Optional[Callable[..., Any]] = None
_RAN_OUT_OF_DATA = "Your input ran out of data"


def _make_limited_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        limits = _ACTIVE_LIMITS.get()
        if limits is None:
            return original(self, *args, **kwargs)
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:
            return original(self, *args, **kwargs)  # fit reports the bad call itself
        bound.apply_defaults()
        introduced_steps = limits.apply(bound.arguments)
        if not introduced_steps:
            return original(*bound.args, **bound.kwargs)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_RAN_OUT_OF_DATA, category=UserWarning)
            return original(*bound.args, **bound.kwargs)

    return fit


def _install_fit_patch() -> None:
    global _patch_depth, _original_fit, _limited_fit
    with _PATCH_LOCK:
        if _patch_depth == 0:
            _original_fit = KerasStyleModule.__dict__["fit"]
            _limited_fit = _make_limited_fit(_original_fit)
            KerasStyleModule.fit = _limited_fit  # type: ignore[method-assign]
        _patch_depth += 1


def _uninstall_fit_patch() -> None:
    global _patch_depth, _original_fit, _limited_fit
    with _PATCH_LOCK:
        _patch_depth -= 1
        if _patch_depth == 0:
            # If someone else replaced fit meanwhile, leave theirs: ours, if it
            # is still underneath, passes calls through once no limits are active.
            if KerasStyleModule.__dict__.get("fit") is _limited_fit:
                KerasStyleModule.fit = _original_fit  # type: ignore[method-assign]
            _original_fit = _limited_fit = None


@contextlib.contextmanager
def limit_fit(max_epochs: Optional[int] = DEFAULT_FAST_MAX_EPOCHS,
              max_steps_per_epoch: Optional[int] = DEFAULT_FAST_MAX_STEPS_PER_EPOCH) -> Iterator[FitLimits]:
    """Cap every keras-style ``fit()`` call made inside the block (fast mode).

    ``KerasStyleModule.fit`` is wrapped while at least one ``limit_fit`` block
    is open and restored afterwards; the caps live in a context variable, so
    nested blocks combine to the tightest limits and other threads' or
    contexts' calls are not capped. The wrapper binds the call's arguments,
    caps ``epochs``, ``steps_per_epoch`` and ``validation_steps`` as
    :class:`FitLimits` describes and calls the real ``fit``; ``evaluate``,
    ``predict`` and the ``*_on_batch`` methods are never capped. A subclass
    that overrides ``fit`` without calling ``super().fit`` is not capped.
    Yields the :class:`FitLimits` in force. The ``--torchfit-fast`` option and
    the ``torchfit_fast`` marker use this.
    """
    limits = FitLimits(max_epochs, max_steps_per_epoch).tightest(_ACTIVE_LIMITS.get())
    _install_fit_patch()
    token = _ACTIVE_LIMITS.set(limits)
    try:
        yield limits
    finally:
        _ACTIVE_LIMITS.reset(token)
        _uninstall_fit_patch()


@contextlib.contextmanager
def _uncapped() -> Iterator[None]:
    """The assertion helpers train for the number of steps they were asked for."""
    token = _ACTIVE_LIMITS.set(None)
    try:
        yield
    finally:
        _ACTIVE_LIMITS.reset(token)
