"""Property-based tests of the public entry points: random shapes, dtypes and
structures give a correct result or a clear TypeError/ValueError, never an
internal error raised from inside torchfit."""

from __future__ import annotations

import os
import traceback

import numpy as np
import pytest
import torch
from torch import nn

import torchfit

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TORCHFIT_DIR = os.path.dirname(torchfit.__file__)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x)


def arrays(draw, n, dims, dtype):
    shape = (n,) + tuple(dims)
    data = np.random.default_rng(draw(st.integers(0, 10))).normal(size=shape)
    return data.astype(dtype)


@st.composite
def structures(draw):
    n = draw(st.integers(0, 9))
    dtype = draw(st.sampled_from(["float32", "float64", "float16", "int64", "bool"]))
    dims = draw(st.lists(st.integers(1, 4), min_size=0, max_size=2))
    x = arrays(draw, n, dims, dtype)
    wrap = draw(st.sampled_from(["plain", "list", "dict", "tensor", "none"]))
    if wrap == "list":
        x = [x]
    elif wrap == "dict":
        x = {"x": x}
    elif wrap == "tensor":
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif wrap == "none":
        x = None
    y_n = draw(st.sampled_from([n, max(n - 1, 0), n + 1]))
    y_kind = draw(st.sampled_from(["sparse", "onehot", "float", "none", "str"]))
    y = {"sparse": np.zeros(y_n, "int64"), "onehot": np.zeros((y_n, 2), "float32"),
         "float": np.zeros((y_n, 2), "float64"), "none": None, "str": "labels"}[y_kind]
    sw_kind = draw(st.sampled_from([None, "ok", "short", "2d", "3d"]))
    sw = {None: None, "ok": np.ones(n), "short": np.ones(max(n - 1, 0)), "2d": np.ones((n, 2)),
          "3d": np.ones((n, 2, 2))}[sw_kind]
    batch_size = draw(st.sampled_from([None, 1, 3, 0, -1, 2.5]))
    return x, y, sw, batch_size


def assert_clear_or_external(error: BaseException) -> None:
    if isinstance(error, (TypeError, ValueError)):
        assert "`" in str(error) or "Argument" in str(error) or "expected" in str(error).lower(), str(error)
        return
    frames = traceback.extract_tb(error.__traceback__)
    inside = [f for f in frames if f.filename.startswith(TORCHFIT_DIR)]
    last = frames[-1]
    assert isinstance(error, RuntimeError) and not last.filename.startswith(TORCHFIT_DIR), (
        f"internal {type(error).__name__} from {last.filename}:{last.lineno}: {error}; "
        f"torchfit frames {[(f.name, f.lineno) for f in inside]}")


@FUZZ
@given(structures())
def test_fit_and_evaluate_never_fail_internally(case):
    x, y, sw, batch_size = case
    model = Net()
    model.compile(optimizer="sgd", loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True))
    for call in (lambda: model.fit(x, y, batch_size=batch_size, sample_weight=sw, verbose=0),
                 lambda: model.evaluate(x, y, batch_size=batch_size, sample_weight=sw, verbose=0)):
        try:
            result = call()
        except BaseException as error:  # noqa: BLE001 - classifying on purpose
            assert_clear_or_external(error)
        else:
            assert result is not None


@FUZZ
@given(structures())
def test_predict_returns_one_row_per_sample_or_a_clear_error(case):
    x, _, _, batch_size = case
    model = Net()
    try:
        out = model.predict(x, batch_size=batch_size, verbose=0)
    except BaseException as error:  # noqa: BLE001
        assert_clear_or_external(error)
    else:
        leaf = torchfit.tree.first_leaf(x)
        assert out.shape[0] == leaf.shape[0] and out.shape[-1] == 2
        assert isinstance(out, np.ndarray)
