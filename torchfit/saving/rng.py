"""Snapshots of the Python, NumPy and torch RNG states (used by ``BackupAndRestore``)."""

from __future__ import annotations

import random
import warnings
from typing import Any, Dict

import numpy as np
import torch


def get_rng_state() -> Dict[str, Any]:
    """Python, NumPy (global), torch CPU and CUDA generator states, as tensors and
    plain values (storable with ``torch.save`` and loadable with weights_only)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: Dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def check_rng_state(state: Any, source: str) -> None:
    """``ValueError`` unless ``state`` has the layout :func:`get_rng_state` writes
    (checked before a restore changes anything)."""
    own = get_rng_state()
    try:
        version, internal, _ = state["python"]
        numpy_state = state["numpy"]
        layout_ok = (
            version == own["python"][0] and len(internal) == len(own["python"][1])
            and all(isinstance(v, int) for v in internal)
            and numpy_state["bit_generator"] == own["numpy"]["bit_generator"]
            and isinstance(numpy_state["key"], torch.Tensor)
            and numpy_state["key"].shape == own["numpy"]["key"].shape
            and isinstance(numpy_state["pos"], int)
            and isinstance(state["torch"], torch.Tensor)
            and state["torch"].dtype == own["torch"].dtype
            and state["torch"].shape == own["torch"].shape
        )
    except (KeyError, TypeError, ValueError, IndexError):
        layout_ok = False
    if not layout_ok:
        raise ValueError(f"{source} holds no valid RNG state (Python, NumPy and torch generator "
                         "states as get_rng_state() writes them). The file is damaged or was "
                         "written by another program.")


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state({
        "bit_generator": np_state["bit_generator"],
        "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
        "has_gauss": np_state["has_gauss"],
        "gauss": np_state["gauss"],
    })
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            warnings.warn(f"The CUDA RNG state was saved for {len(cuda)} devices and this "
                          f"machine has {torch.cuda.device_count()}; it was not restored.",
                          stacklevel=2)
