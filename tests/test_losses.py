"""Differential tests: torchfit.losses against Keras 3 (torch backend)."""

import json
import os
import warnings
import zlib

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import pytest
import torch

import keras  # noqa: E402  (needs KERAS_BACKEND first)

from torchfit import losses as L

RTOL, ATOL = 1e-5, 1e-6
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", None, "none"]

# class name -> (function name, input kind, constructor/function kwargs variants)
SPECS = {
    "MeanSquaredError": ("mean_squared_error", "reg", [{}]),
    "MeanAbsoluteError": ("mean_absolute_error", "reg", [{}]),
    "MeanAbsolutePercentageError": ("mean_absolute_percentage_error", "mape", [{}]),
    "MeanSquaredLogarithmicError": ("mean_squared_logarithmic_error", "reg", [{}]),
    "CosineSimilarity": ("cosine_similarity", "reg", [{}, {"axis": 0}]),
    "Huber": ("huber", "reg", [{}, {"delta": 0.5}, {"delta": 2.5}]),
    "LogCosh": ("log_cosh", "wide", [{}]),
    "Hinge": ("hinge", "hinge", [{}]),
    "SquaredHinge": ("squared_hinge", "hinge", [{}]),
    "CategoricalHinge": ("categorical_hinge", "cat_scores", [{}]),
    "KLDivergence": ("kl_divergence", "prob", [{}]),
    "Poisson": ("poisson", "pos", [{}]),
    "BinaryCrossentropy": (
        "binary_crossentropy",
        "binary",
        [
            {},
            {"from_logits": True},
            {"label_smoothing": 0.1},
            {"from_logits": True, "label_smoothing": 0.2},
            {"axis": 0},
        ],
    ),
    "BinaryFocalCrossentropy": (
        "binary_focal_crossentropy",
        "binary",
        [
            {},
            {"apply_class_balancing": True},
            {"apply_class_balancing": True, "alpha": 0.4, "gamma": 1.5},
            {"from_logits": True},
            {"from_logits": True, "label_smoothing": 0.1, "gamma": 0.0},
        ],
    ),
    "CategoricalCrossentropy": (
        "categorical_crossentropy",
        "cat",
        [
            {},
            {"from_logits": True},
            {"label_smoothing": 0.1},
            {"from_logits": True, "label_smoothing": 0.2},
            {"axis": 0, "label_smoothing": 0.1},
        ],
    ),
    "CategoricalFocalCrossentropy": (
        "categorical_focal_crossentropy",
        "cat",
        [
            {},
            {"from_logits": True},
            {"alpha": 0.5, "gamma": 1.0, "label_smoothing": 0.1},
            {"from_logits": True, "gamma": 3.0, "axis": 0},
        ],
    ),
    "SparseCategoricalCrossentropy": (
        "sparse_categorical_crossentropy",
        "sparse",
        [
            {},
            {"from_logits": True},
            {"ignore_class": 1},
            {"ignore_class": 1, "from_logits": True},
        ],
    ),
    "Dice": ("dice", "seg", [{}, {"axis": -1}, {"axis": (0,)}]),
    "Tversky": ("tversky", "seg", [{}, {"alpha": 0.3, "beta": 0.7}, {"axis": -1}]),
}

