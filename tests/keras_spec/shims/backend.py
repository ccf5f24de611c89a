"""``keras.src.backend`` with ``Variable`` standing for a torch parameter.

Keras's optimizer tests build ``backend.Variable`` objects and hand them to
``apply_gradients``; torchfit's optimizers update torch parameters, so the
variable of these tests is an ``nn.Parameter`` with Keras's reading methods.
Everything else is Keras's own (on the torch backend, torch functions).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import torch
from keras.src import backend as _backend

from . import module_getattr


class ReadableParameter(torch.nn.Parameter):
    """A torch parameter with Keras's reading methods (``numpy``, ``assign``)."""

    @property
    def value(self) -> torch.Tensor:
        return self

    def numpy(self) -> np.ndarray:  # noqa: D102 - Keras's reading method
        return self.detach().cpu().numpy().copy()

    def assign(self, value: Any) -> None:
        with torch.no_grad():
            self.copy_(torch.as_tensor(np.asarray(value), dtype=self.dtype))

    def __array__(self, dtype: Any = None) -> np.ndarray:
        return self.numpy() if dtype is None else self.numpy().astype(dtype)


class Variable(ReadableParameter):
    """A trainable torch parameter created as ``keras.Variable`` is."""

    def __new__(cls, initializer: Any, shape: Any = None, dtype: Any = None,
                trainable: bool = True, name: Optional[str] = None, **kwargs: Any):
        if callable(initializer):
            initializer = initializer(shape, dtype or "float32")
        value = _backend.convert_to_numpy(initializer)
        if dtype is None and np.issubdtype(value.dtype, np.floating):
            dtype = "float32"
        data = torch.as_tensor(value, dtype=getattr(torch, dtype) if isinstance(dtype, str) else dtype)
        self = torch.Tensor._make_subclass(cls, data.clone(), trainable)
        self._variable_name = name or "variable"
        return self

    @property
    def name(self) -> str:
        return self._variable_name

    @property
    def path(self) -> str:
        return self._variable_name


__getattr__ = module_getattr("keras.backend", _backend)
