"""Differential tests of the F-score, IoU and correlation metrics against
Keras 3 (torch backend), plus their state rules (devices, no host sync,
sum-reducible states) and argument validation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import torchfit.metrics as tm

keras = pytest.importorskip("keras")

RTOL, ATOL = 1e-5, 1e-6
pytestmark = pytest.mark.filterwarnings("ignore:.*truncated to integers")


def _f32(x):
    return np.asarray(x, dtype=np.float32)


def _np(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return keras.ops.convert_to_numpy(x)


def _run(ours, theirs, batches):
    for yt, yp, sw in batches:
        ours.update_state(
            torch.from_numpy(yt), torch.from_numpy(yp),
            sample_weight=None if sw is None else torch.from_numpy(sw),
        )
        theirs.update_state(yt, yp, sample_weight=sw)
    return _np(ours.result()), _np(theirs.result())


# --------------------------------------------------------------------------- #
# F-scores
# --------------------------------------------------------------------------- #
def _multilabel_batches(seed, weighted, n=3, shape=(16, 5)):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        yt = _f32(rng.integers(0, 2, size=shape))
        yp = _f32(rng.uniform(size=shape))
        yp[0] = 0.0  # an all-zero row: no positive without a threshold
        sw = _f32(rng.uniform(0.0, 2.0, size=shape[:1])) if weighted else None
        out.append((yt, yp, sw))
    return out


F_CASES = [
    ("F1Score", {}),
    ("F1Score", {"average": "micro"}),
    ("F1Score", {"average": "macro", "threshold": 0.5}),
    ("F1Score", {"average": "weighted", "threshold": 0.3}),
    ("FBetaScore", {"beta": 2.0}),
    ("FBetaScore", {"beta": 0.5, "average": "micro", "threshold": 0.6}),
    ("FBetaScore", {"beta": 2.0, "average": "weighted"}),
    ("FBetaScore", {"beta": 1.5, "average": "macro", "threshold": 1.0}),
]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name,kwargs", F_CASES, ids=[f"{n}-{k}" for n, k in F_CASES])
def test_f_scores_match_keras(name, kwargs, weighted):
    batches = _multilabel_batches(len(kwargs) + len(name), weighted)
    ours, theirs = _run(getattr(tm, name)(**kwargs), getattr(keras.metrics, name)(**kwargs), batches)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


def test_f_score_keras_doc_numbers_and_reset():
    y_true = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0]], np.int32)
    y_pred = np.array([[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]], np.float32)
    f1 = tm.F1Score(threshold=0.5)
    np.testing.assert_allclose(_np(f1(y_true, y_pred)), [0.5, 0.8, 0.6666667], rtol=1e-6)
    f1.reset_state()
    assert all(float(v.abs().sum()) == 0 for v in f1.variables)
    fb = tm.FBetaScore(beta=2.0, threshold=0.5)
    np.testing.assert_allclose(_np(fb(y_true, y_pred)), [0.3846154, 0.90909094, 0.8333334], rtol=1e-6)
    assert float(tm.F1Score().result()) == 0.0  # nothing seen yet


# --------------------------------------------------------------------------- #
# IoU family
# --------------------------------------------------------------------------- #
def _segmentation_batches(seed, num_classes, weight=None, one_hot_true=False, scores_pred=False,
                          out_of_range=False, n=3, shape=(4, 6, 5)):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        yt = rng.integers(0, num_classes, size=shape)
        if out_of_range:
            yt.reshape(-1)[::11] = num_classes  # ids outside the classes are skipped
            yt.reshape(-1)[5::13] = -1
        yp = rng.integers(0, num_classes, size=shape)
        # Make some classes absent from a batch to exercise the valid-entry rule.
        yp[yp == num_classes - 1] = 0
        if one_hot_true:
            yt = np.eye(num_classes)[np.clip(yt, 0, num_classes - 1)]
        if scores_pred:
            yp = np.eye(num_classes)[yp] * 0.8 + rng.uniform(0, 0.1, size=shape + (num_classes,))
        sw = None
        if weight == "int":
            sw = _f32(rng.integers(0, 3, size=shape))
        elif weight == "float":
            sw = _f32(rng.uniform(0.0, 2.0, size=shape))
        out.append((_f32(yt), _f32(yp), sw))
    return out


IOU_CASES = [
    ("IoU", {"num_classes": 4, "target_class_ids": [0, 2]}, {}),
    ("IoU", {"num_classes": 4, "target_class_ids": [3]}, {}),  # never predicted
    ("IoU", {"num_classes": 4, "target_class_ids": [1, 2], "ignore_class": 0}, {}),
    ("IoU", {"num_classes": 3, "target_class_ids": [0, 1, 2]}, {"out_of_range": True}),
    ("IoU", {"num_classes": 4, "target_class_ids": [0, 1], "dtype": "float32"}, {"weight": "float"}),
    ("MeanIoU", {"num_classes": 4}, {}),
    ("MeanIoU", {"num_classes": 4}, {"weight": "int"}),
    ("MeanIoU", {"num_classes": 5, "ignore_class": 2}, {"out_of_range": True}),
    ("MeanIoU", {"num_classes": 4, "sparse_y_pred": False}, {"scores_pred": True}),
    ("OneHotIoU", {"num_classes": 4, "target_class_ids": [0, 3]}, {"one_hot_true": True, "scores_pred": True}),
    ("OneHotIoU", {"num_classes": 4, "target_class_ids": [1], "sparse_y_pred": True},
     {"one_hot_true": True}),
    ("OneHotMeanIoU", {"num_classes": 4}, {"one_hot_true": True, "scores_pred": True}),
    ("OneHotMeanIoU", {"num_classes": 4, "ignore_class": 1}, {"one_hot_true": True, "scores_pred": True,
                                                              "weight": "int"}),
]


@pytest.mark.parametrize("name,kwargs,data", IOU_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(IOU_CASES)])
def test_iou_metrics_match_keras(name, kwargs, data):
    batches = _segmentation_batches(len(kwargs), kwargs["num_classes"], **data)
    ours_m, theirs_m = getattr(tm, name)(**kwargs), getattr(keras.metrics, name)(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, theirs = _run(ours_m, theirs_m, batches)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_np(ours_m.total_cm), _np(theirs_m.total_cm), rtol=1e-6)
    assert ours_m.total_cm.dtype == getattr(torch, str(theirs_m.total_cm.dtype).replace("torch.", ""))


@pytest.mark.parametrize("kwargs", [{}, {"target_class_ids": [1], "threshold": 0.3}, {"target_class_ids": [0]}])
def test_binary_iou_matches_keras(kwargs):
    rng = np.random.default_rng(3)
    batches = []
    for _ in range(3):
        yp = _f32(rng.uniform(size=(20, 1)))
        yp[:3, 0] = [0.3, 0.5, 0.0]
        batches.append((_f32(rng.integers(0, 2, size=(20, 1))), yp, _f32(rng.integers(1, 3, size=(20, 1)))))
    ours, theirs = _run(tm.BinaryIoU(**kwargs), keras.metrics.BinaryIoU(**kwargs), batches)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


def test_iou_float_weights_warn_once_and_truncate_like_keras():
    y_true = np.array([0, 1, 1, 2], np.float32)
    y_pred = np.array([0, 1, 2, 2], np.float32)
    sw = np.array([0.5, 1.7, 2.2, 1.0], np.float32)
    ours = tm.MeanIoU(3)
    with pytest.warns(UserWarning, match="truncated"):
        ours.update_state(torch.from_numpy(y_true), torch.from_numpy(y_pred), sample_weight=torch.from_numpy(sw))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours.update_state(torch.from_numpy(y_true), torch.from_numpy(y_pred), sample_weight=torch.from_numpy(sw))
    theirs = keras.metrics.MeanIoU(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2):
            theirs.update_state(y_true, y_pred, sample_weight=sw)
    np.testing.assert_allclose(_np(ours.result()), _np(theirs.result()), rtol=RTOL)


def test_iou_names_and_configs_match_keras():
    keras.utils.clear_session()
    from torchfit.metrics.base import reset_name_uids

    reset_name_uids()
    pairs = [
        (tm.IoU(3, [0, 1]), keras.metrics.IoU(3, [0, 1])),
        (tm.MeanIoU(3, ignore_class=0), keras.metrics.MeanIoU(3, ignore_class=0)),
        (tm.BinaryIoU(), keras.metrics.BinaryIoU()),
        (tm.OneHotIoU(3, [2]), keras.metrics.OneHotIoU(3, [2])),
        (tm.OneHotMeanIoU(3), keras.metrics.OneHotMeanIoU(3)),
        (tm.F1Score(average="macro"), keras.metrics.F1Score(average="macro")),
        (tm.FBetaScore(beta=2.0), keras.metrics.FBetaScore(beta=2.0)),
        (tm.PearsonCorrelation(axis=0), keras.metrics.PearsonCorrelation(axis=0)),
        (tm.ConcordanceCorrelation(), keras.metrics.ConcordanceCorrelation()),
    ]
    for ours, theirs in pairs:
        assert ours.name.split("_")[:-1] == theirs.name.split("_")[:-1] or ours.name == theirs.name
        config, keras_config = ours.get_config(), theirs.get_config()
        keras_config.pop("name")
        config.pop("name")
        assert config == keras_config, (config, keras_config)
        clone = type(ours).from_config(ours.get_config())
        assert clone.get_config() == ours.get_config()
        assert isinstance(tm.deserialize(tm.serialize(ours)), type(ours))


# --------------------------------------------------------------------------- #
# Correlations
# --------------------------------------------------------------------------- #
CORR_SHAPES = [((16, 5), None, None), ((16, 5), None, "batch"), ((4, 6, 3), None, None),
               ((4, 6, 3), None, "batch"), ((16, 5), 0, None)]


@pytest.mark.parametrize("name", ["PearsonCorrelation", "ConcordanceCorrelation"])
@pytest.mark.parametrize("shape,axis,weight", CORR_SHAPES)
def test_correlations_match_keras(name, shape, axis, weight):
    rng = np.random.default_rng(len(shape) + (axis or 0))
    batches = []
    for _ in range(3):
        yt = _f32(rng.normal(size=shape))
        yp = _f32(0.6 * yt + rng.normal(scale=0.8, size=shape) + 0.3)
        sw = _f32(rng.uniform(0, 2, size=shape[:1])) if weight else None
        if axis == 0:
            sw = None
        batches.append((yt, yp, sw))
    kwargs = {} if axis is None else {"axis": axis}
    ours, theirs = _run(getattr(tm, name)(**kwargs), getattr(keras.metrics, name)(**kwargs), batches)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("fn", ["pearson_correlation", "concordance_correlation"])
def test_correlation_functions_match_keras(fn):
    rng = np.random.default_rng(0)
    yt, yp = _f32(rng.normal(size=(8, 7))), _f32(rng.normal(size=(8, 7)))
    np.testing.assert_allclose(
        _np(getattr(tm, fn)(torch.from_numpy(yt), torch.from_numpy(yp))),
        _np(getattr(keras.metrics, fn)(yt, yp)), rtol=RTOL, atol=ATOL,
    )


# --------------------------------------------------------------------------- #
# State rules
# --------------------------------------------------------------------------- #
def _factories():
    return [
        lambda: tm.F1Score(),
        lambda: tm.FBetaScore(beta=2.0, average="micro", threshold=0.5),
        lambda: tm.F1Score(average="weighted"),
        lambda: tm.IoU(4, [0, 1], ignore_class=3),
        lambda: tm.MeanIoU(4, sparse_y_pred=False),
        lambda: tm.OneHotMeanIoU(4),
        lambda: tm.OneHotIoU(4, [2], dtype="float32"),
        lambda: tm.BinaryIoU(),
        lambda: tm.PearsonCorrelation(),
        lambda: tm.ConcordanceCorrelation(),
    ]


def _feed(metric, n=32, seed=0, lo=0, hi=None):
    rng = np.random.default_rng(seed)
    labels = torch.from_numpy(rng.integers(0, 4, size=(n,)))
    y_onehot = torch.nn.functional.one_hot(labels, 4).float()
    scores = torch.from_numpy(_f32(rng.uniform(size=(n, 4))))
    sw = torch.from_numpy(_f32(rng.integers(1, 3, size=(n,))))
    sl = slice(lo, hi)
    if isinstance(metric, (tm.IoU,)) and not isinstance(metric, tm.BinaryIoU):
        y_true = y_onehot if not metric.sparse_y_true else labels.float()
        y_pred = scores if not metric.sparse_y_pred else torch.argmax(scores, -1).float()
    elif isinstance(metric, tm.BinaryIoU):
        y_true, y_pred = (labels % 2).float(), scores[:, 0]
    elif isinstance(metric, tm.FBetaScore):
        y_true, y_pred = y_onehot, scores
    else:
        y_true, y_pred = scores, scores * 0.5 + torch.from_numpy(_f32(rng.normal(size=(n, 4))))
    metric.update_state(y_true[sl], y_pred[sl], sample_weight=sw[sl])


@pytest.mark.parametrize("index", range(10))
def test_summed_states_give_global_result(index):
    factory = _factories()[index]
    whole, a, b = factory(), factory(), factory()
    _feed(whole)
    _feed(a, hi=16)
    _feed(b, lo=16)
    assert a.state_reduce_ops == ["sum"] * len(a.variables) and a.variables
    a.assign_variables([va + vb for va, vb in zip(a.variables, b.variables)])
    np.testing.assert_allclose(_np(a.result()), _np(whole.result()), rtol=1e-5, atol=1e-6)


def test_no_host_sync_in_update(monkeypatch):
    metrics = [f() for f in _factories()]
    for m in metrics:
        _feed(m, seed=1)  # build lazily created states first

    def forbidden(*args, **kwargs):
        raise AssertionError("host synchronisation inside update_state")

    for attr in ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, attr, forbidden)
    for m in metrics:
        _feed(m, seed=2)
    monkeypatch.undo()
    for m in metrics:
        assert torch.isfinite(m.result()).all()


def test_states_follow_input_device_and_inference_mode():
    for factory in _factories():
        m = factory()
        with torch.inference_mode():
            _feed(m)
        _feed(m, seed=3)
        assert not any(v.is_inference() for v in m.variables)
        m.reset_state()
        assert all(float(v.abs().sum()) == 0 for v in m.variables)
        m.to("meta")
        assert all(v.device.type == "meta" for v in m.variables)
        m.reset_state()
        m.result()  # constants follow the states


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_updates():
    for factory in _factories():
        m = factory()
        _feed(m)
        cpu_result = _np(m.result())
        m.reset_state()
        m.to("cuda")
        rng = np.random.default_rng(0)
        del rng
        _feed(m)
        assert all(v.is_cuda for v in m.variables)
        np.testing.assert_allclose(_np(m.result()), cpu_result, rtol=1e-5, atol=1e-6)


def test_get_resolves_new_names():
    assert isinstance(tm.get("f1_score"), tm.F1Score)
    assert isinstance(tm.get("FBetaScore"), tm.FBetaScore)
    assert isinstance(tm.get("pearson_correlation"), tm.PearsonCorrelation)
    assert isinstance(tm.get("ConcordanceCorrelation"), tm.ConcordanceCorrelation)
    assert isinstance(tm.get({"class_name": "MeanIoU", "config": {"num_classes": 3}}), tm.MeanIoU)


def test_compiled_model_with_new_metrics_matches_keras():
    import sys

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from twins import mlp_pair, rng_data

    from torchfit.metrics.base import reset_name_uids

    keras.utils.clear_session()
    reset_name_uids()
    data = rng_data(n=40)
    tmodel, kmodel = mlp_pair([6, 8, 3], "softmax")
    tmodel.compile(optimizer="sgd", loss="categorical_crossentropy",
                   metrics=[tm.F1Score(average="macro"), tm.OneHotMeanIoU(3)])
    kmodel.compile(optimizer="sgd", loss="categorical_crossentropy",
                   metrics=[keras.metrics.F1Score(average="macro"), keras.metrics.OneHotMeanIoU(3)])
    fit = dict(x=data["x"], y=data["y_onehot"], batch_size=8, epochs=2, shuffle=False, verbose=0)
    t_hist, k_hist = tmodel.fit(**fit), kmodel.fit(**fit)
    assert list(t_hist.history) == list(k_hist.history)
    for key in k_hist.history:
        np.testing.assert_allclose(t_hist.history[key], k_hist.history[key], rtol=2e-4, atol=1e-6)


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #
INVALID = [
    (lambda: tm.F1Score(average="mean"), ValueError, ["average", "average=mean", "micro"]),
    (lambda: tm.FBetaScore(beta=0.0), ValueError, ["beta", "> 0", "0.0"]),
    (lambda: tm.FBetaScore(beta="2"), ValueError, ["beta", "beta=2 ", "str"]),
    (lambda: tm.FBetaScore(beta=2), ValueError, ["beta", "Python float", "int"]),
    (lambda: tm.F1Score(threshold=1.5), ValueError, ["threshold", "0 < threshold <= 1", "1.5"]),
    (lambda: tm.F1Score(threshold="high"), ValueError, ["threshold", "threshold=high", "str"]),
    (lambda: tm.F1Score(threshold=1), ValueError, ["threshold", "Python float", "int"]),
    (lambda: tm.F1Score().update_state(torch.zeros(4), torch.zeros(4)), ValueError, ["2D", "(4,)"]),
    (lambda: tm.IoU(3, [3]), ValueError, ["target_class_ids", "[0, 3)", "[3]"]),
    (lambda: tm.IoU(3, []), ValueError, ["target_class_ids", "at least one"]),
    (lambda: tm.IoU(3, 1), TypeError, ["target_class_ids", "list", "int"]),
    (lambda: tm.IoU(3, [0.5]), TypeError, ["target_class_ids", "0.5"]),
    (lambda: tm.MeanIoU(0), ValueError, ["num_classes", ">= 1", "0"]),
    (lambda: tm.MeanIoU(2.0), TypeError, ["num_classes", "int", "float"]),
    (lambda: tm.MeanIoU(3, ignore_class="bg"), TypeError, ["ignore_class", "'bg'"]),
    (lambda: tm.MeanIoU(3, sparse_y_true=1), TypeError, ["sparse_y_true", "bool"]),
    (lambda: tm.MeanIoU(3, axis=None), TypeError, ["axis", "int", "None"]),
    (lambda: tm.BinaryIoU(threshold=None), TypeError, ["threshold", "None"]),
    (lambda: tm.MeanIoU(3).update_state(torch.zeros(4), torch.zeros(5)), ValueError, ["4", "5"]),
    (lambda: tm.MeanIoU(3).update_state(torch.zeros(4), torch.zeros(4), sample_weight=torch.ones(3)),
     ValueError, ["sample_weight", "(3,)"]),
    (lambda: tm.PearsonCorrelation(axis="last"), TypeError, ["axis", "'last'"]),
]


@pytest.mark.parametrize("make,error,fragments", INVALID, ids=[str(i) for i in range(len(INVALID))])
def test_argument_validation(make, error, fragments):
    with pytest.raises(error) as info:
        make()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
