"""Builders for differential tests: the same network in torchfit and in Keras 3,
with identical initial weights, so histories and outputs can be compared."""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

import torchfit

os.environ.setdefault("KERAS_BACKEND", "torch")

ACTIVATIONS = {None: nn.Identity, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
               "softmax": lambda: nn.Softmax(dim=-1)}


def keras():
    import keras as _keras

    return _keras


class MLP(torchfit.KerasStyleModule, nn.Module):
    """Dense stack: hidden ReLU layers, then an output layer with ``activation``."""

    def __init__(self, sizes: Sequence[int], activation: Optional[str] = None) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            last = i == len(sizes) - 2
            layers.append(ACTIVATIONS[activation]() if last else nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def keras_mlp(sizes: Sequence[int], activation: Optional[str] = None):
    k = keras()
    layers = [k.Input((sizes[0],))]
    for i in range(1, len(sizes)):
        last = i == len(sizes) - 1
        layers.append(k.layers.Dense(sizes[i], activation=activation if last else "relu"))
    return k.Sequential(layers)


def linear_layers(module: nn.Module) -> List[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def copy_linear_weights(torch_linears: Sequence[nn.Linear], keras_denses: Sequence) -> None:
    """Keras kernels are (in, out): the transpose of torch's (out, in) weights."""
    assert len(torch_linears) == len(keras_denses)
    for lin, dense in zip(torch_linears, keras_denses):
        dense.set_weights([lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy()])


def mlp_pair(sizes: Sequence[int], activation: Optional[str] = None, seed: int = 0):
    """(torchfit model, keras model) with the same weights."""
    torch.manual_seed(seed)
    tmodel = MLP(sizes, activation)
    kmodel = keras_mlp(sizes, activation)
    dense = [l for l in kmodel.layers if l.__class__.__name__ == "Dense"]
    copy_linear_weights(linear_layers(tmodel), dense)
    return tmodel, kmodel


class TwoHead(torchfit.KerasStyleModule, nn.Module):
    """Shared trunk, two heads: "a" (regression, 1 unit) and "b" (softmax, 3 units)."""

    output_names = ["a", "b"]

    def __init__(self, in_dim: int = 6, as_dict: bool = True) -> None:
        super().__init__()
        self.trunk = nn.Linear(in_dim, 8)
        self.head_a = nn.Linear(8, 1)
        self.head_b = nn.Linear(8, 3)
        self.as_dict = as_dict

    def forward(self, x):
        h = torch.relu(self.trunk(x))
        a, b = self.head_a(h), torch.softmax(self.head_b(h), dim=-1)
        return {"a": a, "b": b} if self.as_dict else [a, b]


def two_head_pair(in_dim: int = 6, as_dict: bool = True, seed: int = 0):
    k = keras()
    torch.manual_seed(seed)
    tmodel = TwoHead(in_dim, as_dict)
    inp = k.Input((in_dim,))
    trunk = k.layers.Dense(8, activation="relu", name="trunk")
    ha = k.layers.Dense(1, name="a")
    hb = k.layers.Dense(3, activation="softmax", name="b")
    h = trunk(inp)
    outputs = {"a": ha(h), "b": hb(h)} if as_dict else [ha(h), hb(h)]
    kmodel = k.Model(inp, outputs)
    copy_linear_weights([tmodel.trunk, tmodel.head_a, tmodel.head_b], [trunk, ha, hb])
    return tmodel, kmodel


def assert_histories_match(t_hist, k_hist, rtol: float = 2e-4, atol: float = 1e-6) -> None:
    assert list(t_hist.history) == list(k_hist.history), (list(t_hist.history), list(k_hist.history))
    for key in k_hist.history:
        np.testing.assert_allclose(t_hist.history[key], k_hist.history[key], rtol=rtol, atol=atol,
                                   err_msg=key)
    assert t_hist.epoch == k_hist.epoch
    assert t_hist.params == k_hist.params


def assert_same_results(t_res, k_res, rtol: float = 2e-4, atol: float = 1e-6) -> None:
    if isinstance(k_res, dict):
        assert list(t_res) == list(k_res), (list(t_res), list(k_res))
        for key in k_res:
            np.testing.assert_allclose(t_res[key], k_res[key], rtol=rtol, atol=atol, err_msg=key)
    elif isinstance(k_res, (list, tuple)):
        assert isinstance(t_res, list) and len(t_res) == len(k_res)
        np.testing.assert_allclose(t_res, k_res, rtol=rtol, atol=atol)
    else:
        assert isinstance(t_res, float), type(t_res)
        np.testing.assert_allclose(t_res, k_res, rtol=rtol, atol=atol)


def rng_data(n: int = 50, in_dim: int = 6, seed: int = 1) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, in_dim)).astype("float32")
    return {
        "x": x,
        "y_reg": rng.normal(size=(n, 1)).astype("float32"),
        "y_bin": (rng.random((n, 1)) > 0.5).astype("float32"),
        "y_sparse": rng.integers(0, 3, size=(n,)).astype("int64"),
        "y_onehot": np.eye(3, dtype="float32")[rng.integers(0, 3, size=(n,))],
        "y_pos": rng.random((n, 3)).astype("float32") + 0.1,
        "sw": rng.random(n).astype("float32") + 0.5,
    }
