"""``save_weights``/``load_weights``: plain state dicts, with key and shape checks.

A model whose optimizer keeps two sets of weights (``ScheduleFreeAdamW``, also
inside a loss-scale wrapper or a ``MultiOptimizer``) writes which set its
parameters held, ``"train"`` or ``"eval"``, into the state dict's torch
metadata (``state_dict._metadata[""]["torchfit_weights"]``, which torch's
``load_state_dict`` ignores), and :func:`load_weights` puts such a file's
weights where they belong whichever set the optimizer holds at load time.
"""

from __future__ import annotations

import collections
import warnings
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..optimizers._unwrap import eval_weight_optimizer
from ..validation import _LIST_LIMIT, check_bool, check_model, check_path, short_list
from .files import MODEL_FORMAT, _check_overwrite, atomic_save, read_checkpoint


def save_weights(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """Write ``model.state_dict()`` to ``filepath`` (atomically), in torch's format.

    The file is a plain state dict: ``model.load_state_dict(torch.load(filepath,
    weights_only=True))`` reads it without torchfit.
    """
    check_model(model)
    filepath = check_path(filepath)
    _check_overwrite(filepath, overwrite)
    atomic_save(_state_dict(model), filepath)


def _state_dict(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The model's state dict (detached tensors, on their devices), saying
    which weights it holds (see the module doc)."""
    return tag_weights(model, model.state_dict())


#: The key, in the root entry of a state dict's torch ``_metadata``, that
#: says which of an optimizer's two sets of weights the file holds.
WEIGHTS_KEY = "torchfit_weights"
_WEIGHT_KINDS = ("train", "eval")


def _two_weight_optimizer(model: nn.Module) -> Optional[Any]:
    """The model's bound optimizer that keeps evaluation weights, or None."""
    return eval_weight_optimizer(getattr(model, "optimizer", None))


def tag_weights(model: nn.Module, state: Dict[str, Any]) -> Dict[str, Any]:
    """``state`` saying which weights the model's parameters hold now (only
    when its optimizer keeps two sets; otherwise ``state`` unchanged)."""
    optimizer = _two_weight_optimizer(model)
    if optimizer is None:
        return state
    if not hasattr(state, "_metadata"):  # a plain dict (gathered weights) takes no attribute
        state = collections.OrderedDict(state)
        state._metadata = collections.OrderedDict({"": {}})  # type: ignore[attr-defined]
    root = state._metadata.setdefault("", {})  # type: ignore[attr-defined]
    root[WEIGHTS_KEY] = "eval" if optimizer.holds_eval_weights else "train"
    return state


def weights_kind(state: Any, source: str) -> Optional[str]:
    """Which weights ``state`` says it holds: ``"train"``, ``"eval"`` or None
    (a file that does not say)."""
    metadata = getattr(state, "_metadata", None)
    root = metadata.get("") if isinstance(metadata, dict) else None
    kind = root.get(WEIGHTS_KEY) if isinstance(root, dict) else None
    if kind is not None and kind not in _WEIGHT_KINDS:
        raise ValueError(f"The weights in {source} say they hold {kind!r} weights; expected "
                         f"one of {list(_WEIGHT_KINDS)}.")
    return kind


@torch.no_grad()
def load_tagged_state(model: nn.Module, state: Dict[str, Any], kind: Optional[str],
                      strict: bool = True) -> None:
    """Load checked weights into ``model``, where ``kind`` says they belong.

    Without an optimizer that keeps evaluation weights this is
    ``load_state_dict``. With one, the optimizer keeps the set it holds now
    and the other one follows from its state: training weights (``kind``
    "train", or a file that does not say) become ``y`` (and, when the
    optimizer holds its evaluation weights, the parameters the ``x`` they
    imply); evaluation weights become ``x`` and the training weights the
    ``y = (1 - beta_1) z + beta_1 x`` they imply.
    """
    optimizer = _two_weight_optimizer(model)
    if optimizer is None:
        model.load_state_dict(state, strict=strict)
        return
    held_eval = optimizer.holds_eval_weights
    if held_eval:
        optimizer.train()  # from a known point: the parameters hold y
    if kind == "eval":
        optimizer.eval()
        model.load_state_dict(state, strict=strict)
        optimizer.rebase_train_weights()
        if not held_eval:
            optimizer.train()
        return
    model.load_state_dict(state, strict=strict)
    if held_eval:
        optimizer.eval()


def _weights_from(archive: Any, filepath: str) -> Dict[str, Any]:
    if isinstance(archive, dict) and archive.get("format") == MODEL_FORMAT:
        archive = archive.get("weights")
    if not isinstance(archive, dict) or not all(isinstance(k, str) for k in archive):
        raise ValueError(
            f"The file {filepath} does not hold model weights. Expected a state dict "
            "(str keys → tensors) or a file written by model.save(); received a "
            f"{type(archive).__name__}."
        )
    return archive


def check_state_dict(model: nn.Module, state: Dict[str, Any], source: str,
                     skip_mismatch: bool = False) -> Dict[str, Any]:
    """Compare ``state`` with the model's state dict; clear errors on any difference.

    Returns the entries to load (all of them, or with ``skip_mismatch`` only
    those whose shape matches).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"The weights in {source} do not belong to this model "
            f"({type(model).__name__}). Missing keys (in the model, not in the file): "
            f"{short_list(missing)}. Unexpected keys (in the file, not in the model): "
            f"{short_list(unexpected)}."
        )
    mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = []
    for key, value in own.items():
        loaded = state[key]
        if not isinstance(loaded, torch.Tensor):
            raise ValueError(f"The weights in {source} hold a {type(loaded).__name__} for "
                             f"key {key!r}; expected a tensor.")
        if tuple(loaded.shape) != tuple(value.shape):
            mismatched.append((key, tuple(value.shape), tuple(loaded.shape)))
    if mismatched and not skip_mismatch:
        details = "; ".join(f"{k}: model {m}, file {f}" for k, m, f in mismatched[:_LIST_LIMIT])
        more = f"; ... and {len(mismatched) - _LIST_LIMIT} more" if len(mismatched) > _LIST_LIMIT else ""
        raise ValueError(
            f"The weights in {source} have shapes that do not match this model "
            f"({type(model).__name__}), which was built with other sizes: {details}{more}. "
            "Pass skip_mismatch=True to load only the matching weights."
        )
    if mismatched:
        warnings.warn(f"Skipped {len(mismatched)} weights whose shapes do not match: "
                      f"{short_list([k for k, _, _ in mismatched])}.", stacklevel=3)
        skipped = {k for k, _, _ in mismatched}
        return {k: v for k, v in state.items() if k not in skipped}
    return state


def load_weights(model: Any, filepath: Any, skip_mismatch: bool = False,
                 map_location: Any = "cpu") -> None:
    """Load weights written by ``save_weights`` or ``save_model`` (or any plain
    ``torch.save(model.state_dict())`` file) into ``model``, in place."""
    check_model(model)
    filepath = check_path(filepath)
    check_bool(skip_mismatch, "skip_mismatch")
    state = _weights_from(read_checkpoint(filepath, map_location=map_location), filepath)
    kind = weights_kind(state, filepath)
    state = check_state_dict(model, state, filepath, skip_mismatch)
    load_tagged_state(model, state, kind, strict=not skip_mismatch)
