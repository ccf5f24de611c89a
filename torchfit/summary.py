"""``summary()``: a Keras-style table of a model's layers and parameter counts."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from . import state as training_state
from .batch import call_model, model_device_and_dtype, move_to
from .data.arrays import convert_structure, is_array_structure
from .optimizers._unwrap import unwrap_loss_scale
from .utils.training_mode import training_mode
from .validation import _received, check_bool, check_model, short_list


def _readable_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _shape_text(value: Any, batch_size: Optional[int]) -> str:
    """Shapes as Keras prints them: a leading dimension equal to the batch size is ``None``."""
    if isinstance(value, torch.Tensor):
        dims: List[Any] = list(value.shape)
        if dims and batch_size is not None and dims[0] == batch_size:
            dims[0] = None
        return str(tuple(dims))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shape_text(v, batch_size) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shape_text(v, batch_size)}" for k, v in value.items()) + "}"
    return type(value).__name__


def _first_tensor(values: Any) -> Optional[torch.Tensor]:
    for value in values:
        if isinstance(value, torch.Tensor):
            return value
        if isinstance(value, (list, tuple, dict)):
            found = _first_tensor(value.values() if isinstance(value, dict) else value)
            if found is not None:
                return found
    return None


class OutputShapeRecorder:
    """Forward hooks, while the context is open, that record each submodule's
    output shapes (``{qualified name: [shape text, ...]}``, one text per
    distinct shape). The batch size is read from the model's first tensor
    argument, so that the batch dimension shows as ``None``."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.shapes: Dict[str, List[str]] = {}
        self.batch_size: Optional[int] = None
        self._handles: List[Any] = []

    def __enter__(self) -> "OutputShapeRecorder":
        try:
            self._handles.append(self.model.register_forward_pre_hook(self._read_batch_size,
                                                                      with_kwargs=True))
            # remove_duplicate=False: a module shared by two parents is recorded under both names.
            for name, module in self.model.named_modules(remove_duplicate=False):
                if name:
                    self._handles.append(module.register_forward_hook(self._hook_for(name)))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _read_batch_size(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        if self.batch_size is None:
            tensor = _first_tensor(list(args) + list(kwargs.values()))
            if tensor is not None and tensor.ndim:
                self.batch_size = int(tensor.shape[0])

    def _hook_for(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            text = _shape_text(output, self.batch_size)
            seen = self.shapes.setdefault(name, [])
            if text not in seen:
                seen.append(text)

        return hook


def records_shapes_on_first_call(model: nn.Module, step: Callable[[Any], Any], state: Any) -> Callable[[Any], Any]:
    """``step`` (an eager step function), whose first successful call records the
    output shapes of the model's submodules in ``state.output_shapes`` (read by
    ``summary()``). The hooks live for that one call only; later calls go
    straight to ``step``."""

    def first_call_records_shapes(data: Any) -> Any:
        if state.output_shapes is not None:
            return step(data)
        with OutputShapeRecorder(model) as recorder:
            result = step(data)
        state.output_shapes = recorder.shapes
        return result

    return first_call_records_shapes


def _count(tensors: Any) -> Tuple[int, int]:
    numel = 0
    size = 0
    for tensor in tensors:
        numel += tensor.numel()
        size += tensor.numel() * tensor.element_size()
    return numel, size


def _rows(model: nn.Module, expand_nested: bool) -> List[Tuple[str, int, nn.Module]]:
    """(name, depth, module) for each displayed module, in registration order."""
    rows: List[Tuple[str, int, nn.Module]] = []

    def walk(module: nn.Module, prefix: str, depth: int) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            rows.append((full, depth, child))
            if expand_nested:
                walk(child, f"{full}.", depth + 1)

    walk(model, "", 0)
    return rows


def _fit_text(text: str, width: int) -> List[str]:
    """Wrap ``text`` into lines of at most ``width`` characters."""
    width = max(width, 1)
    return [text[i:i + width] for i in range(0, len(text), width)] or [""]


def summary(model: Any, line_length: Optional[int] = None, positions: Optional[Sequence[float]] = None,
            print_fn: Optional[Callable[[str], Any]] = None, expand_nested: bool = False,
            show_trainable: bool = False, layer_range: Optional[Sequence[str]] = None,
            sample_input: Any = None) -> None:
    """Print a Keras-style table of the model's layers and parameter counts.

    Rows are the direct submodules (all nested ones, indented, with
    ``expand_nested=True``): name and type, output shape and parameter count
    (parameters and floating-point buffers, as Keras counts its weights).
    Output shapes are those of the first batch the model ran in ``fit``,
    ``evaluate``, ``predict`` or a ``*_on_batch`` method (recorded by forward
    hooks during that one eager step, then removed), or of ``sample_input``
    when it is given: the model is then run once on it (eval mode, no
    gradients; the model's mode is restored), called like in ``fit`` (a tuple
    as ``model(*x)``, a dict as ``model(**x)``). Before either, and for steps
    compiled with ``jit_compile``, shapes show as ``?``; a submodule the
    forward pass did not use shows ``-``. As in Keras, the batch dimension is
    ``None``. Totals count trainable parameters, and as non-trainable the
    frozen parameters and floating-point buffers (e.g. BatchNorm statistics),
    with their memory.

    Args:
        line_length: total width of the table (default 80, 98 with trainable column).
        positions: column ends, as fractions of ``line_length`` or absolute widths.
        print_fn: called once with the whole table (default ``print``).
        expand_nested: list nested submodules too.
        show_trainable: add a column saying whether each row is trainable.
        layer_range: ``[first_name, last_name]``: show only the rows between them.
        sample_input: an example batch (what ``fit`` takes as ``x``), to show
            output shapes before training or for another input size.
    """
    check_model(model)
    _check_line_length(line_length)
    if print_fn is not None and not callable(print_fn):
        raise TypeError(f"Argument `print_fn` must be callable or None. Received: "
                        f"{_received(print_fn)}.")
    check_bool(expand_nested, "expand_nested")
    check_bool(show_trainable, "show_trainable")
    line_length, ends = _column_ends(line_length, positions, show_trainable)
    rows = _rows(model, expand_nested)
    if layer_range is not None:
        rows = _rows_in_range(rows, layer_range)
    state = training_state.of(model)
    shapes: Optional[Dict[str, List[str]]] = state.settings.output_shapes if state else None
    if sample_input is not None:
        shapes = _output_shapes(model, sample_input)
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Trainable"] if show_trainable else [])
    widths = [b - a for a, b in zip([0] + ends, ends)]
    lines = [f'Model: "{type(model).__name__}"', _rule(widths, "┏", "┳", "┓", "━")]
    lines += [s.replace("│", "┃") for s in _row_lines(headers, widths, "│")]
    lines.append(_rule(widths, "┡", "╇", "┩", "━"))
    for cells in _table(model, rows, shapes, show_trainable):
        lines += _row_lines(cells, widths, "│")
    lines.append(_rule(widths, "└", "┴", "┘", "─"))
    lines += _totals(model, state.compiled.optimizer if state is not None else None)
    (print_fn or print)("\n".join(lines))


def _check_line_length(line_length: Any) -> None:
    if line_length is not None and (isinstance(line_length, bool) or not isinstance(line_length, int)
                                    or line_length < 20):
        raise TypeError(
            f"Argument `line_length` must be an integer >= 20 or None. Received: "
            f"{_received(line_length)}. (To show output shapes, pass the example input as "
            "sample_input=...)")


def _column_ends(line_length: Optional[int], positions: Any,
                 show_trainable: bool) -> Tuple[int, List[int]]:
    """The table width and the end of each column, in characters."""
    columns = 4 if show_trainable else 3
    line_length = line_length or (98 if show_trainable else 80)
    if positions is None:
        positions = [0.45, 0.84, 1.0] if not show_trainable else [0.4, 0.72, 0.88, 1.0]
    if (not isinstance(positions, (list, tuple)) or len(positions) != columns
            or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in positions)):
        raise ValueError(f"Argument `positions` must be a list of {columns} numbers (column ends). "
                         f"Received: {_received(positions)}.")
    if all(p <= 1 for p in positions):
        ends = [int(line_length * p) for p in positions]
    else:
        ends = [int(p) for p in positions]
    if any(b <= a for a, b in zip([0] + ends, ends)):
        raise ValueError(f"Argument `positions` must be increasing. Received: {list(positions)}.")
    return line_length, ends


def _rows_in_range(rows: List[Tuple[str, int, nn.Module]],
                   layer_range: Any) -> List[Tuple[str, int, nn.Module]]:
    """The rows from ``layer_range[0]`` to ``layer_range[1]``, both included."""
    if (not isinstance(layer_range, (list, tuple)) or len(layer_range) != 2
            or not all(isinstance(n, str) for n in layer_range)):
        raise ValueError("Argument `layer_range` must be a list of two layer names "
                         f"[first, last]. Received: {_received(layer_range)}.")
    names = [name for name, _, _ in rows]
    for name in layer_range:
        if name not in names:
            raise ValueError(f"Argument `layer_range`: no layer named {name!r}. "
                             f"Layers: {short_list(names)}.")
    first, last = names.index(layer_range[0]), names.index(layer_range[1])
    if last < first:
        raise ValueError("Argument `layer_range` must list the first layer before the "
                         f"last one. Received: {list(layer_range)}.")
    return rows[first:last + 1]


def _trainable_text(flags: List[bool]) -> str:
    """The Trainable column: ``-`` (no parameters), ``Y``, ``N`` or ``partial``."""
    if not flags:
        return "-"
    return "Y" if all(flags) else "N" if not any(flags) else "partial"


def _table(model: nn.Module, rows: List[Tuple[str, int, nn.Module]],
           shapes: Optional[Dict[str, List[str]]], show_trainable: bool) -> List[List[str]]:
    """The cells of each submodule row, then of each parameter of the model itself."""
    table: List[List[str]] = []
    for name, depth, module in rows:
        params = list(module.parameters())
        weights = params + [b for b in module.buffers() if b.is_floating_point()]
        cells = [
            "  " * depth + f"{name} ({type(module).__name__})",
            "?" if shapes is None else " / ".join(shapes.get(name, [])) or "-",
            f"{sum(w.numel() for w in weights):,}",
        ]
        if show_trainable:
            cells.append(_trainable_text([p.requires_grad for p in params]))
        table.append(cells)
    for name, parameter in model.named_parameters(recurse=False):
        cells = [f"{name} (Parameter)", str(tuple(parameter.shape)), f"{parameter.numel():,}"]
        if show_trainable:
            cells.append(_trainable_text([parameter.requires_grad]))
        table.append(cells)
    return table


def _rule(widths: List[int], left: str, mid: str, right: str, fill: str) -> str:
    """A horizontal line of the table."""
    return left + mid.join(fill * (w - 1) for w in widths) + right


def _row_lines(cells: List[str], widths: List[int], sep: str) -> List[str]:
    """One table row, its cells wrapped to their columns (the count right-aligned)."""
    wrapped = [_fit_text(c, w - 3) for c, w in zip(cells, widths)]
    out = []
    for i in range(max(len(w) for w in wrapped)):
        parts = []
        for j, (lines, w) in enumerate(zip(wrapped, widths)):
            text = lines[i] if i < len(lines) else ""
            parts.append(" " + (text.rjust(w - 3) if j == 2 else text.ljust(w - 3)) + " ")
        out.append(sep + sep.join(parts) + sep)
    return out


def _totals(model: nn.Module, optimizer: Any) -> List[str]:
    """The parameter counts (and optimizer state) under the table, with their memory."""
    all_params = list(model.parameters())
    trainable_count, trainable_size = _count(p for p in all_params if p.requires_grad)
    frozen = [p for p in all_params if not p.requires_grad]
    buffers = [b for _, b in model.named_buffers() if b.is_floating_point()]
    frozen_count, frozen_size = _count(frozen + buffers)
    total_count = trainable_count + frozen_count
    lines = [f" Total params: {total_count:,} ({_readable_size(trainable_size + frozen_size)})",
             f" Trainable params: {trainable_count:,} ({_readable_size(trainable_size)})",
             f" Non-trainable params: {frozen_count:,} ({_readable_size(frozen_size)})"]
    optimizer = unwrap_loss_scale(optimizer)
    if optimizer is not None and getattr(optimizer, "state", None):
        tensors = [v for s in optimizer.state.values() if isinstance(s, dict)
                   for v in s.values() if isinstance(v, torch.Tensor)]
        count, size = _count(tensors)
        if count:
            lines.append(f" Optimizer params: {count:,} ({_readable_size(size)})")
    return lines


def _output_shapes(model: nn.Module, sample_input: Any) -> Dict[str, List[str]]:
    """Run ``sample_input`` through the model once (eval mode, no gradients) and
    record its submodules' output shapes."""
    if isinstance(sample_input, np.ndarray) or (
            isinstance(sample_input, (list, tuple, dict)) and not isinstance(sample_input, str)):
        if is_array_structure(sample_input):
            sample_input = convert_structure(sample_input, "sample_input")
    if not isinstance(sample_input, (torch.Tensor, list, tuple, dict)):
        raise TypeError("Argument `sample_input` must be a tensor, a NumPy array, or a "
                        "tuple/list/dict of them (one example batch). Received: "
                        f"{_received(sample_input)}.")
    device, dtype = model_device_and_dtype(model)
    batch = move_to(sample_input, device, dtype)
    try:
        with training_mode(model, False), torch.no_grad(), OutputShapeRecorder(model) as recorder:
            call_model(model, batch)
    except Exception as error:
        raise ValueError(
            f"Argument `sample_input` could not be passed through the model "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}). "
            "Expected one example batch in the format fit() takes as `x`."
        ) from error
    return recorder.shapes
