"""Collectives over results: metric states, agreement, predicted rows.

Metrics are combined by their *states* (``metric.variables`` all-reduced with
``metric.state_reduce_ops``), never by averaging per-process results; a
placeholder batch's effect on them is undone with each metric's
``get_state()``/``set_state()``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from .errors import _received
from .process_group import _comm_device, _dist, is_initialized


def all_processes_agree(flag: bool) -> bool:
    """True only if ``flag`` is True on every process (a collective; ``flag`` on
    a single process). The train step uses it so that a loss that is not finite
    on one process makes every process skip the step (``nan_policy``)."""
    if not (is_initialized() and _dist().get_world_size() > 1):
        return bool(flag)
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_comm_device())
    _dist().all_reduce(value, op=_dist().ReduceOp.MIN)
    return bool(value.item())


def _gather_rows(leaf: np.ndarray, counts: List[int], comm: torch.device) -> np.ndarray:
    """All-gather the rows of one output leaf (padded to the longest, then cut)."""
    dist = _dist()
    is_bool = leaf.dtype == np.bool_
    tensor = torch.from_numpy(np.ascontiguousarray(leaf.astype(np.uint8) if is_bool else leaf))
    longest = max(counts)
    if tensor.shape[0] < longest:
        pad = torch.zeros((longest - tensor.shape[0],) + tuple(tensor.shape[1:]), dtype=tensor.dtype)
        tensor = torch.cat([tensor, pad])
    tensor = tensor.to(comm)
    pieces = [torch.empty_like(tensor) for _ in counts]
    dist.all_gather(pieces, tensor)
    joined = torch.cat([p[:n] for p, n in zip(pieces, counts)]).cpu().numpy()
    return joined.astype(np.bool_) if is_bool else joined


def _no_rows(value: Any) -> Any:
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim:
        return value[:0]
    return value


def _leaf_metrics(model: Any) -> List[Any]:
    """``model.metrics`` with containers (``compile_metrics``) expanded."""
    found: List[Any] = []
    for metric in getattr(model, "metrics", []):
        inner = getattr(metric, "metrics", None)
        found.extend(inner if isinstance(inner, list) else [metric])
    return found


def _state_metrics(model: Any) -> List[Any]:
    return [m for m in _leaf_metrics(model) if hasattr(m, "variables")
            and hasattr(m, "state_reduce_ops")]


_REDUCE_OPS = {"sum": "SUM", "mean": "SUM", "max": "MAX", "min": "MIN"}


def metrics_result(model: Any) -> Dict[str, Any]:
    """``model.get_metrics_result()`` computed from the states of every process.

    Each metric's ``variables`` are all-reduced (one collective per reduce op
    and dtype) with its ``state_reduce_ops``; the results are computed from
    the combined states, then every process's own states are put back, so
    accumulation goes on locally. A collective: call it on every process.
    On a single process it is ``model.get_metrics_result()``.
    """
    if not hasattr(model, "get_metrics_result"):
        raise TypeError(
            "Argument `model` must be a keras-style model (with get_metrics_result). "
            f"Received: {_received(model)}."
        )
    if not (is_initialized() and _dist().get_world_size() > 1):
        return model.get_metrics_result()
    dist = _dist()
    comm = _comm_device()
    world = dist.get_world_size()
    groups: Dict[Tuple[str, str], List[torch.Tensor]] = {}
    for metric in _state_metrics(model):
        for value, op in zip(metric.variables, metric.state_reduce_ops):
            if op in _REDUCE_OPS:
                groups.setdefault((op, str(value.dtype)), []).append(value)
    saved: List[Tuple[torch.Tensor, torch.Tensor]] = []
    with torch.no_grad():
        try:
            for (op, _), tensors in sorted(groups.items()):
                flat = torch.cat([t.detach().reshape(-1).to(comm) for t in tensors])
                wire = flat.to(torch.int64) if flat.dtype == torch.bool else flat
                dist.all_reduce(wire, op=getattr(dist.ReduceOp, _REDUCE_OPS[op]))
                if op == "mean":
                    wire = wire / world
                offset = 0
                for t in tensors:
                    saved.append((t, t.detach().clone()))
                    n = t.numel()
                    t.copy_(wire[offset:offset + n].view(t.shape).to(t.dtype))
                    offset += n
            results = model.get_metrics_result()
            results = {k: v.detach().clone() if isinstance(v, torch.Tensor) else v
                       for k, v in results.items()}
        finally:
            for t, local in saved:
                t.copy_(local)
    return results


def _save_metric_states(model: Any) -> Dict[int, Tuple[Any, Any]]:
    """Each metric's ``get_state()``, to undo a placeholder batch."""
    return {id(metric): (metric, metric.get_state()) for metric in _leaf_metrics(model)
            if callable(getattr(metric, "get_state", None))}


def _restore_metric_states(model: Any, saved: Dict[int, Tuple[Any, Any]]) -> None:
    """Undo a placeholder batch: states as saved; metrics built by it start empty."""
    with torch.no_grad():
        for metric in _leaf_metrics(model):
            entry = saved.get(id(metric))
            if entry is None:
                metric.reset_state()
            else:
                metric.set_state(entry[1])
