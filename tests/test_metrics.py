"""Differential tests of ``torchfit.metrics`` against Keras 3 (torch backend)."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

import keras  # noqa: E402  (KERAS_BACKEND is set by conftest.py)
from keras.src.trainers import compile_utils as keras_compile_utils

import torchfit.metrics as tm
from torchfit.metrics.base import reset_name_uids

RTOL, ATOL = 1e-5, 1e-6

# Keras warns from R2Score.result() when falling back from the adjusted score.
pytestmark = pytest.mark.filterwarnings("ignore:More independent predictors")
N_BATCHES = 3


# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def make_batch(kind: str, shape: tuple, rng: np.random.Generator, true_shape=None):
    """(y_true, y_pred) numpy arrays of ``kind`` with y_pred of ``shape``."""
    if kind == "reg":
        yt, yp = rng.normal(size=shape), rng.normal(size=shape)
    elif kind == "pos":
        yt, yp = rng.uniform(0.1, 3.0, size=shape), rng.uniform(0.1, 3.0, size=shape)
    elif kind == "prob":
        yt, yp = rng.uniform(0.0, 1.0, size=shape), rng.uniform(0.0, 1.0, size=shape)
    elif kind == "binary":
        yt = rng.integers(0, 2, size=shape)
        yp = rng.uniform(size=shape)
        # Exact boundary values exercise the bucketing edge cases.
        flat = yp.reshape(-1)
        flat[:: 7] = np.round(flat[:: 7], 1)
        flat[1] = 0.0
        flat[2] = 1.0
        flat[3] = 0.5
    elif kind == "binary_logits":
        yt, yp = rng.integers(0, 2, size=shape), rng.normal(scale=2.0, size=shape)
    elif kind == "pm1":
        yt, yp = rng.choice([-1.0, 1.0], size=shape), rng.normal(size=shape)
    elif kind == "int_eq":
        yt, yp = rng.integers(0, 3, size=shape), rng.integers(0, 3, size=shape)
    elif kind in ("onehot", "onehot_logits"):
        labels = rng.integers(0, shape[-1], size=shape[:-1])
        yt = np.eye(shape[-1])[labels]
        logits = rng.normal(size=shape)
        yp = logits if kind == "onehot_logits" else _softmax(logits)
    elif kind in ("sparse", "sparse_logits"):
        yt = rng.integers(0, shape[-1], size=shape[:-1])
        logits = rng.normal(size=shape)
        yp = logits if kind == "sparse_logits" else _softmax(logits)
        if true_shape is not None:
            yt = yt.reshape(true_shape)
        return _f32(yt), _f32(yp)
    else:
        raise AssertionError(kind)
    if true_shape is not None:
        yt = yt.reshape(true_shape)
    return _f32(yt), _f32(yp)


def make_weight(spec, shape, rng):
    if spec is None:
        return None
    if spec == "batch":
        return _f32(rng.uniform(0.0, 2.0, size=(shape[0],)))
    if spec == "temporal":
        return _f32(rng.uniform(0.0, 2.0, size=shape[:2]))
    if spec == "full":
        return _f32(rng.uniform(0.0, 2.0, size=shape))
    raise AssertionError(spec)


def to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(x)


def run_both(ours, theirs, batches):
    for yt, yp, sw in batches:
        ours.update_state(
            torch.from_numpy(yt),
            torch.from_numpy(yp),
            sample_weight=None if sw is None else torch.from_numpy(sw),
        )
        theirs.update_state(yt, yp, sample_weight=sw)
    return to_numpy(ours.result()), to_numpy(theirs.result())


def batches_for(kind, shape, weight, seed, true_shape=None):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(N_BATCHES):
        yt, yp = make_batch(kind, shape, rng, true_shape)
        out.append((yt, yp, make_weight(weight, shape, rng)))
    return out


# --------------------------------------------------------------------------- #
# Cases: (class name, kwargs, data kind, [(y_pred shape, y_true shape|None, weight)])
# --------------------------------------------------------------------------- #
GENERIC = [((16, 4), None, None), ((16, 4), None, "batch"), ((16, 1), None, "batch"),
           ((16,), None, "batch"), ((16, 1), (16,), None), ((4, 6, 3), None, "temporal"),
           ((4, 6, 3), None, "batch")]
CATEGORICAL = [((16, 4), None, None), ((16, 4), None, "batch"),
               ((4, 6, 3), None, "temporal"), ((4, 6, 3), None, "batch")]
SPARSE = [((16, 4), (16,), None), ((16, 4), (16,), "batch"), ((16, 4), (16, 1), "batch"),
          ((4, 6, 3), (4, 6), "temporal"), ((4, 6, 3), (4, 6), None)]
BINARY = GENERIC
CONFUSION = [((16, 4), None, None), ((16, 4), None, "batch"), ((16, 4), None, "full"),
             ((16, 1), None, "batch"), ((16,), None, "batch"), ((16, 1), (16,), None),
             ((4, 6, 3), None, "temporal")]

CASES = [
    ("Accuracy", {}, "int_eq", GENERIC),
    ("BinaryAccuracy", {}, "binary", BINARY),
    ("BinaryAccuracy", {"threshold": 0.3}, "binary", BINARY[:3]),
    ("CategoricalAccuracy", {}, "onehot", CATEGORICAL),
    ("SparseCategoricalAccuracy", {}, "sparse", SPARSE),
    ("TopKCategoricalAccuracy", {"k": 2}, "onehot", CATEGORICAL),
    ("TopKCategoricalAccuracy", {}, "onehot", [((16, 8), None, "batch")]),
    ("SparseTopKCategoricalAccuracy", {"k": 2}, "sparse", SPARSE),
    ("MeanSquaredError", {}, "reg", GENERIC),
    ("MeanAbsoluteError", {}, "reg", GENERIC),
    ("MeanAbsolutePercentageError", {}, "pos", GENERIC),
    ("MeanSquaredLogarithmicError", {}, "pos", GENERIC),
    ("RootMeanSquaredError", {}, "reg", GENERIC),
    ("CosineSimilarity", {}, "reg", GENERIC),
    ("CosineSimilarity", {"axis": 1}, "reg", [((16, 4), None, "batch")]),
    ("LogCoshError", {}, "reg", GENERIC),
    ("R2Score", {}, "reg", [((16, 4), None, None), ((16, 4), None, "batch"),
                            ((16, 1), None, "batch"), ((16, 3), None, "full")]),
    ("R2Score", {"class_aggregation": "variance_weighted_average"}, "reg",
     [((16, 4), None, "batch")]),
    ("R2Score", {"class_aggregation": None}, "reg", [((16, 4), None, "batch")]),
    ("R2Score", {"num_regressors": 3}, "reg", [((16, 2), None, "batch")]),
    ("R2Score", {"num_regressors": 200}, "reg", [((16, 2), None, None)]),
    ("BinaryCrossentropy", {}, "binary", BINARY),
    ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "binary_logits",
     BINARY[:3]),
    ("CategoricalCrossentropy", {}, "onehot", CATEGORICAL),
    ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2},
     "onehot_logits", CATEGORICAL),
    ("SparseCategoricalCrossentropy", {}, "sparse", SPARSE),
    ("SparseCategoricalCrossentropy", {"from_logits": True}, "sparse_logits", SPARSE),
    ("SparseCategoricalCrossentropy", {"ignore_class": 1}, "sparse", SPARSE[:2]),
    ("KLDivergence", {}, "prob", GENERIC),
    ("Poisson", {}, "pos", GENERIC),
    ("Hinge", {}, "binary_logits", GENERIC),
    ("Hinge", {}, "pm1", GENERIC[:3]),
    ("SquaredHinge", {}, "binary_logits", GENERIC),
    ("SquaredHinge", {}, "pm1", GENERIC[:3]),
    ("CategoricalHinge", {}, "onehot", CATEGORICAL),
    ("TruePositives", {}, "binary", CONFUSION),
    ("FalsePositives", {"thresholds": [0.3, 0.7]}, "binary", CONFUSION),
    ("TrueNegatives", {"thresholds": [0.0, 0.5, 1.0]}, "binary", CONFUSION),
    ("FalseNegatives", {"thresholds": 0.25}, "binary", CONFUSION),
    ("Precision", {}, "binary", CONFUSION),
    ("Precision", {"thresholds": [0.0, 0.25, 0.5, 0.75, 1.0]}, "binary", CONFUSION[:3]),
    ("Precision", {"top_k": 2}, "binary", [((16, 4), None, None), ((16, 4), None, "batch")]),
    ("Precision", {"class_id": 1}, "binary", [((16, 4), None, "batch")]),
    ("Precision", {"top_k": 2, "class_id": 3, "thresholds": [0.2, 0.6]}, "binary",
     [((16, 4), None, "batch")]),
    ("Recall", {}, "binary", CONFUSION),
    ("Recall", {"thresholds": [0.1, 0.9]}, "binary", CONFUSION[:3]),
    ("Recall", {"top_k": 1}, "binary", [((16, 4), None, "batch")]),
    ("Recall", {"class_id": 0}, "binary", [((16, 4), None, None)]),
    ("PrecisionAtRecall", {"recall": 0.5}, "binary", CONFUSION[:3]),
    ("RecallAtPrecision", {"precision": 0.6}, "binary", CONFUSION[:3]),
    ("SensitivityAtSpecificity", {"specificity": 0.5, "num_thresholds": 1}, "binary",
     CONFUSION[:2]),
    ("SpecificityAtSensitivity", {"sensitivity": 0.4, "class_id": 2}, "binary",
     [((16, 4), None, "batch")]),
    ("AUC", {}, "binary", CONFUSION),
    ("AUC", {"curve": "PR"}, "binary", CONFUSION),
    ("AUC", {"curve": "PR", "summation_method": "majoring"}, "binary", CONFUSION[:3]),
    ("AUC", {"summation_method": "minoring", "num_thresholds": 17}, "binary", CONFUSION[:3]),
    ("AUC", {"curve": "PRGAIN"}, "binary", CONFUSION[:3]),
    ("AUC", {"thresholds": [0.1, 0.5, 0.55, 0.9]}, "binary", CONFUSION[:3]),
    ("AUC", {"thresholds": [0.25, 0.5, 0.75], "curve": "PR"}, "binary", CONFUSION[:3]),
    ("AUC", {"from_logits": True}, "binary_logits", CONFUSION[:2]),
    ("AUC", {"label_weights": [0.2, 1.0, 0.0, 2.0]}, "binary",
     [((16, 4), None, "batch"), ((16, 4), None, None)]),
    ("AUC", {"multi_label": True}, "binary", [((16, 4), None, None), ((16, 4), None, "batch"),
                                              ((16, 4), None, "full")]),
    ("AUC", {"multi_label": True, "num_labels": 4, "curve": "PR",
             "label_weights": [0.5, 1.0, 0.0, 2.0]}, "binary",
     [((16, 4), None, "batch")]),
    ("AUC", {"multi_label": True, "thresholds": [0.3, 0.6], "summation_method": "majoring"},
     "binary", [((16, 4), None, "batch")]),
]


def _case_params():
    params = []
    for name, kwargs, kind, layouts in CASES:
        for shape, true_shape, weight in layouts:
            cid = f"{name}-{kwargs}-{kind}-{shape}-{true_shape}-{weight}"
            params.append(pytest.param(name, kwargs, kind, shape, true_shape, weight, id=cid))
    return params


@pytest.mark.parametrize("name,kwargs,kind,shape,true_shape,weight", _case_params())
def test_matches_keras(name, kwargs, kind, shape, true_shape, weight):
    seed = zlib.crc32(repr((name, kwargs, kind, shape, true_shape, weight)).encode())
    batches = batches_for(kind, shape, weight, seed, true_shape)
    ours, theirs = getattr(tm, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    try:
        run_both(getattr(keras.metrics, name)(**kwargs), getattr(keras.metrics, name)(**kwargs),
                 batches[:1])
    except Exception:  # Keras rejects this layout: so must we.
        with pytest.raises(Exception):
            run_both(ours, theirs, batches)
        return
    got, want = run_both(ours, theirs, batches)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    # After a reset, one more batch gives what a fresh metric gives.
    ours.reset_state()
    theirs.reset_state()
    got, want = run_both(ours, theirs, batches[:1])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------- #
# Reduction metrics
# --------------------------------------------------------------------------- #
MEAN_LAYOUTS = [((16,), None), ((16,), (16,)), ((16, 4), (16,)), ((16, 4), (16, 4)),
                ((16, 1), (16,)), ((16,), (16, 1)), ((4, 6, 3), (4, 6)), ((4, 6, 3), (4,)),
                ((4, 6, 3), (4, 6, 3)), ((), None), ((), ())]


@pytest.mark.parametrize("cls", ["Mean", "Sum"])
@pytest.mark.parametrize("values_shape,weight_shape", MEAN_LAYOUTS)
def test_reduction_matches_keras(cls, values_shape, weight_shape):
    rng = np.random.default_rng(len(values_shape) * 10 + (len(weight_shape or ()) + 1))
    ours, theirs = getattr(tm, cls)(), getattr(keras.metrics, cls)()
    for _ in range(N_BATCHES):
        values = _f32(rng.normal(size=values_shape))
        sw = None if weight_shape is None else _f32(rng.uniform(0, 2, size=weight_shape))
        ours.update_state(torch.from_numpy(values),
                          sample_weight=None if sw is None else torch.from_numpy(sw))
        theirs.update_state(values, sample_weight=sw)
    np.testing.assert_allclose(to_numpy(ours.result()), to_numpy(theirs.result()),
                               rtol=RTOL, atol=ATOL)


def test_mean_python_inputs_and_int_weight():
    m = tm.Mean()
    m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    assert float(m.result()) == 2.0
    m = tm.Mean(name="loss")
    m.update_state(torch.tensor(2.0), sample_weight=16)  # the loss-tracker call
    m.update_state(torch.tensor(4.0), sample_weight=16)
    assert float(m.result()) == 3.0
    assert m.result().dim() == 0
    s = tm.Sum()
    s.update_state([1.0, 3.0, 5.0, 7.0])
    assert float(s.result()) == 16.0


def test_mean_metric_wrapper_custom_fn():
    def my_error(y_true, y_pred, power=2):
        return torch.mean(torch.abs(y_true - y_pred) ** power, dim=-1)

    def keras_error(y_true, y_pred, power=2):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred) ** power, axis=-1)

    ours = tm.MeanMetricWrapper(my_error, power=3)
    theirs = keras.metrics.MeanMetricWrapper(keras_error, power=3)
    got, want = run_both(ours, theirs, batches_for("reg", (16, 4), "batch", 5))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert ours.name == "my_error"
    config = ours.get_config()
    assert config["power"] == 3


def test_mean_metric_wrapper_honours_keras_mask():
    y_true = torch.zeros(4, 3)
    y_pred = torch.ones(4, 3)
    y_pred._keras_mask = torch.tensor([True, True, False, False])
    ours = tm.MeanMetricWrapper(lambda t, p: torch.mean(p - t, dim=-1) * torch.arange(4.0))
    ours.update_state(y_true, y_pred)
    theirs = keras.metrics.MeanMetricWrapper(
        lambda t, p: keras.ops.mean(p - t, axis=-1) * keras.ops.arange(4.0))
    yp = keras.ops.ones((4, 3))
    yp._keras_mask = keras.ops.convert_to_tensor([True, True, False, False])
    theirs.update_state(keras.ops.zeros((4, 3)), yp)
    np.testing.assert_allclose(to_numpy(ours.result()), to_numpy(theirs.result()), rtol=RTOL)


# --------------------------------------------------------------------------- #
# Functions
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "fn,kind,shape,true_shape,kwargs",
    [
        ("binary_accuracy", "binary", (16, 4), None, {}),
        ("binary_accuracy", "binary", (16, 1), (16,), {"threshold": 0.7}),
        ("categorical_accuracy", "onehot", (4, 6, 3), None, {}),
        ("sparse_categorical_accuracy", "sparse", (16, 4), (16, 1), {}),
        ("sparse_categorical_accuracy", "sparse", (4, 6, 3), (4, 6), {}),
        ("top_k_categorical_accuracy", "onehot", (16, 5), None, {"k": 3}),
        ("top_k_categorical_accuracy", "onehot", (4, 6, 3), None, {"k": 2}),
        ("sparse_top_k_categorical_accuracy", "sparse", (16, 5), (16,), {"k": 3}),
        ("sparse_top_k_categorical_accuracy", "sparse", (4, 6, 3), (4, 6), {"k": 1}),
    ],
)
def test_functions_match_keras(fn, kind, shape, true_shape, kwargs):
    yt, yp = make_batch(kind, shape, np.random.default_rng(3), true_shape)
    got = getattr(tm, fn)(torch.from_numpy(yt), torch.from_numpy(yp), **kwargs)
    want = getattr(keras.metrics, fn)(yt, yp, **kwargs)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(to_numpy(got), to_numpy(want), rtol=RTOL, atol=ATOL)


def test_sparse_top_k_from_sorted_ids():
    rng = np.random.default_rng(0)
    yt = _f32(rng.integers(0, 6, size=(16,)))
    yp = _f32(np.argsort(-rng.normal(size=(16, 6)), axis=-1)[:, :3])
    ours = tm.SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True)
    theirs = keras.metrics.SparseTopKCategoricalAccuracy(k=2, from_sorted_ids=True)
    got, want = run_both(ours, theirs, [(yt, yp, None)])
    np.testing.assert_allclose(got, want)


# --------------------------------------------------------------------------- #
# get() and naming
# --------------------------------------------------------------------------- #
GET_IDENTIFIERS = [
    "mse", "MSE", "mae", "mape", "msle", "bce", "BCE", "mean_squared_error",
    "MeanSquaredError", "root_mean_squared_error", "binary_accuracy", "BinaryAccuracy",
    "categorical_accuracy", "sparse_categorical_accuracy", "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy", "auc", "AUC", "precision", "recall",
    "Precision", "true_positives", "false_negatives", "binary_crossentropy",
    "categorical_crossentropy", "sparse_categorical_crossentropy", "kl_divergence",
    "KLDivergence", "poisson", "hinge", "squared_hinge", "categorical_hinge",
    "cosine_similarity", "log_cosh_error", "LogCoshError", "r2_score", "R2Score",
    "mean_absolute_percentage_error",
]


@pytest.mark.parametrize("identifier", GET_IDENTIFIERS)
def test_get_string_matches_keras_compile(identifier):
    y = keras.ops.zeros((2, 3))
    theirs = keras_compile_utils.get_metric(identifier, y, y)
    ours = tm.get(identifier)
    assert isinstance(ours, tm.Metric)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.name == theirs.name == identifier


def test_get_functions_instances_classes_and_dicts():
    def myCustomMetric(y_true, y_pred):  # noqa: N802
        return torch.mean(y_pred, dim=-1)

    m = tm.get(myCustomMetric)
    assert isinstance(m, tm.MeanMetricWrapper)
    theirs = keras_compile_utils.get_metric(myCustomMetric, None, None)
    assert m.name == theirs.name == "my_custom_metric"
    assert tm.get(tm.binary_accuracy).name == "binary_accuracy"

    inst = tm.AUC(name="my_auc")
    assert tm.get(inst) is inst
    made = tm.get(tm.Precision)
    assert isinstance(made, tm.Precision)
    cfg = tm.serialize(tm.BinaryAccuracy(threshold=0.3, name="ba"))
    back = tm.get(cfg)
    assert isinstance(back, tm.BinaryAccuracy)
    assert back.threshold == 0.3 and back.name == "ba"
    assert tm.get(None) is None


def test_get_errors():
    with pytest.raises(ValueError) as e:
        tm.get("mean_sqared_error")
    msg = str(e.value)
    assert "`metrics`" in msg and "mean_squared_error" in msg and "mean_sqared_error" in msg
    assert "Did you mean" in msg
    with pytest.raises(ValueError, match="metrics"):
        tm.get("definitely_not_a_metric")
    for bad in (3, 2.5, object(), [1]):
        with pytest.raises(TypeError, match="metrics"):
            tm.get(bad)


def test_default_names_and_uniquify():
    reset_name_uids()
    assert tm.TruePositives().name == "true_positives"
    assert tm.TruePositives().name == "true_positives_1"
    assert tm.AUC().name == "auc"
    assert tm.MeanSquaredError().name == "mean_squared_error"
    assert tm.MeanSquaredError().name == "mean_squared_error"  # explicit default
    assert tm.LogCoshError().name == "logcosh"
    assert tm.SparseTopKCategoricalAccuracy().name == "sparse_top_k_categorical_accuracy"


# --------------------------------------------------------------------------- #
# Config round trips
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "metric",
    [
        lambda: tm.Mean(name="m"),
        lambda: tm.BinaryAccuracy(threshold=0.2),
        lambda: tm.TopKCategoricalAccuracy(k=3),
        lambda: tm.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, axis=1),
        lambda: tm.SparseCategoricalCrossentropy(ignore_class=0),
        lambda: tm.Precision(thresholds=[0.2, 0.4], top_k=2, class_id=1),
        lambda: tm.AUC(num_thresholds=20, curve="PR", multi_label=True, num_labels=3,
                       label_weights=[1.0, 2.0, 3.0]),
        lambda: tm.AUC(thresholds=[0.3, 0.6]),
        lambda: tm.R2Score(class_aggregation=None, num_regressors=1),
        lambda: tm.MeanMetricWrapper(tm.binary_accuracy, threshold=0.8),
        lambda: tm.RecallAtPrecision(0.7, num_thresholds=20),
    ],
)
def test_config_round_trip(metric):
    m = metric()
    config = m.get_config()
    clone = type(m).from_config(config)
    assert clone.get_config() == config
    assert clone.name == m.name


# --------------------------------------------------------------------------- #
# State handling
# --------------------------------------------------------------------------- #
def _all_metrics():
    return [
        tm.Mean(), tm.Sum(), tm.Accuracy(), tm.BinaryAccuracy(), tm.MeanSquaredError(),
        tm.RootMeanSquaredError(), tm.CosineSimilarity(), tm.R2Score(),
        tm.BinaryCrossentropy(), tm.KLDivergence(), tm.Poisson(), tm.Hinge(),
        tm.SquaredHinge(), tm.TruePositives(thresholds=[0.2, 0.5]), tm.Precision(),
        tm.Recall(thresholds=[0.0, 0.5, 1.0]), tm.Precision(top_k=2), tm.AUC(),
        tm.AUC(multi_label=True, curve="PR"), tm.AUC(thresholds=[0.2, 0.7]),
        tm.PrecisionAtRecall(0.5), tm.LogCoshError(), tm.MeanAbsolutePercentageError(),
    ]


def _feed(m, y_true, y_pred, sample_weight=None):
    if isinstance(m, (tm.Mean, tm.Sum)) and not isinstance(m, tm.MeanMetricWrapper) \
            and type(m) is not tm.RootMeanSquaredError:
        m.update_state(y_pred, sample_weight=sample_weight)
    else:
        m.update_state(y_true, y_pred, sample_weight=sample_weight)


def test_not_a_module_and_no_grad_states():
    model = torch.nn.Linear(4, 4)
    m = tm.Mean()
    model.metric = m
    assert not isinstance(m, torch.nn.Module)
    assert list(model.state_dict()) == ["weight", "bias"]
    y_pred = torch.rand(8, 4, requires_grad=True)
    y_true = (torch.rand(8, 4) > 0.5).float()
    for metric in _all_metrics():
        _feed(metric, y_true, y_pred * 1.0)
        assert metric.variables, metric
        assert not any(v.requires_grad for v in metric.variables), metric
        assert metric.result().grad_fn is None


def test_states_follow_input_device():
    # The "meta" device stands in for an accelerator: states must move to the
    # device of the data, and nothing may need real values on the host.
    y_true = (torch.rand(8, 4) > 0.5).float()
    y_pred = torch.rand(8, 4)
    for metric in _all_metrics():
        _feed(metric, y_true, y_pred)
        assert all(v.device.type == "cpu" for v in metric.variables)
        _feed(metric, y_true.to("meta"), y_pred.to("meta"), torch.ones(8, device="meta"))
        assert all(v.device.type == "meta" for v in metric.variables), metric
        assert metric.result().device.type == "meta", metric
        assert metric.device.type == "meta"
    for metric in _all_metrics():
        assert metric.to("meta") is metric
        assert all(v.device.type == "meta" for v in metric.variables)
        metric.reset_state()
        assert metric.device == torch.device("meta")


def test_no_host_sync_in_update(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("host synchronisation inside update_state")

    metrics = _all_metrics()
    y_true = (torch.rand(8, 4) > 0.5).float()
    y_pred = torch.rand(8, 4)
    sw = torch.rand(8)
    for attr in ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, attr, forbidden)
    for metric in metrics:
        _feed(metric, y_true, y_pred)
        _feed(metric, y_true, y_pred, sw)
    monkeypatch.undo()
    for metric in metrics:
        assert torch.isfinite(metric.result()).all() or isinstance(metric, tm.R2Score)


def test_inference_mode_updates():
    y_true = (torch.rand(8, 4) > 0.5).float()
    y_pred = torch.rand(8, 4)
    for metric in _all_metrics():
        with torch.inference_mode():
            _feed(metric, y_true, y_pred)
        _feed(metric, y_true, y_pred)
        assert not any(v.is_inference() for v in metric.variables), metric
        metric.reset_state()


def test_reset_state_and_call():
    m = tm.AUC()
    y_true = torch.tensor([0.0, 0.0, 1.0, 1.0])
    y_pred = torch.tensor([0.1, 0.4, 0.35, 0.8])
    first = m(y_true, y_pred)
    assert first.dim() == 0
    np.testing.assert_allclose(float(first), 0.75, rtol=1e-5)
    held = m.variables
    m.reset_state()
    assert all(float(v.abs().sum()) == 0.0 for v in m.variables)
    assert all(a is b for a, b in zip(held, m.variables))  # reset in place
    m.update_state(y_true, y_pred)
    np.testing.assert_allclose(float(m.result()), 0.75, rtol=1e-5)
    # result() must not alias the states.
    c = tm.TruePositives()
    r = c(torch.tensor([1.0]), torch.tensor([0.9]))
    c.reset_state()
    assert float(r) == 1.0


@pytest.mark.parametrize(
    "factory",
    [tm.Mean, tm.MeanSquaredError, tm.RootMeanSquaredError, tm.BinaryAccuracy,
     lambda: tm.Precision(thresholds=[0.3, 0.6]), tm.AUC,
     lambda: tm.AUC(multi_label=True, num_labels=4, curve="PR"), tm.R2Score,
     lambda: tm.Recall(top_k=2)],
)
def test_summed_states_give_global_result(factory):
    """All-reducing each state by its declared op equals seeing all the data."""
    rng = np.random.default_rng(11)
    y_true = torch.from_numpy(_f32(rng.integers(0, 2, size=(32, 4))))
    y_pred = torch.from_numpy(_f32(rng.uniform(size=(32, 4))))
    sw = torch.from_numpy(_f32(rng.uniform(size=(32,))))
    whole, a, b = factory(), factory(), factory()
    _feed(whole, y_true, y_pred, sw)
    _feed(a, y_true[:16], y_pred[:16], sw[:16])
    _feed(b, y_true[16:], y_pred[16:], sw[16:])
    assert a.state_reduce_ops == ["sum"] * len(a.variables)
    a.assign_variables([va + vb for va, vb in zip(a.variables, b.variables)])
    np.testing.assert_allclose(to_numpy(a.result()), to_numpy(whole.result()),
                               rtol=1e-5, atol=1e-6)


def test_custom_metric_subclass():
    class BinaryTruePositives(tm.Metric):
        def __init__(self, name="binary_true_positives", **kwargs):
            super().__init__(name=name, **kwargs)
            self.true_positives = self.add_state("true_positives", (), 0.0)

        def update_state(self, y_true, y_pred, sample_weight=None):
            values = (y_true.bool() & y_pred.bool()).float()
            self.true_positives.add_(values.sum())

        def result(self):
            return self.true_positives.clone()

    m = BinaryTruePositives()
    m.update_state(torch.tensor([1, 1, 0]), torch.tensor([1, 0, 1]))
    assert float(m.result()) == 1.0
    assert m.variables[0] is m.true_positives
    m.reset_state()
    assert float(m.result()) == 0.0
    with pytest.raises(ValueError):
        m.add_state("true_positives", ())


def test_argument_validation():
    with pytest.raises(ValueError, match="Threshold values"):
        tm.Precision(thresholds=[1.5])
    with pytest.raises(ValueError):
        tm.AUC(num_thresholds=1)
    with pytest.raises(ValueError):
        tm.AUC(curve="XYZ")
    with pytest.raises(ValueError):
        tm.AUC(summation_method="trapezoid")
    with pytest.raises(ValueError):
        tm.AUC(num_labels=3)
    with pytest.raises(ValueError):
        tm.R2Score(class_aggregation="bad")
    with pytest.raises(ValueError):
        tm.R2Score().update_state(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError):
        tm.AUC(multi_label=True).update_state(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError):
        tm.Precision(class_id=1).update_state(torch.zeros(4), torch.zeros(4))
