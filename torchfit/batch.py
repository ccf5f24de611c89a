"""Everything one batch needs, from the loop's hands to the model and back.

A batch reaches a step as Keras packs it (:func:`pack_x_y_sample_weight`), on
the model's device and dtype (:func:`move_to`); the step unpacks it
(:func:`unpack_x_y_sample_weight`), calls the model (:func:`call_model`) and
counts its samples (:func:`batch_size_of`); ``predict`` concatenates the
outputs of all batches (:func:`concat_outputs`). :func:`run_step` runs one
step and explains the errors a batch can cause.

A leaf module: it imports only ``tree``, ``logs``, ``validation`` and torch,
so the data adapters, the loop, the module and the distributed session all
import from here and never from each other for these helpers.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import torch
from torch import nn

from . import tree
from .logs import tensor_to_numpy
from .validation import integer_input_error

__all__ = [
    "ROUTES", "Batch", "batch_size_of", "call_model", "check_output_rows", "concat_outputs",
    "is_placed", "model_device_and_dtype", "move_to", "pack_x_y_sample_weight", "run_step",
    "unpack_x_y_sample_weight",
]

#: One batch as adapters yield it: ``(x, y, sample_weight)``, ``y``/``sample_weight`` may be None.
Batch = Tuple[Any, Any, Any]

#: ``id(model) -> callable`` while a distributed train step runs (set by
#: ``distributed/session.py``): :func:`call_model` calls the model through it,
#: so DDP's hooks see the forward.
ROUTES: Dict[int, Callable] = {}


# ------------------------------------------------------------- pack / unpack
def unpack_x_y_sample_weight(data: Any) -> Batch:
    """Split one element of an iterator-like input into ``(x, y, sample_weight)``.

    Tuples (and lists) of length 1, 2 or 3 are unpacked; anything else,
    including a dict, is ``x`` alone. Namedtuples are ambiguous and rejected.
    """
    if tree.is_namedtuple(data):
        raise ValueError(
            "Each batch of the input data must be a tuple (x,), (x, y) or "
            "(x, y, sample_weight); a namedtuple is ambiguous (is it x, or "
            f"x/y/sample_weight by position?). Received: a {type(data).__name__} "
            f"with fields {data._fields}. Convert it to a plain tuple."
        )
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data[0], data[1], data[2]
    raise ValueError(
        "Each batch of the input data must be a tuple (x,), (x, y) or "
        f"(x, y, sample_weight). Received: a tuple of length {len(data)}."
    )


def pack_x_y_sample_weight(x: Any, y: Any = None, sample_weight: Any = None) -> Any:
    """The batch a step receives, packed as Keras packs it: ``x`` alone (or
    ``(x,)`` when ``x`` is a tuple/list), ``(x, y)``, or ``(x, y, sample_weight)``,
    so that ``x, y = data`` works in a custom ``train_step``."""
    if y is None:
        return (x,) if isinstance(x, (tuple, list)) else x
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


# ------------------------------------------------------------------ placement
def model_device_and_dtype(model: nn.Module) -> tuple:
    """Device of the first parameter (or buffer) and the model's floating dtype."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    first = next(tensors, None)
    if first is None:
        return torch.device("cpu"), torch.get_default_dtype()
    floating = first if first.is_floating_point() else next(
        (t for t in tensors if t.is_floating_point()), None)
    return first.device, floating.dtype if floating is not None else torch.get_default_dtype()


def _place(device: torch.device, dtype: torch.dtype, leaf: Any) -> Any:
    """One leaf of :func:`move_to`."""
    if not isinstance(leaf, torch.Tensor):
        if not isinstance(leaf, np.ndarray):
            return leaf
        leaf = torch.from_numpy(np.ascontiguousarray(leaf))
    if leaf.is_floating_point() and leaf.dtype != dtype:
        return leaf.to(device=device, dtype=dtype, non_blocking=device.type == "cuda")
    if leaf.device != device:
        return leaf.to(device, non_blocking=device.type == "cuda")
    return leaf


