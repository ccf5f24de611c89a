"""Metric updates held back and applied in one go (torchfit.metrics.pending).

Every check compares a metric that queues its updates with the same metric
updated step by step (``rows_independent=False`` turns the queue off), and the
built-in ones with Keras 3 as well.
"""

from __future__ import annotations

import copy
import pickle

import keras
import numpy as np
import pytest
import torch

import torchfit
from torchfit.metrics import pending

tm = torchfit.metrics

# name, kwargs, kind of data (see batch()), shape of y_pred
ROW_METRICS = [
    ("Accuracy", {}, "classes_dense", (1,)),
    ("BinaryAccuracy", {}, "binary", (1,)),
    ("CategoricalAccuracy", {}, "onehot", (5,)),
    ("SparseCategoricalAccuracy", {}, "sparse", (5,)),
    ("TopKCategoricalAccuracy", {"k": 2}, "onehot", (5,)),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse", (5,)),
    ("MeanSquaredError", {}, "regression", (3,)),
    ("MeanAbsoluteError", {}, "regression", (3,)),
    ("MeanAbsolutePercentageError", {}, "regression", (3,)),
    ("MeanSquaredLogarithmicError", {}, "positive", (3,)),
    ("CosineSimilarity", {}, "regression", (3,)),
    ("LogCoshError", {}, "regression", (3,)),
    ("Hinge", {}, "binary", (2,)),
    ("SquaredHinge", {}, "binary", (2,)),
    ("CategoricalHinge", {}, "onehot", (5,)),
    ("KLDivergence", {}, "prob", (4,)),
    ("Poisson", {}, "positive", (3,)),
    ("BinaryCrossentropy", {}, "binary", (1,)),
    ("CategoricalCrossentropy", {}, "onehot_prob", (5,)),
    ("SparseCategoricalCrossentropy", {}, "sparse_prob", (5,)),
]


def batch(kind: str, rows: int, shape: tuple, rng: np.random.Generator):
    """(y_true, y_pred) as torch tensors for one batch."""
    width = shape[0]
    if kind == "sparse":
        return torch.from_numpy(rng.integers(0, width, rows)), torch.randn(rows, width)
    if kind == "sparse_prob":
        return (torch.from_numpy(rng.integers(0, width, rows)),
                torch.softmax(torch.randn(rows, width), -1))
    if kind in ("onehot", "onehot_prob"):
        y_true = torch.nn.functional.one_hot(torch.from_numpy(rng.integers(0, width, rows)),
                                             width).float()
        y_pred = torch.randn(rows, width)
        return y_true, torch.softmax(y_pred, -1) if kind == "onehot_prob" else y_pred
    if kind == "binary":
        return (torch.from_numpy(rng.integers(0, 2, (rows, width))).float(),
                torch.rand(rows, width))
    if kind == "classes_dense":
        return (torch.from_numpy(rng.integers(0, 3, (rows, 1))).float(),
                torch.from_numpy(rng.integers(0, 3, (rows, 1))).float())
    if kind == "prob":
        return torch.softmax(torch.randn(rows, width), -1), torch.softmax(torch.randn(rows, width), -1)
    if kind == "positive":
        return torch.rand(rows, width) + 0.1, torch.rand(rows, width) + 0.1
    return torch.randn(rows, width), torch.randn(rows, width)


def batches(kind, shape, count, seed=0, rows=8, last=3):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    out = [batch(kind, rows, shape, rng) for _ in range(count - 1)]
    return out + [batch(kind, last, shape, rng)]


def step_by_step(metric):
    eager = copy.deepcopy(metric)
    eager.rows_independent = False  # the per-step path
    return eager


