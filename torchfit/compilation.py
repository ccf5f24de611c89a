"""``jit_compile`` and ``run_eagerly``: whether step functions go through ``torch.compile``.

The step *function* is compiled, never the module, so ``state_dict`` keys
never gain an ``_orig_mod.`` prefix. The switch:

- ``False``, or ``run_eagerly=True``: eager.
- ``"auto"``: eager on CPU (as Keras on torch); on CUDA compiled with
  ``backend="inductor"``, falling back to eager with one warning if
  compilation fails.
- ``True``: compiled, strictly: a compilation error is raised, not hidden.
- a dict: ``True`` with these keyword arguments for ``torch.compile``
  (``mode``, ``fullgraph``, ``dynamic``, ``options``...).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

COMPILE_KWARGS = ("mode", "fullgraph", "dynamic", "options", "backend", "disable")

# Methods torch.compile must run eagerly, as (class, name): see ``eager_only``.
_EAGER_ONLY: List[Tuple[type, str]] = []


class eager_only:
    """Marks a method that compiled step functions run eagerly (never traced).

    The same as ``torch.compiler.disable``, applied only once a step function
    is compiled: ``torch.compiler.disable`` imports ``torch._dynamo``, which
    would add seconds to ``import torchfit`` for every user who never compiles.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        _EAGER_ONLY.append((owner, name))

    def __get__(self, instance: Any, owner: Optional[type] = None) -> Any:
        return self.fn.__get__(instance, owner)


def _disable_eager_only_methods() -> None:
    while _EAGER_ONLY:
        owner, name = _EAGER_ONLY.pop()
        marked = owner.__dict__[name]
        setattr(owner, name, torch.compiler.disable(marked.fn))


def check_jit_compile(value: Any) -> Any:
    """Validate ``compile(jit_compile=...)``."""
    if isinstance(value, bool) or (isinstance(value, str) and value == "auto"):
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(COMPILE_KWARGS))
        if unknown:
            raise ValueError(
                f"Argument `jit_compile` as a dict holds torch.compile keyword arguments "
                f"{list(COMPILE_KWARGS)}. Received unknown keys: {unknown}."
            )
        return value
    raise ValueError(
        'Argument `jit_compile` must be "auto", True, False or a dict of torch.compile '
        f"keyword arguments. Received: {value!r} (type {type(value).__name__})."
    )


# What of ``jit_compile`` may come back from a file: no key that reaches
# inductor's options or picks a backend (they can name programs torch runs).
RESTORABLE_COMPILE_KWARGS = ("mode", "fullgraph", "dynamic")
_COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def restorable_jit_compile(value: Any) -> Tuple[Any, List[str]]:
    """The part of a ``jit_compile`` value read from a file that may be used,
    and the keys (or the value) dropped.

    ``True``, ``False`` and ``"auto"`` come back as they are; a dict keeps only
    ``mode`` (a torch.compile mode name), ``fullgraph`` (bool) and ``dynamic``
    (bool or None); anything else becomes ``"auto"``.
    """
    if isinstance(value, bool) or (isinstance(value, str) and value == "auto"):
        return value, []
    if not isinstance(value, dict):
        return "auto", [repr(value)[:80]]
    checks = {"mode": lambda v: isinstance(v, (str, type(None))) and v in _COMPILE_MODES,
              "fullgraph": lambda v: isinstance(v, bool),
              "dynamic": lambda v: v is None or isinstance(v, bool)}
    kept = {key: value[key] for key in RESTORABLE_COMPILE_KWARGS
            if key in value and checks[key](value[key])}
    dropped = sorted(str(key) for key in value if key not in kept)
    return kept, dropped


def compile_step(fn: Callable[[Any], Any], jit_compile: Any, run_eagerly: bool,
                 device: torch.device) -> Callable[[Any], Any]:
    """The step function to run, compiled or not according to the switch."""
    if run_eagerly or jit_compile is False:
        return fn
    if isinstance(jit_compile, str):  # "auto"
        if device.type != "cuda":
            return fn
        return FallbackToEager(fn, _compiled(fn, {}))
    options = jit_compile if isinstance(jit_compile, dict) else {}
    return _compiled(fn, options)


def _compiled(fn: Callable[[Any], Any], options: Dict[str, Any]) -> Callable[[Any], Any]:
    _disable_eager_only_methods()
    kwargs = {"backend": "inductor", **options}
    return torch.compile(fn, **kwargs)


class FallbackToEager:
    """Runs the compiled step; if torch.compile fails, warns once and stays eager."""

    def __init__(self, eager: Callable[[Any], Any], compiled: Callable[[Any], Any]) -> None:
        self.eager = eager
        self.compiled = compiled
        self.failed = False

    def __call__(self, data: Any) -> Any:
        if self.failed:
            return self.eager(data)
        try:
            return self.compiled(data)
        except Exception as error:  # only compiler failures are swallowed
            if not _is_compiler_error(error):
                raise
            self.failed = True
            warnings.warn(
                f"torch.compile failed ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
                'running eagerly. Pass jit_compile=True to make this an error, or '
                "jit_compile=False to skip compiling.",
                RuntimeWarning,
                stacklevel=2,
            )
            return self.eager(data)


def _is_compiler_error(error: BaseException) -> bool:
    try:
        from torch._dynamo.exc import TorchDynamoException
    except ImportError:  # pragma: no cover - very old torch
        return False
    return isinstance(error, TorchDynamoException)
