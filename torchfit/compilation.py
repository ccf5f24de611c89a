"""``jit_compile`` and ``run_eagerly``: whether step functions go through ``torch.compile``.

The step *function* is compiled, never the module, so ``state_dict`` keys
never gain an ``_orig_mod.`` prefix.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import torch

JIT_CHOICES = ("auto", True, False)


def check_jit_compile(value: Any) -> Any:
    if not (value == "auto" and isinstance(value, str)) and not isinstance(value, bool):
        raise ValueError(
            f'Argument `jit_compile` must be "auto", True or False. Received: {value!r} '
            f"(type {type(value).__name__})."
        )
    return value


def resolve_jit_compile(jit_compile: Any, run_eagerly: bool) -> bool:
    """``"auto"`` is eager (as Keras on torch); ``run_eagerly`` always wins."""
    if run_eagerly:
        return False
    return jit_compile is True


def compile_step(fn: Callable[[Any], Any], enabled: bool,
                 options: Optional[Dict[str, Any]] = None) -> Callable[[Any], Any]:
    """Wrap a step function with ``torch.compile(backend="inductor")`` when enabled."""
    if not enabled:
        return fn
    kwargs = {"backend": "inductor"}
    kwargs.update(options or {})
    return torch.compile(fn, **kwargs)