def move_to(structure: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """Tensors (and NumPy arrays) to ``device``; floating ones to ``dtype``;
    other leaves untouched."""
    if isinstance(structure, torch.Tensor):  # the usual single input: no walk
        return _place(device, dtype, structure)
    return tree.map_structure(functools.partial(_place, device, dtype), structure)


def is_placed(structure: Any, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``move_to(structure, device, dtype)`` would return every leaf as it is."""
    for leaf in tree.flatten(structure):
        if leaf is None:
            continue
        if not isinstance(leaf, torch.Tensor) or leaf.device != device:
            return False
        if leaf.is_floating_point() and leaf.dtype != dtype:
            return False
    return True


# ---------------------------------------------------------------- the model
def call_model(model: nn.Module, x: Any) -> Any:
    """Keras's calling convention on torch: tensor → ``m(x)``, sequence → ``m(*x)``, dict → ``m(**x)``."""
    if ROUTES:  # a distributed train step: the forward goes through the DDP wrapper
        model = ROUTES.get(id(model), model)
    if isinstance(x, dict):
        return model(**x)
    if isinstance(x, (list, tuple)):
        return model(*x)
    return model(x)


def batch_size_of(x: Any) -> int:
    """Samples in a batch (or in its inputs): the first dimension of the first leaf."""
    leaf = x
    while type(leaf) in (tuple, list) and leaf:  # (x, y, sample_weight): no tree walk per step
        leaf = leaf[0]
    if not isinstance(leaf, torch.Tensor):
        leaf = tree.first_leaf(x)
    return int(leaf.shape[0]) if isinstance(leaf, torch.Tensor) and leaf.ndim else 1


# ------------------------------------------------------------------ outputs
def check_output_rows(outputs: Any, batch: Any) -> None:
    """Predictions are concatenated along dim 0: each output needs one row per sample."""
    if (isinstance(outputs, torch.Tensor) and isinstance(batch, torch.Tensor)  # the usual case
            and outputs.ndim and batch.ndim and outputs.shape[0] == batch.shape[0]):
        return
    expected = batch_size_of(batch)
    for leaf in tree.flatten(outputs):
        rows = leaf.shape[0] if isinstance(leaf, torch.Tensor) and leaf.ndim else None
        if rows != expected:
            raise ValueError(
                "Argument `x`: the model must return one output row per input sample so "
                f"that predictions can be concatenated. Expected {expected} rows for this "
                f"batch, received an output of shape "
                f"{tuple(leaf.shape) if isinstance(leaf, torch.Tensor) else type(leaf).__name__}."
            )


def concat_outputs(batches: List[Any]) -> Any:
    """Concatenate per-batch outputs leaf-wise, then convert to NumPy once."""
    first = batches[0]
    flat = [tree.flatten(b) for b in batches]
    joined = [torch.cat([f[i] for f in flat]) if isinstance(flat[0][i], torch.Tensor)
              else np.concatenate([np.asarray(f[i]) for f in flat]) for i in range(len(flat[0]))]
    as_numpy = [tensor_to_numpy(j) if isinstance(j, torch.Tensor) else j for j in joined]
    return tree.pack_sequence_as(first, as_numpy)


# ------------------------------------------------------------ running a step
def describe_inputs(x: Any) -> str:
    """Shapes and dtypes of a batch's inputs, in their structure (for messages)."""
    if isinstance(x, torch.Tensor):
        return f"shape {tuple(x.shape)} {str(x.dtype).replace('torch.', '')}"
    if isinstance(x, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe_inputs(v)}" for k, v in x.items()) + "}"
    if isinstance(x, (list, tuple)):
        return "(" + ", ".join(describe_inputs(v) for v in x) + ")"
    return type(x).__name__


def raised_in_forward(error: BaseException, model: Any) -> bool:
    """Whether ``error`` came out of calling ``model`` (its traceback passes the
    module call of ``model`` itself); read only once a step has failed."""
    trace = error.__traceback__
    while trace is not None:
        frame = trace.tb_frame
        if frame.f_code.co_name == "_wrapped_call_impl" and frame.f_locals.get("self") is model:
            return True
        trace = trace.tb_next
    return False


def note_forward_error(error: BaseException, model: Any, batch: Any, argument: str) -> None:
    """Add a note naming the batch's inputs and their argument to an error the
    model's forward raised (the exception type stays the same)."""
    if raised_in_forward(error, model) and hasattr(error, "add_note"):
        x, _, _ = unpack_x_y_sample_weight(batch)
        error.add_note(
            f"[torchfit] The model's forward raised on a batch from argument `{argument}` "
            f"with inputs {describe_inputs(x)}."
        )


def run_step(step_fn: Callable[[Any], Any], batch: Any, model: Any = None,
             argument: str = "x") -> Any:
    """Run one step; an out-of-memory error says which batch size caused it, a
    dtype failure on an integer ``x`` says that only floating inputs are cast, and
    an error of the model's forward names the batch's inputs and ``argument``."""
    try:
        return step_fn(batch)
    except torch.OutOfMemoryError as error:
        size = batch_size_of(batch)
        raise torch.OutOfMemoryError(
            f"{error}\n[torchfit] Out of memory on a batch of {size} samples. Hint: lower "
            "`batch_size`, use a 'mixed_bfloat16'/'mixed_float16' dtype policy, or free "
            "cached memory (torch.cuda.empty_cache())."
        ) from error
    except Exception as error:
        explained = integer_input_error(error, batch[0] if isinstance(batch, tuple) else batch)
        if explained is not None:
            raise explained from error
        if model is not None:
            note_forward_error(error, model, batch, argument)
        raise
