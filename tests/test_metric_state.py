"""``get_state()``/``set_state()``: every metric of the catalog and the
torchmetrics adapter hand out detached copies of their states and take them
back, so that a restored metric gives the same result and accumulates on
exactly as the original; a bad state changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchfit.metrics as tm
from torchfit.metrics.torchmetrics_adapter import TorchMetricAdapter

N = 8


def _batch(kind: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    if kind == "binary":
        return (torch.randint(0, 2, (N, 1), generator=g).float(),
                torch.rand(N, 1, generator=g).clamp(0.05, 0.95))
    if kind == "categorical":
        labels = torch.randint(0, 3, (N,), generator=g)
        return (torch.nn.functional.one_hot(labels, 3).float(),
                torch.softmax(torch.randn(N, 3, generator=g), -1))
    if kind == "sparse":
        return (torch.randint(0, 3, (N,), generator=g),
                torch.softmax(torch.randn(N, 3, generator=g), -1))
    if kind == "labels":
        return (torch.randint(0, 3, (N,), generator=g), torch.randint(0, 3, (N,), generator=g))
    if kind == "regression":
        return (torch.rand(N, 3, generator=g) + 0.1, torch.rand(N, 3, generator=g) + 0.1)
    if kind == "values":
        return (torch.randn(N, generator=g),)
    raise AssertionError(kind)


def _mean_abs(y_true, y_pred):
    return (y_true - y_pred).abs().mean(-1)


_KINDS = {
    "values": [tm.Mean, tm.Sum],
    "regression": [tm.MeanMetricWrapper, tm.MeanSquaredError, tm.RootMeanSquaredError,
                   tm.MeanAbsoluteError, tm.MeanAbsolutePercentageError,
                   tm.MeanSquaredLogarithmicError, tm.CosineSimilarity, tm.LogCoshError,
                   tm.R2Score, tm.PearsonCorrelation, tm.ConcordanceCorrelation],
    "binary": [tm.AUC, tm.FalseNegatives, tm.FalsePositives, tm.Precision, tm.PrecisionAtRecall,
               tm.Recall, tm.RecallAtPrecision, tm.SensitivityAtSpecificity,
               tm.SpecificityAtSensitivity, tm.TrueNegatives, tm.TruePositives, tm.Hinge,
               tm.SquaredHinge, tm.BinaryCrossentropy, tm.BinaryAccuracy, tm.BinaryIoU],
    "categorical": [tm.CategoricalHinge, tm.KLDivergence, tm.Poisson, tm.CategoricalCrossentropy,
                    tm.CategoricalAccuracy, tm.TopKCategoricalAccuracy, tm.F1Score,
                    tm.FBetaScore, tm.OneHotIoU, tm.OneHotMeanIoU],
    "sparse": [tm.SparseCategoricalCrossentropy, tm.SparseCategoricalAccuracy,
               tm.SparseTopKCategoricalAccuracy],
    "labels": [tm.Accuracy, tm.IoU, tm.MeanIoU],
}
_ARGUMENTS = {
    tm.MeanMetricWrapper: {"fn": _mean_abs},
    tm.PrecisionAtRecall: {"recall": 0.5},
    tm.RecallAtPrecision: {"precision": 0.5},
    tm.SensitivityAtSpecificity: {"specificity": 0.5},
    tm.SpecificityAtSensitivity: {"sensitivity": 0.5},
    tm.TopKCategoricalAccuracy: {"k": 2},
    tm.SparseTopKCategoricalAccuracy: {"k": 2},
    tm.FBetaScore: {"beta": 2.0},
    tm.IoU: {"num_classes": 3, "target_class_ids": [0, 2]},
    tm.MeanIoU: {"num_classes": 3},
    tm.OneHotIoU: {"num_classes": 3, "target_class_ids": [1]},
    tm.OneHotMeanIoU: {"num_classes": 3},
}
#: class -> (constructor arguments, kind of data). Every catalog class must be here.
CATALOG = {cls: (_ARGUMENTS.get(cls, {}), kind) for kind, classes in _KINDS.items()
           for cls in classes}


def _result(metric):
    value = metric.result()
    return np.asarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value)


def _assert_same(a, b):
    np.testing.assert_allclose(a, b, rtol=0, atol=0, equal_nan=True)


def test_every_catalog_class_is_covered():
    missing = [cls.__name__ for cls in tm.ALL_OBJECTS if cls is not tm.Metric and cls not in CATALOG]
    assert missing == []


@pytest.mark.parametrize("cls", list(CATALOG), ids=lambda c: c.__name__)
def test_catalog_metric_state_round_trip(cls):
    kwargs, kind = CATALOG[cls]
    metric = cls(**kwargs)
    metric.update_state(*_batch(kind, 0))
    saved = metric.get_state()
    expected = _result(metric)
    live = metric.variables
    assert len(saved) == len(live) > 0
    assert all(s is not v and not s.requires_grad for s, v in zip(saved, live))
    copies = [s.clone() for s in saved]

    metric.update_state(*_batch(kind, 1))  # the saved copies do not follow
    for s, c in zip(saved, copies):
        assert torch.equal(s, c)

    fresh = cls(**kwargs)
    fresh.set_state(saved)
    _assert_same(_result(fresh), expected)
    metric.set_state(saved)  # back in the original too
    _assert_same(_result(metric), expected)
    for m in (metric, fresh):  # both accumulate on alike, without touching `saved`
        m.update_state(*_batch(kind, 2))
    _assert_same(_result(fresh), _result(metric))
    for s, c in zip(saved, copies):
        assert torch.equal(s, c)


def test_metric_set_state_rejects_bad_states_and_changes_nothing():
    metric = tm.Mean()
    metric.update_state(torch.tensor([1.0, 3.0]))
    before = metric.get_state()
    with pytest.raises(TypeError, match=r"argument `state` must be a list of 2 tensors.*Received: 5"):
        metric.set_state(5)
    with pytest.raises(ValueError, match=r"argument `state` must hold 2 tensors.*Received 1"):
        metric.set_state([torch.tensor(1.0)])
    with pytest.raises(ValueError, match=r"argument `state` does not fit"):
        metric.set_state([torch.tensor(9.0), torch.ones(3)])  # the second one cannot be a scalar
    for a, b in zip(metric.get_state(), before):
        assert torch.equal(a, b)
    assert float(metric.result()) == 2.0


def _torchmetrics():
    return pytest.importorskip("torchmetrics")


@pytest.mark.parametrize("make", [
    lambda tmx: tmx.MeanSquaredError(),
    lambda tmx: tmx.classification.BinaryAUROC(),  # list states
], ids=["tensor-states", "list-states"])
def test_torchmetrics_adapter_state_round_trip(make):
    tmx = _torchmetrics()
    adapter = TorchMetricAdapter(make(tmx))
    y_true, y_pred = _batch("binary", 0)
    adapter.update_state(y_true.long().view(-1), y_pred.view(-1))
    saved = adapter.get_state()
    expected = _result(adapter)
    assert saved["update_count"] == 1
    adapter.update_state(*(t.view(-1) for t in (_batch("binary", 1)[0].long(), _batch("binary", 1)[1])))
    assert not np.array_equal(_result(adapter), expected)

    fresh = TorchMetricAdapter(make(tmx))
    fresh.set_state(saved)
    _assert_same(_result(fresh), expected)
    adapter.set_state(saved)
    _assert_same(_result(adapter), expected)  # the cached result is dropped
    assert adapter.metric._update_count == 1
    y_true, y_pred = _batch("binary", 2)
    for a in (adapter, fresh):
        a.update_state(y_true.long().view(-1), y_pred.view(-1))
    _assert_same(_result(fresh), _result(adapter))
    assert adapter.get_state()["update_count"] == 2


def test_torchmetrics_adapter_set_state_rejects_bad_states():
    tmx = _torchmetrics()
    adapter = TorchMetricAdapter(tmx.MeanSquaredError())
    adapter.update_state(torch.ones(4), torch.zeros(4))
    before = _result(adapter)
    for bad in (None, {"torchmetrics": {"sum_squared_error": torch.tensor(0.0)}, "update_count": 1},
                {"torchmetrics": adapter.get_state()["torchmetrics"], "update_count": "1"}):
        with pytest.raises(ValueError, match="argument `state` must be a dict"):
            adapter.set_state(bad)
    _assert_same(_result(adapter), before)


@pytest.mark.parametrize("make, kind", [
    (lambda: tm.R2Score(), "regression"),
    (lambda: tm.F1Score(), "categorical"),
    (lambda: tm.F1Score(average="micro"), "categorical"),
    (lambda: tm.AUC(multi_label=True), "categorical"),
], ids=["R2Score", "F1Score", "F1Score-micro", "AUC-multi-label"])
def test_states_of_metrics_built_on_their_first_batch(make, kind):
    """Such metrics have fewer states before their first batch: a built state
    builds an unbuilt metric alike; an unbuilt one empties a built metric."""
    unbuilt = make().get_state()
    metric = make()
    metric.update_state(*_batch(kind, 0))
    built = metric.get_state()
    assert len(built) > len(unbuilt)

    fresh = make()
    fresh.set_state(built)
    _assert_same(_result(fresh), _result(metric))

    metric.set_state(unbuilt)  # as if it had seen nothing
    empty = make()
    empty.update_state(*_batch(kind, 1))
    metric.update_state(*_batch(kind, 1))
    _assert_same(_result(metric), _result(empty))

    bad = make()
    with pytest.raises(ValueError, match="argument `state` does not fit"):
        bad.set_state(built[:-1] + ["not a tensor"])
    assert len(bad.get_state()) == len(unbuilt)  # still not built
