"""Whether a stored optimizer state fits an optimizer, checked before anything
is loaded (``load_model`` and ``BackupAndRestore``).

torch's ``Optimizer.load_state_dict`` only compares the number of param
groups and their sizes: Adam's state loads into SGD, which then steps with
Adam's learning rate or fails with a ``KeyError`` at the next step. Files
now record the optimizer's identity; for older files the param groups'
hyper-parameter names tell optimizer kinds apart.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .compile_args import optimizer_identity


def _param_groups(state: Any) -> Optional[List[Dict[str, Any]]]:
    """The ``param_groups`` of an optimizer state dict (a loss-scale wrapper's
    ``{"inner", "scaler"}`` unwrapped); None when it has none."""
    if isinstance(state, dict) and isinstance(state.get("inner"), dict):
        state = state["inner"]
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if isinstance(groups, list) and all(isinstance(g, dict) for g in groups):
        return groups
    return None


def _hyper_parameters(group: Dict[str, Any]) -> set:
    return {key for key in group if key != "params"}


def check_optimizer_state(optimizer: Any, state: Any, saved_identity: Optional[str],
                          source: str) -> None:
    """``ValueError`` naming both optimizers when ``state`` (from ``source``)
    was written by another kind of optimizer than ``optimizer``, or has other
    param groups; nothing is changed either way."""
    current = optimizer_identity(optimizer)
    advice = ("Compile the model with the optimizer that wrote the file, or load it into "
              "an uncompiled model (load_model compiles it with the saved optimizer).")
    if saved_identity is not None and saved_identity != current:
        raise ValueError(f"The optimizer state in {source} does not fit the model's optimizer: "
                         f"it was written by {saved_identity}; the model's optimizer is "
                         f"{current}. {advice}")
    saved_groups = _param_groups(state)
    own_groups = _param_groups(optimizer.state_dict())
    if saved_groups is None or own_groups is None:
        if saved_groups is not own_groups:  # one has param groups, the other not
            raise ValueError(f"The optimizer state in {source} does not fit the model's "
                             f"optimizer ({current}): one of them has no param groups. {advice}")
        return
    saved_sizes = [len(g.get("params", [])) for g in saved_groups]
    own_sizes = [len(g.get("params", [])) for g in own_groups]
    if saved_sizes != own_sizes:
        raise ValueError(f"The optimizer state in {source} does not fit the model's optimizer "
                         f"({current}): its param groups have sizes {saved_sizes}, the "
                         f"optimizer's {own_sizes}.")
    for saved, own in zip(saved_groups, own_groups):
        theirs, ours = _hyper_parameters(saved), _hyper_parameters(own)
        # One set holding the other is the same optimizer across versions
        # (torch adds defaults); neither holding the other is another optimizer.
        if not (theirs <= ours or ours <= theirs):
            raise ValueError(
                f"The optimizer state in {source} does not fit the model's optimizer "
                f"({current}): it was written by another optimizer, with hyper-parameters "
                f"{sorted(theirs - ours)} where the model's has {sorted(ours - theirs)}. {advice}")
