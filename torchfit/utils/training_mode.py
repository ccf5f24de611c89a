"""``training_mode``: run a block with a module in train or eval mode, then put it back."""

from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn


@contextlib.contextmanager
def training_mode(module: nn.Module, training: bool) -> Iterator[nn.Module]:
    """``module.train(training)`` for the block; its previous mode afterwards, also on errors.

    Example::

        with torchfit.utils.training_mode(model, False), torch.no_grad():
            outputs = model(x)
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"Argument `module` must be a torch.nn.Module. Received: "
                        f"{type(module).__name__}.")
    was_training = module.training
    module.train(training)
    try:
        yield module
    finally:
        module.train(was_training)