# name -> (y_true shape, y_pred shape); the sparse kind maps names to its own.
SHAPES = {
    "2d": ((8, 5), (8, 5)),
    "col": ((8, 1), (8, 1)),
    "vec": ((8,), (8,)),
    "temporal": ((4, 6, 3), (4, 6, 3)),
    "vec_vs_col": ((8,), (8, 1)),
    "col_vs_vec": ((8, 1), (8,)),
}
SPARSE_SHAPES = {
    "2d": ((8,), (8, 5)),
    "col": ((8, 1), (8, 5)),
    "vec": ((), (5,)),
    "temporal": ((4, 6), (4, 6, 3)),
    "vec_vs_col": ((4, 6, 1), (4, 6, 3)),
    "col_vs_vec": ((8, 1), (8, 3)),
}
SAME_RANK_SHAPES = ["2d", "col", "vec", "temporal"]
WEIGHTS = ["none", "per_sample", "column", "temporal_or_scalar"]


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def make_inputs(kind, shape_name, rng, from_logits=False, int_labels=False):
    """Seeded (y_true, y_pred) numpy float32 inputs for one loss kind."""
    table = SPARSE_SHAPES if kind == "sparse" else SHAPES
    t_shape, p_shape = table[shape_name]
    f32 = np.float32
    if kind == "sparse":
        n_cls = p_shape[-1]
        y_true = rng.integers(0, n_cls, size=t_shape)
        if not int_labels:
            y_true = y_true.astype(f32)
        y_pred = rng.normal(0, 3, p_shape) if from_logits else rng.uniform(0.0, 1.0, p_shape)
        y_pred = np.asarray(y_pred, f32)
        if not from_logits:
            y_pred.flat[0] = 0.0  # exercise clipping
        return y_true, y_pred
    if kind in ("reg", "wide"):
        scale = 30.0 if kind == "wide" else 1.0
        return (rng.normal(0, scale, t_shape).astype(f32), rng.normal(0, scale, p_shape).astype(f32))
    if kind == "mape":
        sign = rng.choice([-1.0, 1.0], size=t_shape)
        y_true = (sign * rng.uniform(0.5, 2.0, t_shape)).astype(f32)
        y_true.flat[0] = 0.0  # epsilon-clipped denominator
        return y_true, rng.normal(0, 1, p_shape).astype(f32)
    if kind == "hinge":
        y_true = rng.integers(0, 2, size=t_shape).astype(f32)
        if rng.random() < 0.5:
            y_true = 2 * y_true - 1  # already -1/1
        return y_true, rng.normal(0, 1, p_shape).astype(f32)
    if kind in ("prob", "pos"):
        y_true = rng.uniform(0, 1, t_shape).astype(f32)
        y_pred = rng.uniform(0, 1, p_shape).astype(f32)
        if kind == "prob":
            y_true.flat[0] = 0.0
            y_pred.flat[-1] = 0.0
        return y_true, y_pred
    if kind in ("binary", "seg"):
        y_true = rng.integers(0, 2, size=t_shape)
        y_true = y_true if int_labels else y_true.astype(f32)
        if from_logits:
            y_pred = rng.normal(0, 5, p_shape).astype(f32)
            y_pred.flat[0] = 40.0  # large logits stay finite
        else:
            y_pred = rng.uniform(0, 1, p_shape).astype(f32)
            y_pred.flat[0] = 0.0
            y_pred.flat[-1] = 1.0
        return y_true, y_pred
    if kind in ("cat", "cat_scores"):
        n_cls = t_shape[-1] if len(t_shape) else 1
        idx = rng.integers(0, n_cls, size=t_shape[:-1]) if len(t_shape) else 0
        y_true = np.eye(n_cls, dtype=f32)[idx].reshape(t_shape)
        y_true = y_true.astype(np.int64) if int_labels else y_true
        if from_logits or kind == "cat_scores":
            y_pred = rng.normal(0, 3, p_shape).astype(f32)
        else:
            y_pred = rng.uniform(0.01, 1, p_shape).astype(f32)
            y_pred.flat[1 if y_pred.size > 1 else 0] = 1.0
        return y_true, y_pred
    raise AssertionError(kind)


def make_weight(weight_name, y_pred_shape, rng):
    f32 = np.float32
    if weight_name == "none":
        return None
    n = y_pred_shape[0]
    if weight_name == "per_sample":
        w = rng.uniform(0, 2, (n,)).astype(f32)
        w[0] = 0.0
        return w
    if weight_name == "column":
        return rng.uniform(0, 2, (n, 1)).astype(f32)
    if len(y_pred_shape) == 3:  # temporal (N, T) weights
        return rng.uniform(0, 2, y_pred_shape[:2]).astype(f32)
    return 2.5


