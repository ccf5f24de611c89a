"""Property-based tests of the input pipeline, over input types, batch sizes,
dataset sizes that don't divide evenly, and nested structures:

- every sample is seen exactly once per epoch (shuffled or not; in order when
  not shuffled), through the adapter and through ``fit``;
- ``predict`` returns exactly N rows, in input order.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import torchfit
from torchfit import tree
from torchfit.data import EpochIterator, get_adapter
from torchfit.utils import PyDataset

SETTINGS = settings(max_examples=30, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

STRUCTURES = ["tensor", "tuple", "dict", "nested"]
KINDS = ["numpy", "tensor", "TensorDataset", "Dataset", "DataLoader", "generator", "PyDataset"]


def make_x(n: int, structure: str):
    """``x`` of ``n`` samples whose every leaf carries the sample id in column 0."""
    ids = np.arange(n, dtype="float32")[:, None]
    a = np.concatenate([ids, ids * 2], axis=1)
    b = np.concatenate([ids, -ids, ids + 0.5], axis=1)
    return {"tensor": a, "tuple": (a, b), "dict": {"a": a, "b": b},
            "nested": {"a": (a, b), "b": b}}[structure]


def rows(structure, start, stop):
    return tree.map_structure(lambda leaf: leaf[start:stop], structure)


class Samples(Dataset):
    def __init__(self, x, y):
        self.x, self.y, self.n = x, y, len(y)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return tree.map_structure(lambda leaf: leaf[i], self.x), self.y[i]


class Batches(PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return -(-len(tree.first_leaf(self.x)) // self.batch_size)

    def __getitem__(self, index):
        start = index * self.batch_size
        x = rows(self.x, start, start + self.batch_size)
        return x if self.y is None else (x, self.y[start:start + self.batch_size])


def make_input(kind, x, y, batch_size, workers=1):
    """``(data, fit kwargs)`` for one input kind; ``y=None`` for predict."""
    n = len(tree.first_leaf(x))
    if kind == "numpy":
        return x, dict(y=y, batch_size=batch_size)
    if kind == "tensor":
        as_t = lambda s: tree.map_structure(torch.from_numpy, s)  # noqa: E731
        return as_t(x), dict(y=None if y is None else torch.from_numpy(y), batch_size=batch_size)
    if kind == "TensorDataset":
        tensors = [torch.from_numpy(x)] + ([] if y is None else [torch.from_numpy(y)])
        return TensorDataset(*tensors), dict(batch_size=batch_size)
    if kind == "PyDataset":
        return Batches(x, y, batch_size, workers=workers), {}
    if y is None:
        y_dummy = np.zeros(n, dtype="float32")
        dataset = Samples(x, y_dummy)
    else:
        dataset = Samples(x, y)
    if kind == "Dataset":
        return dataset, dict(batch_size=batch_size)
    if kind == "DataLoader":
        return DataLoader(dataset, batch_size=batch_size), {}
    # generator
    def generate():
        for start in range(0, n, batch_size):
            part = rows(x, start, start + batch_size)
            yield (part,) if y is None else (part, y[start:start + batch_size])
    return generate(), {}


def batch_ids(batch):
    return tree.first_leaf(batch[0])[:, 0].long().tolist()


kinds_and_structures = st.tuples(st.sampled_from(KINDS), st.sampled_from(STRUCTURES)).filter(
    lambda ks: ks[0] != "TensorDataset" or ks[1] == "tensor")


@SETTINGS
@given(ks=kinds_and_structures, n=st.integers(1, 45), batch_size=st.integers(1, 50),
       shuffle=st.sampled_from([False, True, "batch"]), workers=st.sampled_from([1, 2]))
def test_every_sample_once_per_epoch(ks, n, batch_size, shuffle, workers):
    kind, structure = ks
    x = make_x(n, structure)
    y = np.arange(n, dtype="float32")[:, None]
    data, kwargs = make_input(kind, x, y, batch_size, workers)
    batched_input = kind in ("DataLoader", "generator")
    adapter = get_adapter(data, shuffle=False if batched_input else shuffle, **kwargs)
    iterator = EpochIterator(adapter)
    epochs = 1 if kind == "generator" else 2
    for _ in range(epochs):
        seen = [i for _, _, group in iterator for batch in group for i in batch_ids(batch)]
        assert sorted(seen) == list(range(n))
        if not shuffle or batched_input:
            assert seen == list(range(n))
    expected_batches = -(-n // batch_size)
    assert iterator.num_batches in (expected_batches, None)


@SETTINGS
@given(n=st.integers(1, 40), batch_size=st.integers(1, 45), steps=st.integers(1, 8))
def test_steps_per_epoch_walks_the_data_once_then_restarts(n, batch_size, steps):
    ids = np.arange(n, dtype="float32")[:, None]
    iterator = EpochIterator(get_adapter(ids, ids, batch_size=batch_size, shuffle=True),
                             steps_per_epoch=steps)
    total = -(-n // batch_size)
    first_pass = []
    epochs = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the last epoch may run out of data
        while len(first_pass) < n:
            epoch = [i for _, _, g in iterator for b in g for i in batch_ids(b)]
            assert len(epoch) <= steps * batch_size
            first_pass += epoch
            epochs += 1
    assert sorted(first_pass) == list(range(n))
    assert epochs == -(-total // steps)


class Echo(torchfit.KerasStyleModule, nn.Module):
    """Returns its first input leaf (in the flattening order), unchanged."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, *args, **kwargs):
        return tree.first_leaf((list(args), kwargs)) * self.scale


@SETTINGS
@given(ks=kinds_and_structures, n=st.integers(1, 45), batch_size=st.integers(1, 50),
       workers=st.sampled_from([1, 3]))
def test_predict_returns_n_rows_in_input_order(ks, n, batch_size, workers):
    kind, structure = ks
    x = make_x(n, structure)
    data, kwargs = make_input(kind, x, None, batch_size, workers)
    kwargs.pop("y", None)
    out = Echo().predict(data, verbose=0, **kwargs)
    expected = tree.first_leaf(x)
    assert isinstance(out, np.ndarray) and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)


class Spy(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, *args, **kwargs):
        return tree.first_leaf((list(args), kwargs))[:, :1] * self.w

    def train_step(self, data):
        self.seen.append(data[1][:, 0].long().tolist())
        return super().train_step(data)


@SETTINGS
@given(ks=kinds_and_structures, n=st.integers(2, 40), batch_size=st.integers(1, 45),
       shuffle=st.sampled_from([False, True, "batch"]))
def test_fit_trains_on_every_sample_once_per_epoch(ks, n, batch_size, shuffle):
    kind, structure = ks
    x = make_x(n, structure)
    y = np.arange(n, dtype="float32")[:, None]
    data, kwargs = make_input(kind, x, y, batch_size)
    model = Spy()
    model.compile(optimizer="sgd", loss="mse")
    batched_input = kind in ("DataLoader", "generator")
    epochs = 1 if kind == "generator" else 2
    model.fit(data, epochs=epochs, verbose=0, shuffle=False if batched_input else shuffle, **kwargs)
    per_epoch = -(-n // batch_size)
    assert len(model.seen) == per_epoch * epochs
    for e in range(epochs):
        seen = sum(model.seen[e * per_epoch:(e + 1) * per_epoch], [])
        assert sorted(seen) == list(range(n))
