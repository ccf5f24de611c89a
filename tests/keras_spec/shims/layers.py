"""The few ``keras.layers`` that Keras's catalog tests build models from.

They are torch modules laid out as Keras's (``Dense`` keeps a
``(in, units)`` ``kernel`` and a ``bias``, in that order, so ``get_weights``
lists what Keras lists), initialised with Keras's initializers, and built
lazily from the first input as Keras builds them. ``Layer`` (subclassed by
some tests for Keras-only machinery such as ``add_weight``) cannot be
instantiated: those tests are marked as Keras-internal.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from keras.src import activations, initializers
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from . import Missing, module_getattr
from .backend import ReadableParameter


def _keras_init(identifier: Any, shape: Sequence[int]) -> torch.Tensor:
    return torch.as_tensor(initializers.get(identifier)(tuple(shape)), dtype=torch.float32)


class Input:
    """``keras.layers.Input(shape)``: fixes the input shape of a ``Sequential``."""

    def __init__(self, shape: Sequence[int], batch_size: Optional[int] = None, **kwargs: Any) -> None:
        self.shape = tuple(shape)


class Dense(LazyModuleMixin, nn.Module):
    """``keras.layers.Dense``: ``activation(x @ kernel + bias)``."""

    cls_to_become = None

    def __init__(self, units: int, activation: Any = None, use_bias: bool = True,
                 kernel_initializer: Any = "glorot_uniform", bias_initializer: Any = "zeros",
                 input_shape: Any = None, input_dim: Any = None, name: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__()
        self.units = units
        self.activation = activations.get(activation)
        self.initializers = (kernel_initializer, bias_initializer)
        self.kernel = nn.UninitializedParameter()
        self.bias = nn.UninitializedParameter() if use_bias else None
        self.name = name or "dense"

    def initialize_parameters(self, x: torch.Tensor) -> None:
        kernel_init, bias_init = self.initializers
        with torch.no_grad():
            self.kernel.materialize((x.shape[-1], self.units))
            self.kernel.copy_(_keras_init(kernel_init, self.kernel.shape))
            if self.bias is not None:
                self.bias.materialize((self.units,))
                self.bias.copy_(_keras_init(bias_init, self.bias.shape))
        # The same parameter objects, readable as Keras variables (``numpy()``).
        for param in self.parameters(recurse=False):
            param.__class__ = ReadableParameter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x @ self.kernel
        if self.bias is not None:
            y = y + self.bias
        return self.activation(y)


class Flatten(nn.Flatten):
    """``keras.layers.Flatten``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()


class Conv2D(nn.Module):
    """``keras.layers.Conv2D(filters, kernel_size)`` on channels-last inputs
    (Keras's default data format), around torch's ``LazyConv2d``: its weight
    keeps torch's ``(out, in, kh, kw)`` layout, what torchfit users have, and
    is initialised as Keras's (Glorot-uniform kernel, zero bias)."""

    def __init__(self, filters: int, kernel_size: Any, **kwargs: Any) -> None:
        super().__init__()
        self.name = kwargs.get("name")
        self.conv = nn.LazyConv2d(filters, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fresh = isinstance(self.conv, LazyModuleMixin) and self.conv.has_uninitialized_params()
        y = self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        if fresh:  # just built: Keras's initial values, in Keras's kernel layout
            kernel = self.conv.weight.permute(2, 3, 1, 0)
            with torch.no_grad():
                self.conv.weight.copy_(_keras_init("glorot_uniform", kernel.shape).permute(3, 2, 0, 1))
                self.conv.bias.zero_()
            y = self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return y


class GlobalAveragePooling2D(nn.Module):
    """``keras.layers.GlobalAveragePooling2D()`` on channels-last inputs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.name = kwargs.get("name")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2))


class Embedding(nn.Embedding):
    """``keras.layers.Embedding(input_dim, output_dim)`` (its ``name`` names
    the module in the ``Sequential``)."""

    def __init__(self, input_dim: int, output_dim: int, **kwargs: Any) -> None:
        super().__init__(input_dim, output_dim)
        self.name = kwargs.get("name")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.long())


class Layer:
    """Keras's layer base class: its machinery (``add_weight``...) is Keras's own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Missing("keras.layers", "Layer")()


__getattr__ = module_getattr("keras.layers")
