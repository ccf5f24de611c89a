"""``keras.models.Sequential`` as a torchfit model of the ``layers`` shims
(compiled with the Keras-facing optimizers of ``shims.optimizers``)."""

from __future__ import annotations

from typing import Any, Iterable, List, Optional

import numpy as np
import torch
from torch import nn

import torchfit

from . import module_getattr, optimizers
from .layers import Input


class Sequential(torchfit.KerasStyleModule, nn.Module):
    """Layers applied in turn; built at once when an ``Input`` comes first."""

    def __init__(self, layers: Optional[Iterable[Any]] = None, name: Optional[str] = None,
                 **kwargs: Any) -> None:
        super().__init__()
        self.name = name or "sequential"
        self.body = nn.Sequential()  # layers under their Keras names
        self._input_shape = None
        for layer in layers or ():
            self.add(layer)

    def add(self, layer: Any) -> None:
        if isinstance(layer, Input):
            self._input_shape = layer.shape
            return
        name = getattr(layer, "name", None) or type(layer).__name__.lower()
        unique, count = name, 0
        while unique in self.body._modules:
            count += 1
            unique = f"{name}_{count}"
        self.body.add_module(unique, layer)
        if self._input_shape is not None:
            self.build((None,) + self._input_shape)

    def build(self, input_shape: Any) -> None:
        with torch.no_grad():
            self(torch.zeros((1,) + tuple(input_shape[1:])))

    def compile(self, optimizer: Any = "rmsprop", *args: Any, **kwargs: Any) -> None:
        """torchfit's ``compile``; an optimizer given by name or config is
        Keras-facing, as one from ``keras.optimizers.get`` is."""
        if isinstance(optimizer, (str, dict)):
            optimizer = optimizers.get(optimizer)
        super().compile(optimizer, *args, **kwargs)

    @property
    def layers(self) -> List[nn.Module]:
        return list(self.body)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.body:
            x = layer(x)
        return x

    def get_weights(self) -> List[np.ndarray]:
        return [p.detach().cpu().numpy().copy() for p in self.parameters()]

    def set_weights(self, weights: Iterable[Any]) -> None:
        with torch.no_grad():
            for p, w in zip(self.parameters(), weights):
                p.copy_(torch.as_tensor(np.asarray(w), dtype=p.dtype))

    @property
    def trainable_variables(self) -> List[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @property
    def variables(self) -> List[torch.Tensor]:
        return list(self.parameters()) + list(self.buffers())


__getattr__ = module_getattr("keras.models")
