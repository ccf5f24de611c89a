"""The ``Metric`` base class and the tensor helpers every metric shares.

A metric is a plain Python object holding a few accumulator tensors ("states").
It is deliberately *not* an ``nn.Module``: assigning one to a model attribute
must never register its states as buffers of the model.

State rules, relied on by the training loop:

* ``variables`` lists the state tensors in creation order and
  ``state_reduce_ops`` gives, for each of them, the op ("sum" for every
  built-in metric) with which per-process copies combine into the global
  state, e.g. ``dist.all_reduce(v, op=SUM)`` for each ``v`` in ``variables``
  before calling ``result()``.
* States follow the data: ``update_state`` moves them to the device of the
  incoming ``y_pred``/values tensor before accumulating (``to(device)`` does
  it explicitly).
* ``update_state`` only issues device work: no ``.item()``, no ``.cpu()``, no
  Python control flow on tensor values. It runs under ``torch.no_grad()`` and
  updates states in place, so the tensors in ``variables`` stay the same
  objects between updates (device moves and ``assign_variables`` aside).
* ``get_state()`` returns detached copies of the states and ``set_state()``
  takes them back (all or nothing): backups (``saving/run_state.py``) and
  distributed runs (``distributed/reduction.py``) snapshot metrics only
  through them. A metric that creates its states on the first batch
  (``_built``) overrides ``_build_like`` so that a fresh one can take the
  state of a built one.
"""

from __future__ import annotations

import collections
import functools
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

# The same rank rule as the losses: one implementation serves both.
from .. import naming
from ..losses._utils import squeeze_or_expand_to_same_rank
from ..naming import to_snake_case
from ..validation import _received
from .pending import PendingSum

__all__ = [
    "Metric",
    "EPSILON",
    "auto_name",
    "to_snake_case",
    "to_tensor",
    "standardize_dtype",
    "squeeze_or_expand_to_same_rank",
    "divide_no_nan",
    "get_mask",
    "apply_mask",
]

# ``keras.backend.epsilon()``.
EPSILON = 1e-7

REDUCE_OPS = ("sum", "mean", "max", "min", "none")
#: The device states start on (compared per step: ``torch.device.type`` is slow to read).
_CPU = torch.device("cpu")

_DTYPE_NAMES = {
    "float16": torch.float16,
    "half": torch.float16,
    "mixed_float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "mixed_bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float": torch.float32,
    "float64": torch.float64,
    "double": torch.float64,
}

_name_uids: Dict[str, int] = collections.defaultdict(int)


# --------------------------------------------------------------------------- #
# Naming
# --------------------------------------------------------------------------- #
def auto_name(class_name: str) -> str:
    """Process-unique default name: ``precision``, ``precision_1``, ... (as Keras)."""
    return naming.auto_name(class_name, _name_uids)


def reset_name_uids() -> None:
    """Forget the default names handed out so far (tests use it)."""
    _name_uids.clear()


# --------------------------------------------------------------------------- #
# Tensor helpers
# --------------------------------------------------------------------------- #
def standardize_dtype(dtype: Any) -> torch.dtype:
    """``None``/strings/numpy dtypes/``torch.dtype`` -> ``torch.dtype`` (default float32)."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str):
        key = dtype.lower()
        if key.startswith("torch."):
            key = key[len("torch."):]
        if key in _DTYPE_NAMES:
            return _DTYPE_NAMES[key]
        try:
            return torch.from_numpy(np.zeros((), dtype=key)).dtype
        except TypeError:
            pass
        raise ValueError(f"Unsupported metric dtype: {dtype!r}")
    compute = getattr(dtype, "compute_dtype", None)  # a dtype policy
    if compute is not None:
        return standardize_dtype(compute)
    try:
        return torch.from_numpy(np.zeros((), dtype=np.dtype(dtype))).dtype
    except TypeError as e:
        raise ValueError(f"Unsupported metric dtype: {dtype!r}") from e


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def to_tensor(
    x: Any,
    dtype: Optional[torch.dtype] = None,
    device: Optional[torch.device] = None,
) -> torch.Tensor:
    """Tensor view of ``x`` (detached), optionally cast and moved.

    Python floats and float64 numpy arrays keep Keras's defaults: Python
    scalars/lists of floats become float32, numpy arrays keep their dtype.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray) or np.isscalar(x) and isinstance(x, np.generic):
        t = torch.as_tensor(np.asarray(x))
    else:
        t = torch.as_tensor(x)
        if t.dtype == torch.float64:
            t = t.to(torch.float32)
    if device is not None and t.device != device:
        t = t.to(device)
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    return t