def to_np(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def assert_same(got, expected):
    assert isinstance(got, torch.Tensor)
    got = got.detach().cpu().numpy()
    expected = to_np(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


def both(fn_tf, fn_keras):
    """Runs both sides; if Keras raises, torchfit must raise too."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = fn_keras()
        except Exception:
            with pytest.raises(Exception):
                fn_tf()
            return None, None
        return fn_tf(), expected


# ---------------------------------------------------------------------------
# Differential tests
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=str)
@pytest.mark.parametrize("weight", WEIGHTS)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("cls_name", list(SPECS))
def test_class_matches_keras(cls_name, shape, weight, reduction):
    kind = SPECS[cls_name][1]
    rng = _rng(cls_name, shape, weight, str(reduction))
    y_true, y_pred = make_inputs(kind, shape, rng)
    sw = make_weight(weight, y_pred.shape if y_pred.ndim else (1,), rng)
    ours = getattr(L, cls_name)(reduction=reduction)
    theirs = getattr(keras.losses, cls_name)(reduction=reduction)
    got, expected = both(
        lambda: ours(y_true, y_pred, sample_weight=sw),
        lambda: theirs(y_true, y_pred, sample_weight=sw),
    )
    if expected is not None:
        assert_same(got, expected)


# Shapes for which Keras raises are also checked (torchfit must raise), but
# most combinations must actually produce numbers.
def test_class_cases_mostly_computable():
    raised = 0
    total = 0
    for cls_name in SPECS:
        for shape in SHAPES:
            for weight in ("none", "per_sample"):
                kind = SPECS[cls_name][1]
                rng = _rng("count", cls_name, shape, weight)
                y_true, y_pred = make_inputs(kind, shape, rng)
                sw = make_weight(weight, y_pred.shape if y_pred.ndim else (1,), rng)
                total += 1
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        getattr(keras.losses, cls_name)()(y_true, y_pred, sample_weight=sw)
                    except Exception:
                        raised += 1
    assert raised < total * 0.2


def _variant_cases():
    for cls_name, (_, _, variants) in SPECS.items():
        for i, kw in enumerate(variants):
            yield pytest.param(cls_name, kw, id=f"{cls_name}-{i}")


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", None, "mean_with_sample_weight"], ids=str)
@pytest.mark.parametrize("weight", ["none", "per_sample", "temporal_or_scalar"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("cls_name,kwargs", list(_variant_cases()))
def test_class_variants_match_keras(cls_name, kwargs, shape, weight, reduction):
    kind = SPECS[cls_name][1]
    rng = _rng("variant", cls_name, repr(kwargs), shape, weight, str(reduction))
    y_true, y_pred = make_inputs(kind, shape, rng, from_logits=kwargs.get("from_logits", False))
    sw = make_weight(weight, y_pred.shape if y_pred.ndim else (1,), rng)
    ours = getattr(L, cls_name)(reduction=reduction, **kwargs)
    theirs = getattr(keras.losses, cls_name)(reduction=reduction, **kwargs)
    keras_sw = sw
    if isinstance(sw, float) and kwargs.get("ignore_class") is not None:
        # Keras multiplies a 0-d weight by the ignore_class mask in place,
        # which torch refuses; torchfit broadcasts it like a full weight.
        keras_sw = np.full(y_pred.shape[:-1], sw, np.float32)
    got, expected = both(
        lambda: ours(y_true, y_pred, sample_weight=sw),
        lambda: theirs(y_true, y_pred, sample_weight=keras_sw),
    )
    if expected is not None:
        assert_same(got, expected)


@pytest.mark.parametrize("as_torch", [False, True], ids=["numpy", "torch"])
@pytest.mark.parametrize("shape", SAME_RANK_SHAPES)
@pytest.mark.parametrize("cls_name,kwargs", list(_variant_cases()))
def test_function_matches_keras(cls_name, kwargs, shape, as_torch):
    fn_name, kind, _ = SPECS[cls_name]
    rng = _rng("fn", cls_name, repr(kwargs), shape)
    y_true, y_pred = make_inputs(kind, shape, rng, from_logits=kwargs.get("from_logits", False))
    ours = getattr(L, fn_name)
    theirs = getattr(keras.losses, fn_name)
    args = (torch.from_numpy(np.asarray(y_true)), torch.from_numpy(y_pred)) if as_torch else (y_true, y_pred)
    got, expected = both(lambda: ours(*args, **kwargs), lambda: theirs(y_true, y_pred, **kwargs))
    if expected is not None:
        assert_same(got, expected)


@pytest.mark.filterwarnings("ignore::SyntaxWarning")
@pytest.mark.parametrize("cls_name", ["BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "Dice", "Hinge", "BinaryFocalCrossentropy"])
@pytest.mark.parametrize("shape", ["2d", "temporal", "col"])
def test_integer_labels(cls_name, shape):
    fn_name, kind, _ = SPECS[cls_name]
    rng = _rng("int", cls_name, shape)
    y_true, y_pred = make_inputs(kind, shape, rng, int_labels=True)
    if kind == "hinge":
        y_true = y_true.astype(np.int32)
    got = getattr(L, cls_name)()(y_true, y_pred)
    assert got.dtype == torch.float32
    assert_same(got, getattr(keras.losses, cls_name)()(y_true, y_pred))
    got = getattr(L, fn_name)(torch.from_numpy(np.asarray(y_true)), torch.from_numpy(y_pred))
    assert got.dtype == torch.float32
    assert_same(got, getattr(keras.losses, fn_name)(y_true, y_pred))


def test_float64_inputs_give_float32_class_results_and_float64_functions():
    rng = _rng("f64")
    y_true = rng.normal(size=(8, 5))
    y_pred = rng.normal(size=(8, 5))
    got = L.MeanSquaredError()(y_true, y_pred)
    assert got.dtype == torch.float32
    assert_same(got, keras.losses.MeanSquaredError()(y_true, y_pred))
    got = L.mean_squared_error(torch.from_numpy(y_true), torch.from_numpy(y_pred))
    assert got.dtype == torch.float64
    assert_same(got, keras.losses.mean_squared_error(y_true, y_pred))
    loss64 = L.Huber(dtype="float64")
    assert loss64.dtype == "float64"
    for reduction in REDUCTIONS:
        got = L.Huber(dtype="float64", reduction=reduction)(y_true, y_pred)
        assert got.dtype == torch.float64
        # Keras's divide_no_nan returns floatx (float32) for the mean
        # reductions even in float64; torchfit keeps float64.
        expected = to_np(keras.losses.Huber(dtype="float64", reduction=reduction)(y_true, y_pred))
        np.testing.assert_allclose(got.numpy(), expected, rtol=RTOL, atol=ATOL)
    assert L.Huber(dtype=torch.float64).dtype == "float64"
    assert L.Huber(dtype="mixed_bfloat16").dtype == "bfloat16"


def test_python_lists_and_torch_tensors_accepted():
    y_true = [[0.0, 1.0], [1.0, 0.0]]
    y_pred = [[0.2, 0.8], [0.6, 0.4]]
    expected = keras.losses.BinaryCrossentropy()(np.array(y_true, "float32"), np.array(y_pred, "float32"))
    assert_same(L.BinaryCrossentropy()(y_true, y_pred), expected)
    assert_same(L.BinaryCrossentropy()(torch.tensor(y_true), torch.tensor(y_pred)), expected)


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=str)
def test_categorical_focal_per_class_alpha(reduction):
    rng = _rng("alpha", str(reduction))
    y_true, y_pred = make_inputs("cat", "2d", rng)
    alpha = [0.1, 0.2, 0.3, 0.25, 0.15]
    sw = make_weight("per_sample", y_pred.shape, rng)
    got = L.CategoricalFocalCrossentropy(alpha=alpha, reduction=reduction)(y_true, y_pred, sw)
    assert_same(got, keras.losses.CategoricalFocalCrossentropy(alpha=alpha, reduction=reduction)(y_true, y_pred, sw))


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("ignore_class", [None, 0, -1])
def test_sparse_class_axis(from_logits, ignore_class):
    rng = _rng("sparse_axis", from_logits, ignore_class)
    y_pred = rng.normal(size=(4, 6, 3)).astype("float32")
    if not from_logits:
        y_pred = np.abs(y_pred)
    y_true = rng.integers(0, 6, size=(4, 3))
    if ignore_class == -1:
        y_true[0, 0] = -1
    kw = dict(from_logits=from_logits, ignore_class=ignore_class, axis=1)
    assert_same(L.sparse_categorical_crossentropy(y_true, y_pred, **kw), keras.losses.sparse_categorical_crossentropy(y_true, y_pred, **kw))
    assert_same(L.SparseCategoricalCrossentropy(**kw)(y_true, y_pred), keras.losses.SparseCategoricalCrossentropy(**kw)(y_true, y_pred))


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=str)
@pytest.mark.parametrize("weight", ["none", "per_sample", "temporal_or_scalar"])
def test_sparse_ignore_class_all_ignored_and_mask(reduction, weight):
    rng = _rng("ignore", str(reduction), weight)
    y_true, y_pred = make_inputs("sparse", "temporal", rng, from_logits=True)
    y_true[0] = 2.0  # a whole sequence ignored
    sw = make_weight(weight, y_pred.shape, rng)
    kw = dict(from_logits=True, ignore_class=2, reduction=reduction)
    got, expected = both(
        lambda: L.SparseCategoricalCrossentropy(**kw)(y_true, y_pred, sw),
        lambda: keras.losses.SparseCategoricalCrossentropy(**kw)(y_true, y_pred, sw),
    )
    if expected is not None:
        assert_same(got, expected)
    # Everything ignored: Keras's divide_no_nan gives 0, not NaN.
    all_ignored = np.full_like(y_true, 2.0)
    got = L.SparseCategoricalCrossentropy(**kw)(all_ignored, y_pred)
    assert torch.all(torch.isfinite(got))
    assert_same(got, keras.losses.SparseCategoricalCrossentropy(**kw)(all_ignored, y_pred))


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=str)
@pytest.mark.parametrize("weight", ["none", "temporal_or_scalar", "column"])
@pytest.mark.parametrize("cls_name", ["MeanSquaredError", "SparseCategoricalCrossentropy"])
def test_keras_mask_on_y_pred(cls_name, weight, reduction):
    rng = _rng("mask", cls_name, weight, str(reduction))
    kind = SPECS[cls_name][1]
    y_true, y_pred = make_inputs(kind, "temporal", rng)
    mask = torch.from_numpy(rng.random((4, 6)) > 0.3)
    sw = make_weight(weight, y_pred.shape, rng)
    kw = {"ignore_class": 0} if kind == "sparse" else {}
    ours_pred = torch.from_numpy(y_pred.copy())
    ours_pred._keras_mask = mask
    theirs_pred = torch.from_numpy(y_pred.copy())
    theirs_pred._keras_mask = mask
    got = getattr(L, cls_name)(reduction=reduction, **kw)(y_true, ours_pred, sw)
    # Keras multiplies the weight by the mask in place, which torch refuses
    # for weights that broadcast up ((N, 1) or scalar); torchfit multiplies
    # out of place, i.e. like a full (N, T) weight.
    keras_sw = None if sw is None else np.broadcast_to(np.asarray(sw, np.float32), (4, 6)).copy()
    expected = getattr(keras.losses, cls_name)(reduction=reduction, **kw)(y_true, theirs_pred, keras_sw)
    assert_same(got, expected)


@pytest.mark.parametrize("reduction", REDUCTIONS, ids=str)
def test_loss_function_wrapper_custom_fn(reduction):
    def my_loss(y_true, y_pred, power=2.0):
        return torch.mean(torch.abs(y_true - y_pred) ** power, dim=-1)

    def my_keras_loss(y_true, y_pred, power=2.0):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred) ** power, axis=-1)

    rng = _rng("wrapper", str(reduction))
    y_true, y_pred = make_inputs("reg", "vec_vs_col", rng)
    sw = make_weight("per_sample", y_pred.shape, rng)
    ours = L.LossFunctionWrapper(my_loss, reduction=reduction, name="mine", power=3.0)
    from keras.src.losses.losses import LossFunctionWrapper as KerasWrapper

    theirs = KerasWrapper(my_keras_loss, reduction=reduction, name="mine", power=3.0)
    assert_same(ours(y_true, y_pred, sw), theirs(y_true, y_pred, sw))
    assert ours.name == "mine"


def test_loss_subclass_and_auto_name():
    class MyLoss(L.Loss):
        def call(self, y_true, y_pred):
            return torch.sum(y_pred - y_true, dim=-1)

    loss = MyLoss()
    assert loss.name == "my_loss"
    assert loss.reduction == "sum_over_batch_size"
    out = loss(np.ones((2, 3)), np.zeros((2, 3)), sample_weight=np.array([1.0, 3.0]))
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(-6.0)  # (-3 * 1 + -3 * 3) / 2
    with pytest.raises(NotImplementedError):
        L.Loss()(np.ones(2), np.ones(2))


def test_gradients_flow_and_are_finite():
    rng = _rng("grad")
    y_true, y_pred = make_inputs("sparse", "temporal", rng, from_logits=True)
    logits = torch.tensor(y_pred, requires_grad=True)
    L.SparseCategoricalCrossentropy(from_logits=True, ignore_class=1)(y_true, logits).backward()
    assert torch.all(torch.isfinite(logits.grad))
    probs = torch.tensor(np.abs(y_pred), requires_grad=True)
    L.SparseCategoricalCrossentropy(ignore_class=1)(y_true, probs).backward()
    assert torch.all(torch.isfinite(probs.grad))
    y_true, y_pred = make_inputs("binary", "2d", rng, from_logits=True)
    logits = torch.tensor(y_pred, requires_grad=True)
    L.BinaryFocalCrossentropy(from_logits=True)(y_true, logits).backward()
    assert torch.all(torch.isfinite(logits.grad))


def test_no_host_sync(monkeypatch):
    """Loss computation never pulls values to the host."""
    cases = []
    for cls_name, (_, kind, variants) in SPECS.items():
        for kw in variants:
            y_true, y_pred = make_inputs(kind, "temporal", _rng("sync", cls_name), kw.get("from_logits", False))
            loss = getattr(L, cls_name)(**kw)
            y_true, y_pred = torch.as_tensor(y_true), torch.as_tensor(y_pred)
            sw = torch.rand(4, 6)
            try:
                loss(y_true, y_pred, sample_weight=sw)
            except RuntimeError:  # e.g. axis=0 variants: weights don't broadcast
                sw = None
            cases.append((loss, y_true, y_pred, sw))

    def boom(*args, **kwargs):
        raise AssertionError("host sync inside a loss")

    for attr in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"):
        monkeypatch.setattr(torch.Tensor, attr, boom)
    for loss, y_true, y_pred, sw in cases:
        loss(y_true, y_pred, sample_weight=sw)
        for reduction in ("mean_with_sample_weight", None):
            loss.reduction = reduction
            loss(y_true, y_pred, sample_weight=sw)


def test_losses_are_not_modules():
    loss = L.CategoricalCrossentropy()
    assert not isinstance(loss, torch.nn.Module)
    model = torch.nn.Linear(2, 2)
    model.loss = loss
    assert dict(model.named_children()) == {}


def test_categorical_single_class_warns_like_keras():
    with pytest.warns(SyntaxWarning, match="binary_crossentropy"):
        L.categorical_crossentropy(np.ones((4, 1), "float32"), np.ones((4, 1), "float32"))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        L.binary_crossentropy(np.ones((4, 2), "float32"), np.ones((4, 3), "float32"))
    with pytest.raises(ValueError, match="same shape"):
        L.sparse_categorical_crossentropy(np.ones((4, 2)), np.ones((3, 5), "float32"))


# ---------------------------------------------------------------------------
# Configs and identifiers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls_name,kwargs", list(_variant_cases()))
def test_get_config_round_trip(cls_name, kwargs):
    ours = getattr(L, cls_name)(reduction="sum", name="custom", **kwargs)
    theirs = getattr(keras.losses, cls_name)(reduction="sum", name="custom", **kwargs)
    config = ours.get_config()
    keras_config = theirs.get_config()
    for key, value in keras_config.items():
        got = config[key]
        assert (list(got) if isinstance(got, tuple) else got) == (list(value) if isinstance(value, tuple) else value), key
    json.dumps(config)
    rebuilt = type(ours).from_config(config)
    assert type(rebuilt) is type(ours)
    assert rebuilt.get_config() == config
    again = L.deserialize(json.loads(json.dumps(L.serialize(ours))))
    assert type(again) is type(ours) and again.get_config() == config
    assert L.get({"class_name": cls_name, "config": config}).get_config() == config
    # A rebuilt loss computes the same thing.
    y_true, y_pred = make_inputs(SPECS[cls_name][1], "2d", _rng("cfg", cls_name), kwargs.get("from_logits", False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.testing.assert_close(rebuilt(y_true, y_pred), ours(y_true, y_pred))


def test_config_keeps_args_keras_drops():
    assert L.Huber(delta=3.0).get_config()["delta"] == 3.0
    assert L.Huber.from_config(L.Huber(delta=3.0).get_config()).delta == 3.0
    assert L.CosineSimilarity(axis=0).get_config()["axis"] == 0
    assert L.SparseCategoricalCrossentropy(axis=1).get_config()["axis"] == 1
    assert "dtype" not in L.MeanSquaredError().get_config()
    assert L.MeanSquaredError(dtype="float64").get_config()["dtype"] == "float64"
    assert L.MeanSquaredError.from_config(L.MeanSquaredError(dtype="float64").get_config()).dtype == "float64"
    assert L.MeanSquaredError().get_config() == keras.losses.MeanSquaredError().get_config()


def test_loss_function_wrapper_config():
    loss = L.LossFunctionWrapper(L.huber, name="h", reduction="sum", delta=2.0)
    config = loss.get_config()
    assert config == {"name": "h", "reduction": "sum", "fn": "huber", "delta": 2.0}
    rebuilt = L.LossFunctionWrapper.from_config(json.loads(json.dumps(config)))
    assert rebuilt.fn is L.huber and rebuilt._fn_kwargs == {"delta": 2.0}
    keras_style = dict(config, fn={"module": "keras.losses", "class_name": "function", "config": "huber"})
    assert L.LossFunctionWrapper.from_config(keras_style).fn is L.huber

    def custom(y_true, y_pred):
        return torch.mean(y_pred - y_true, dim=-1)

    loss = L.LossFunctionWrapper(custom)
    assert loss.get_config()["fn"] is custom
    assert L.LossFunctionWrapper.from_config(loss.get_config()).fn is custom
    named = dict(loss.get_config(), fn="custom")
    assert L.LossFunctionWrapper.from_config(named, custom_objects={"custom": custom}).fn is custom
    with pytest.raises(ValueError, match="fn"):
        L.LossFunctionWrapper.from_config(named)
    with pytest.raises(TypeError, match="fn"):
        L.LossFunctionWrapper(3)


KERAS_ALIASES = ["mse", "MSE", "mae", "MAE", "mape", "MAPE", "msle", "MSLE", "kld", "KLD", "bce", "BCE"]
LEGACY_ALIASES = {
    "kullback_leibler_divergence": "kl_divergence",
    "logcosh": "log_cosh",
    "huber_loss": "huber",
}


@pytest.mark.parametrize("name", KERAS_ALIASES + [spec[0] for spec in SPECS.values()])
def test_get_function_names_match_keras(name):
    ours = L.get(name)
    theirs = keras.losses.get(name)
    assert callable(ours) and not isinstance(ours, L.Loss)
    assert ours.__name__ == theirs.__name__
    assert ours is getattr(L, theirs.__name__)


@pytest.mark.parametrize("name,fn_name", list(LEGACY_ALIASES.items()))
def test_get_legacy_aliases(name, fn_name):
    assert L.get(name) is getattr(L, fn_name)


@pytest.mark.parametrize("name", list(SPECS))
def test_get_class_names_give_instances(name):
    ours = L.get(name)
    assert type(ours) is getattr(L, name)
    config = ours.get_config()
    for key, value in keras.losses.get(name).get_config().items():
        assert config[key] == value
    assert type(L.get(getattr(L, name))) is getattr(L, name)


def test_get_passthrough_and_none():
    loss = L.Huber()
    assert L.get(None) is None
    assert L.get(loss) is loss

    def custom(y_true, y_pred):
        return y_pred

    assert L.get(custom) is custom
    assert L.get({"class_name": "function", "config": "mse"}) is L.mean_squared_error
    got = L.get({"class_name": "CategoricalCrossentropy", "config": {"from_logits": True}})
    assert isinstance(got, L.CategoricalCrossentropy) and got.from_logits
    assert L.deserialize(L.serialize(L.poisson)) is L.poisson
    assert L.deserialize("mse") is L.mean_squared_error


def test_get_unknown_string_suggests():
    with pytest.raises(ValueError) as info:
        L.get("mean_sqared_error")
    message = str(info.value)
    assert "`loss`" in message
    assert "Did you mean 'mean_squared_error'" in message
    assert "Received: loss='mean_sqared_error'" in message
    with pytest.raises(ValueError, match="CategoricalCrossentropy"):
        L.get("CategoricalCrossEntropy")
    with pytest.raises(ValueError, match="Received: loss='zzz'"):
        L.get("zzz")
    with pytest.raises(ValueError, match="Unknown"):
        L.get({"class_name": "Nope", "config": {}})


@pytest.mark.parametrize("bad", [5, 2.0, [1, 2], object()])
def test_get_bad_type(bad):
    with pytest.raises(TypeError, match="loss"):
        L.get(bad)


def test_serialize_rejects_unknown():
    with pytest.raises(TypeError):
        L.serialize(lambda y_true, y_pred: y_pred)


@pytest.mark.parametrize(
    "factory,exc,pattern",
    [
        (lambda: L.MeanSquaredError(reduction="avg"), ValueError, r"`reduction`.*sum_over_batch_size.*Received: reduction='avg'"),
        (lambda: L.Loss(reduction="auto"), ValueError, r"`reduction`.*'auto'"),
        (lambda: L.MeanSquaredError(dtype="int32"), ValueError, r"`dtype`.*float32.*Received: dtype='int32'"),
        (lambda: L.MeanSquaredError(dtype=torch.int64), ValueError, r"`dtype`"),
        (lambda: L.MeanSquaredError(dtype=3), TypeError, r"`dtype`.*Received: dtype=3"),
        (lambda: L.MeanSquaredError(name=3), TypeError, r"`name`.*Received: name=3"),
        (lambda: L.BinaryCrossentropy(label_smoothing=1.5), ValueError, r"`label_smoothing`.*\[0.0, 1.0\].*Received: label_smoothing=1.5"),
        (lambda: L.BinaryCrossentropy(label_smoothing="x"), TypeError, r"`label_smoothing`"),
        (lambda: L.CategoricalCrossentropy(from_logits="yes"), TypeError, r"`from_logits`.*bool.*Received: from_logits='yes'"),
        (lambda: L.CategoricalCrossentropy(axis=True), ValueError, r"`axis`"),
        (lambda: L.CategoricalCrossentropy(axis=1.5), ValueError, r"`axis`"),
        (lambda: L.Huber(delta=-1.0), ValueError, r"`delta`.*Received: delta=-1.0"),
        (lambda: L.BinaryFocalCrossentropy(alpha=2.0), ValueError, r"`alpha`"),
        (lambda: L.BinaryFocalCrossentropy(gamma=-1.0), ValueError, r"`gamma`"),
        (lambda: L.CategoricalFocalCrossentropy(gamma="a"), TypeError, r"`gamma`"),
        (lambda: L.SparseCategoricalCrossentropy(ignore_class=1.5), TypeError, r"`ignore_class`"),
        (lambda: L.Dice(axis="x"), ValueError, r"`axis`"),
        (lambda: L.Tversky(beta=None), TypeError, r"`beta`"),
    ],
)
def test_constructor_validation(factory, exc, pattern):
    with pytest.raises(exc, match=pattern):
        factory()


def test_function_axis_bool_rejected_like_keras():
    with pytest.raises(ValueError, match="axis"):
        L.categorical_crossentropy(np.eye(3, dtype="float32"), np.eye(3, dtype="float32"), axis=True)
    with pytest.raises(ValueError, match="axis"):
        keras.losses.categorical_crossentropy(np.eye(3, dtype="float32"), np.eye(3, dtype="float32"), axis=True)


def test_public_names():
    for name in L.__all__:
        assert hasattr(L, name), name
    for cls_name, (fn_name, _, _) in SPECS.items():
        assert issubclass(getattr(L, cls_name), L.LossFunctionWrapper)
        assert callable(getattr(L, fn_name))