@pytest.mark.parametrize("name,kwargs,kind,shape", ROW_METRICS, ids=[m[0] for m in ROW_METRICS])
def test_queued_updates_equal_step_by_step_and_keras(name, kwargs, kind, shape):
    data = batches(kind, shape, pending.MAX_TENSORS + 7)  # crosses an automatic flush
    ours = getattr(tm, name)(**kwargs)
    eager = step_by_step(ours)
    theirs = getattr(keras.metrics, name)(**kwargs)
    for y_true, y_pred in data:
        ours.update_state(y_true, y_pred)
        eager.update_state(y_true, y_pred)
        theirs.update_state(y_true.numpy(), y_pred.numpy())
    assert ours.rows_independent
    got, want = float(ours.result()), float(eager.result())
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got, float(theirs.result()), rtol=1e-5, atol=1e-6)
    for a, b in zip(ours.variables, eager.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    assert float(ours.count) == sum(len(t) for t, _ in data)  # counts are exact


def test_queue_is_bounded_by_count_and_bytes():
    metric = tm.MeanAbsoluteError()
    for y_true, y_pred in batches("regression", (3,), 3 * pending.MAX_TENSORS):
        metric.update_state(y_true, y_pred)
        assert len(metric.__dict__["_deferred_rows"]) < pending.MAX_TENSORS
    big = tm.MeanAbsoluteError()
    rows = pending.MAX_ROW_BYTES // (4 * 1000) + 1  # one batch over the byte limit
    big.update_state(torch.zeros(rows, 1000), torch.ones(rows, 1000))
    assert len(big.__dict__["_deferred_rows"]) == 0  # evaluated at once
    assert float(big.result()) == 1.0


def test_reading_midway_then_continuing():
    data = batches("sparse", (5,), 10)
    metric, eager = tm.SparseCategoricalAccuracy(), tm.SparseCategoricalAccuracy()
    eager.rows_independent = False
    for index, (y_true, y_pred) in enumerate(data):
        metric.update_state(y_true, y_pred)
        eager.update_state(y_true, y_pred)
        if index in (2, 3, 7):
            assert float(metric.result()) == float(eager.result())
            assert float(metric.total) == float(eager.total)  # attribute reads apply the queue
    assert [float(v) for v in metric.variables] == [float(v) for v in eager.variables]


def test_reset_and_assign_discard_queued_batches():
    data = batches("regression", (3,), 5)
    metric = tm.MeanSquaredError()
    for y_true, y_pred in data:
        metric.update_state(y_true, y_pred)
    metric.reset_state()
    assert float(metric.result()) == 0.0 and float(metric.count) == 0.0
    for y_true, y_pred in data:
        metric.update_state(y_true, y_pred)
    metric.assign_variables([torch.tensor(6.0), torch.tensor(3.0)])
    assert float(metric.result()) == 2.0
    fresh = tm.MeanSquaredError()
    fresh.update_state(*data[0])
    metric.update_state(*data[0])
    np.testing.assert_allclose(float(metric.result()), (6.0 + float(fresh.total)) / (3.0 + 8.0),
                               rtol=1e-6)


def test_batches_of_other_shapes_are_not_mixed():
    """A change of trailing shape or dtype evaluates the queue first."""
    metric, eager = tm.MeanAbsoluteError(), tm.MeanAbsoluteError()
    eager.rows_independent = False
    torch.manual_seed(0)
    for width, dtype in ((3, torch.float32), (3, torch.float32), (5, torch.float32),
                         (5, torch.float64), (2, torch.float32)):
        y_true, y_pred = torch.randn(4, width), torch.randn(4, width, dtype=dtype)
        metric.update_state(y_true, y_pred)
        eager.update_state(y_true, y_pred)
        assert len(metric.__dict__["_deferred_rows"]) <= 2
    np.testing.assert_allclose(float(metric.result()), float(eager.result()), rtol=1e-6)


def test_non_tensor_weighted_and_masked_updates_are_immediate():
    metric = tm.MeanAbsoluteError()
    metric.update_state(np.zeros((4, 2)), np.ones((4, 2)))  # NumPy: updated now
    metric.update_state(torch.zeros(4, 2), torch.ones(4, 2), sample_weight=torch.ones(4))
    masked = torch.ones(4, 2)
    masked._keras_mask = torch.tensor([True, True, False, False])
    metric.update_state(torch.zeros(4, 2), masked)
    assert not metric.__dict__.get("_deferred_rows")
    assert float(metric.count) == 10.0


def test_rank_mismatch_that_broadcasts_across_samples_is_not_queued():
    """(N,) targets against (N, 1) outputs broadcast to (N, N) in the functions:
    the value of a sample then depends on the whole batch, so it cannot be queued."""
    metric = tm.KLDivergence()
    y_true, y_pred = torch.rand(6), torch.rand(6, 1)
    metric.update_state(y_true, y_pred)
    assert not metric.__dict__.get("_deferred_rows")
    theirs = keras.metrics.KLDivergence()
    theirs.update_state(y_true.numpy(), y_pred.numpy())
    np.testing.assert_allclose(float(metric.result()), float(theirs.result()), rtol=1e-5)


def test_scalars_and_unequal_lengths_are_updated_now_and_cpu_index_is_followed():
    """0-d values and targets whose length differs from the outputs' are never
    queued; a metric placed on ``cpu:0`` takes CPU batches as it did."""
    metric = tm.Accuracy()
    metric.update_state(torch.tensor(1.0), torch.tensor(1.0))
    metric.update_state(torch.ones(1), torch.ones(3))  # (1,) broadcasts to every output
    assert not metric.__dict__.get("_deferred_rows")
    assert float(metric.result()) == 1.0 and float(metric.count) == 4.0
    placed = tm.SparseCategoricalAccuracy().to("cpu:0")
    y_true, y_pred = torch.tensor([1, 0]), torch.tensor([[0.1, 0.9], [0.2, 0.8]])
    placed.update_state(y_true, y_pred)
    assert len(placed.__dict__["_deferred_rows"]) == 1
    assert float(placed.result()) == 0.5 and placed.total.device == torch.device("cpu")


def test_custom_function_metrics_are_updated_every_step():
    seen = []

    def batch_normalised(y_true, y_pred):  # not per sample: depends on the batch
        seen.append(len(y_true))
        return (y_pred - y_pred.mean()).abs().mean(-1)

    metric = tm.MeanMetricWrapper(batch_normalised)
    for y_true, y_pred in batches("regression", (3,), 4):
        metric.update_state(y_true, y_pred)
    assert seen == [8, 8, 8, 3]


def test_copies_and_pickles_carry_queued_updates():
    metric = tm.SparseCategoricalAccuracy()
    for y_true, y_pred in batches("sparse", (5,), 6):
        metric.update_state(y_true, y_pred)
    eager = tm.SparseCategoricalAccuracy()
    eager.rows_independent = False
    for y_true, y_pred in batches("sparse", (5,), 6):
        eager.update_state(y_true, y_pred)
    expected = float(eager.result())
    assert float(copy.deepcopy(metric).result()) == expected
    assert float(pickle.loads(pickle.dumps(metric)).result()) == expected


def test_loss_tracker_sums_equal_weighted_updates():
    tracker, reference = tm.Mean(), tm.Mean()
    rng = np.random.default_rng(3)
    for step in range(pending.MAX_TENSORS + 5):
        value = torch.tensor(float(rng.normal()), requires_grad=True) * 2  # a graph is attached
        count = 8 if step % 7 else 3
        tracker.update_batch_mean(value, count)
        reference.update_state(value.detach(), sample_weight=torch.tensor(float(count)))
    np.testing.assert_allclose(float(tracker.result()), float(reference.result()), rtol=1e-6)
    assert float(tracker.count) == float(reference.count)


def test_host_counts_on_integer_states():
    class Counter(tm.Metric):
        def __init__(self):
            super().__init__(name="counter")
            self.add_state("n", (), 0, dtype="int64")

        def update_state(self, values):
            self.add_host_value("n", int(values.shape[0]))

        def result(self):
            return self.n

    counter = Counter()
    for rows in (3, 4, 5):
        counter.update_state(torch.zeros(rows))
    assert counter.result().dtype == torch.int64 and int(counter.result()) == 12


def test_fit_logs_equal_step_by_step_metrics(monkeypatch):
    """A whole fit: queued and step-by-step metrics give the same history."""
    from torchfit.metrics.reduction_metrics import _FunctionMetric

    def run():
        torch.manual_seed(0)
        model = torchfit.keras_style(torch.nn.Sequential(torch.nn.Linear(4, 3)))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy", tm.SparseTopKCategoricalAccuracy(k=2),
                               "sparse_categorical_crossentropy"])
        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(300, 4)).astype("float32"), rng.integers(0, 3, 300)
        return model.fit(x, y, batch_size=7, epochs=2, verbose=0,
                         validation_data=(x[:50], y[:50])).history

    queued = run()
    monkeypatch.setattr(_FunctionMetric, "rows_independent", False)
    eager = run()
    assert queued.keys() == eager.keys() and "val_sparse_categorical_crossentropy" in queued
    for key in queued:
        np.testing.assert_allclose(queued[key], eager[key], rtol=1e-6, err_msg=key)