def divide_no_nan(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """``x1 / x2`` with 0 wherever ``x2 == 0``."""
    # Three kernels: this runs for every metric result, every logged step.
    return torch.where(x2 == 0, 0.0, x1 / x2)


def get_mask(x: Any) -> Optional[torch.Tensor]:
    """The Keras-style ``_keras_mask`` attached to a tensor, if any."""
    return getattr(x, "_keras_mask", None)


def apply_mask(
    sample_weight: Optional[torch.Tensor],
    mask: Optional[torch.Tensor],
    dtype: torch.dtype,
) -> Optional[torch.Tensor]:
    """Fold a boolean mask into ``sample_weight`` (the "sum" reduction case)."""
    if mask is None:
        return sample_weight
    mask = to_tensor(mask).to(dtype)
    if sample_weight is None:
        return mask
    sample_weight = to_tensor(sample_weight, dtype=dtype, device=mask.device)
    mask, sample_weight = squeeze_or_expand_to_same_rank(mask, sample_weight)
    return sample_weight * mask


def _detached(value: torch.Tensor) -> torch.Tensor:
    """``value.detach()``, skipped (it allocates a tensor) when nothing is attached."""
    return value.detach() if value.requires_grad else value


def _no_grad_update(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def update_state(self, *args, **kwargs):
        if not torch.is_grad_enabled():  # the loop's steps update metrics under no_grad
            return fn(self, *args, **kwargs)
        with torch.no_grad():
            return fn(self, *args, **kwargs)

    update_state._torchfit_no_grad = True  # type: ignore[attr-defined]
    return update_state


# --------------------------------------------------------------------------- #
# Metric
# --------------------------------------------------------------------------- #
class Metric:
    """Base class of stateful metrics (Keras's ``keras.metrics.Metric``).

    States are reachable as attributes (``self.total``) and, in order,
    through :attr:`variables`.

    Subclasses must provide: ``__init__`` calling ``super().__init__(name,
    dtype)`` and creating every accumulator with :meth:`add_state`;
    ``update_state(...)`` (updating the states in place); ``result()``.
    They may provide: ``reset_state()`` (default: every state back to its
    initial value), ``get_config()`` for saving (default: ``name``, ``dtype``),
    and, for a metric that creates its states on the first batch,
    ``_build_like(state)`` so :meth:`set_state` can restore it unbuilt.
    :meth:`get_state`/:meth:`set_state` (detached copies of the states) are
    what checkpoints, ``BackupAndRestore`` and distributed reduction use.

    Args:
        name: name of the metric (its key in the training logs). Defaults to
            the snake-cased class name, made unique within the process.
        dtype: dtype of the states and of the result (torch dtype or a name
            such as ``"float32"``); defaults to float32.
    """

    def __init__(self, name: Optional[str] = None, dtype: Any = None) -> None:
        object.__setattr__(self, "_states", collections.OrderedDict())
        object.__setattr__(self, "_state_specs", collections.OrderedDict())
        object.__setattr__(self, "_pending", {})
        self.name = name or auto_name(type(self).__name__)
        self._torch_dtype = standardize_dtype(dtype)
        self._dtype = dtype_name(self._torch_dtype)  # Keras's attribute: the name
        self._device = torch.device("cpu")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fn = cls.__dict__.get("update_state")
        if fn is not None and not getattr(fn, "_torchfit_no_grad", False):
            cls.update_state = _no_grad_update(fn)

    # -- attributes -------------------------------------------------------- #
    def __getattr__(self, name: str) -> Any:
        states = self.__dict__.get("_states")
        if states is not None and name in states:
            self._apply_pending(name)
            return states[name]
        raise AttributeError(
            f"'{type(self).__name__}' object has no attribute '{name}'"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        states = self.__dict__.get("_states")
        if states is not None and name in states:
            if value is not states[name]:
                self._set_state(name, value)
            return
        object.__setattr__(self, name, value)

    def _check_super_called(self) -> None:
        if "_states" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}.__init__() must call "
                "super().__init__() before creating states."
            )

    # -- states ------------------------------------------------------------ #
    @property
    def dtype(self) -> str:
        """The states' dtype as Keras names it (``"float32"``)."""
        return dtype_name(self._torch_dtype)

    @property
    def torch_dtype(self) -> torch.dtype:
        """The states' dtype as a :class:`torch.dtype`."""
        return self._torch_dtype

    @property
    def device(self) -> torch.device:
        return self._device

    def add_state(
        self,
        name: str,
        shape: Union[int, Sequence[int]] = (),
        initializer: Union[float, Callable[..., torch.Tensor]] = 0.0,
        dtype: Any = None,
        reduce_op: str = "sum",
    ) -> torch.Tensor:
        """Create the state ``name`` and return its tensor.

        ``initializer`` is a number (fill value) or a callable
        ``(shape, dtype, device) -> Tensor``. ``reduce_op`` says how copies of
        this state on several processes combine ("sum", "mean", "max", "min"
        or "none" for states that must not be reduced).
        """
        self._check_super_called()
        if name in self._states or name in type(self).__dict__:
            raise ValueError(f"State '{name}' already exists on metric {self.name}.")
        if reduce_op not in REDUCE_OPS:
            raise ValueError(
                f"Invalid reduce_op {reduce_op!r} for state '{name}'; "
                f"expected one of {REDUCE_OPS}."
            )
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(
            int(s) for s in shape
        )
        dtype = self._torch_dtype if dtype is None else standardize_dtype(dtype)
        self._state_specs[name] = (shape, initializer, dtype, reduce_op)
        self._states[name] = self._initial_value(name, self._device)
        return self._states[name]

    def add_variable(
        self,
        shape: Union[int, Sequence[int]] = (),
        initializer: Any = 0.0,
        dtype: Any = None,
        aggregation: str = "sum",
        name: Optional[str] = None,
    ) -> torch.Tensor:
        """Keras-spelled alias of :meth:`add_state` ("zeros"/"ones" accepted)."""
        if isinstance(initializer, str):
            key = initializer.lower()
            if key not in ("zeros", "ones"):
                raise ValueError(f"Unsupported initializer {initializer!r}.")
            initializer = 0.0 if key == "zeros" else 1.0
        elif initializer is None:
            initializer = 0.0
        if name is None:
            name = f"variable_{len(self._states)}"
        op = {"only_first_replica": "none"}.get(aggregation, aggregation)
        return self.add_state(name, shape, initializer, dtype=dtype, reduce_op=op)

    def _initial_value(self, name: str, device: torch.device) -> torch.Tensor:
        shape, initializer, dtype, _ = self._state_specs[name]
        with torch.inference_mode(False), torch.no_grad():
            if callable(initializer):
                value = torch.as_tensor(initializer(shape, dtype, device))
                value = value.to(device=device, dtype=dtype).reshape(shape).clone()
            else:
                value = torch.full(shape, float(initializer), dtype=dtype, device=device)
        return value

    # -- held-back additions ----------------------------------------------- #
    def add_host_value(self, name: str, amount: float) -> None:
        """Add a number known on the host (e.g. a batch size) to state ``name``.

        Adding a Python number to a tensor is a kernel launch; the count
        states of the mean metrics get one every step. The amount is summed
        on the host instead and added to the state the next time that state
        is read (``self.name``, :attr:`variables`). See :mod:`.pending`.
        """
        if torch.compiler.is_compiling():  # host-side sums would make the graph depend on them
            self._states[name].add_(amount)
            return
        self._pending_sum(name).host += amount

    def add_tensor_sum(self, name: str, value: torch.Tensor, weight: float = 1) -> None:
        """Add ``weight * value.sum()`` to state ``name``, batched with later additions.

        ``value`` is kept (not copied) until the state is next read or enough
        values have gathered, then all are reduced in one kernel.
        """
        if torch.compiler.is_compiling():  # a traced step: the loss still carries its graph
            self._states[name].add_(value.detach().sum(dtype=self._states[name].dtype), alpha=weight)
            return
        if self._pending_sum(name).add_tensor(_detached(value), weight):
            self._apply_pending(name)

    def _pending_sum(self, name: str) -> PendingSum:
        pending = self.__dict__["_pending"]
        found = pending.get(name)
        if found is None:
            found = pending[name] = PendingSum()
        return found

    def _apply_pending(self, name: Optional[str] = None) -> None:
        """Fold the held-back updates into the states (one state's sums, or all)."""
        if self.__dict__.get("_deferred_rows"):  # queued inputs add to the states first
            self._flush_deferred()
        pending = self.__dict__.get("_pending")
        if not pending or (name is not None and name not in pending):
            return
        with torch.no_grad():
            for key in list(pending) if name is None else [name]:
                pending.pop(key).apply_to(self._states[key])

    def _flush_deferred(self) -> None:
        """Hook: apply the updates a subclass queued (``MeanMetricWrapper``'s rows)."""

    def _discard_pending(self, name: Optional[str] = None) -> None:
        """Forget held-back updates (the states are being replaced or reset)."""
        rows = self.__dict__.get("_deferred_rows")
        if rows:
            rows.clear()
        if name is None:
            self.__dict__["_pending"].clear()
        else:
            self.__dict__["_pending"].pop(name, None)

    def _set_state(self, name: str, value: Any) -> None:
        value = self._state_value(name, value)
        self._discard_pending(name)
        self._states[name] = value

    def _state_value(self, name: str, value: Any) -> torch.Tensor:
        """``value`` as a new tensor for state ``name`` (its dtype, shape and device)."""
        shape, _, dtype, _ = self._state_specs[name]
        with torch.inference_mode(False), torch.no_grad():
            value = to_tensor(value, dtype=dtype, device=self._device)
            if tuple(value.shape) != shape:
                value = value.expand(shape)
            return value.clone()

    @property
    def variables(self) -> List[torch.Tensor]:
        """State tensors in a fixed order (creation order)."""
        self._apply_pending()
        return list(self._states.values())

    @property
    def state_names(self) -> List[str]:
        return list(self._states.keys())

    @property
    def state_reduce_ops(self) -> List[str]:
        """Cross-process reduce op of each tensor in :attr:`variables`."""
        return [spec[3] for spec in self._state_specs.values()]

    def assign_variables(self, values: Sequence[Any]) -> None:
        """Replace every state (same order as :attr:`variables`); all or none."""
        values = list(values)
        if len(values) != len(self._states):
            raise ValueError(
                f"{type(self).__name__} has {len(self._states)} states; "
                f"received {len(values)} values."
            )
        names = list(self._states)
        new = [self._state_value(name, value) for name, value in zip(names, values)]
        self._discard_pending()
        self._states.update(zip(names, new))

    def get_state(self) -> List[torch.Tensor]:
        """Detached copies of the states, in :attr:`variables` order: what
        checkpoints store and what :meth:`set_state` takes back."""
        with torch.no_grad():
            return [value.detach().clone() for value in self.variables]

    def set_state(self, state: Sequence[Any]) -> None:
        """Replace every state with ``state`` as :meth:`get_state` returned it
        (copies are kept). A bad ``state`` changes nothing."""
        if not isinstance(state, (list, tuple)):
            raise TypeError(
                f"{type(self).__name__}.set_state: argument `state` must be a list of "
                f"{len(self._states)} tensors (as get_state() returns). Received: "
                f"{_received(state)}."
            )
        if self.__dict__.get("_built") is not None and len(state) != len(self._states):
            self._set_state_across_build(state)
            return
        if len(state) != len(self._states):
            raise ValueError(
                f"{type(self).__name__}.set_state: argument `state` must hold "
                f"{len(self._states)} tensors ({self.state_names}). Received "
                f"{len(state)} values."
            )
        try:
            self.assign_variables(state)
        except (TypeError, ValueError, RuntimeError) as error:
            raise self._misfit(error) from None

    def reset_state(self) -> None:
        """Put every state back to its initial value (in place)."""
        self._discard_pending()
        with torch.no_grad():
            for name, value in self._states.items():
                initializer = self._state_specs[name][1]
                if callable(initializer):
                    value.copy_(self._initial_value(name, value.device))
                else:
                    value.fill_(float(initializer))

    def _set_state_across_build(self, state: Sequence[Any]) -> None:
        """A metric that creates states on its first batch (``_built``) takes the
        state of one built (it builds alike) or not built yet (nothing seen:
        its states start empty); all or nothing."""
        before = (dict(self._states), dict(self._state_specs), self._built)
        try:
            if not self._built and len(state) > len(self._states):
                self._build_like(state)
                self.assign_variables(state)
            elif self._built and len(state) < len(self._states):
                names = list(self._states)[:len(state)]
                new = [self._state_value(name, value) for name, value in zip(names, state)]
                self.reset_state()
                self._states.update(zip(names, new))
            else:
                raise ValueError(f"{len(self._states)} states are needed, {len(state)} were given")
        except (TypeError, ValueError, RuntimeError, IndexError) as error:
            self._states, self._state_specs, self._built = before
            raise self._misfit(error) from None

    def _misfit(self, error: BaseException) -> ValueError:
        return ValueError(f"{type(self).__name__}.set_state: argument `state` does not fit "
                          f"the states {self.state_names}: {error}")

    def _build_like(self, state: Sequence[Any]) -> None:
        """Hook of metrics that create states on their first batch: create
        them with the shapes of ``state`` (another instance's ``get_state()``)."""
        raise ValueError("this metric does not build its states from a state")

    # -- devices ----------------------------------------------------------- #
    def to(self, device: Union[str, torch.device]) -> "Metric":
        """Move every state (and any constant tensor) to ``device``."""
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        self._move_to(device)
        return self

    def _move_to(self, device: torch.device) -> None:
        self._apply_pending()  # held-back tensors live on the old device
        with torch.inference_mode(False), torch.no_grad():
            for name, value in list(self._states.items()):
                if value.device != device:
                    self._states[name] = value.to(device)
            self._move_constants(device)
        self._device = device

    def _move_constants(self, device: torch.device) -> None:
        """Hook for subclasses holding non-state tensors (e.g. label weights)."""

    def _follow(self, value: Any) -> torch.device:
        """Move the states to the device of ``value`` (a tensor); return that device."""
        # Runs every step: every state is kept on ``self._device`` (states are
        # only ever created, assigned and moved there), so one comparison does.
        if not isinstance(value, torch.Tensor):
            return self._device
        if value.is_cpu and self._device == _CPU:  # no device object per step
            return self._device
        device = value.device
        if device != self._device:
            self._move_to(device)
        return device

    # -- API --------------------------------------------------------------- #
    def update_state(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def result(self) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        self._check_super_called()
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> Dict[str, Any]:
        return {"name": self.name, "dtype": dtype_name(self._torch_dtype)}

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "Metric":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"

    __str__ = __repr__

    def __getstate__(self) -> Dict[str, Any]:
        self._apply_pending()
        return dict(self.__dict__)

    def __setstate__(self, state: Dict[str, Any]) -> None:
        state.setdefault("_pending", {})
        self.__dict__.update(state)
        first = next(iter(self._states.values()), None)
        if first is not None:  # unpickled elsewhere (map_location): states decide
            self._move_to(first.device)
