"""Differential tests: the same model, weights and data trained by torchfit and by
Keras 3 (torch backend) must give the same History, evaluate, predict and
*_on_batch results, with the same log names and return types."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchfit
from torchfit.metrics.base import reset_name_uids
from twins import (assert_histories_match, assert_same_results, keras, mlp_pair, rng_data,
                   two_head_pair)

pytest.importorskip("keras")

DATA = rng_data(n=50)


@pytest.fixture(autouse=True)
def fresh_keras_names():
    """Keras numbers auto-named objects per session (false_negatives_3...); so does
    torchfit, per process: start both counts afresh."""
    keras().utils.clear_session()
    reset_name_uids()


def fit_both(tmodel, kmodel, compile_kwargs, fit_kwargs, k_compile_kwargs=None):
    tmodel.compile(**compile_kwargs)
    kmodel.compile(**(k_compile_kwargs or compile_kwargs))
    fit_kwargs = dict(dict(shuffle=False, verbose=0), **fit_kwargs)
    return tmodel.fit(**fit_kwargs), kmodel.fit(**fit_kwargs)


def test_reference_page_example_history_evaluate_predict_on_batch():
    k = keras()
    tmodel, kmodel = mlp_pair([6, 8, 1], "sigmoid")
    tmodel.compile(
        optimizer=torchfit.optimizers.Adam(learning_rate=1e-3),
        loss=torchfit.losses.BinaryCrossentropy(),
        metrics=[torchfit.metrics.BinaryAccuracy(), torchfit.metrics.FalseNegatives()],
    )
    kmodel.compile(
        optimizer=k.optimizers.Adam(learning_rate=1e-3),
        loss=k.losses.BinaryCrossentropy(),
        metrics=[k.metrics.BinaryAccuracy(), k.metrics.FalseNegatives()],
    )
    kw = dict(x=DATA["x"], y=DATA["y_bin"], batch_size=16, epochs=3, shuffle=False, verbose=0)
    assert_histories_match(tmodel.fit(**kw), kmodel.fit(**kw))
    for return_dict in (False, True):
        assert_same_results(
            tmodel.evaluate(DATA["x"], DATA["y_bin"], verbose=0, return_dict=return_dict),
            kmodel.evaluate(DATA["x"], DATA["y_bin"], verbose=0, return_dict=return_dict))
    np.testing.assert_allclose(tmodel.predict(DATA["x"], verbose=0),
                               kmodel.predict(DATA["x"], verbose=0), rtol=1e-5, atol=1e-6)
    xb, yb = DATA["x"][:10], DATA["y_bin"][:10]
    assert_same_results(tmodel.train_on_batch(xb, yb), kmodel.train_on_batch(xb, yb))
    assert_same_results(tmodel.train_on_batch(xb, yb, return_dict=True),
                        kmodel.train_on_batch(xb, yb, return_dict=True))
    assert_same_results(tmodel.test_on_batch(xb, yb), kmodel.test_on_batch(xb, yb))
    assert_same_results(tmodel.test_on_batch(xb, yb, return_dict=True),
                        kmodel.test_on_batch(xb, yb, return_dict=True))
    out_t, out_k = tmodel.predict_on_batch(xb), kmodel.predict_on_batch(xb)
    assert isinstance(out_t, np.ndarray) and out_t.dtype == out_k.dtype
    np.testing.assert_allclose(out_t, out_k, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop", "adagrad",
                                       "adadelta", "adamax", "nadam"])
def test_optimizer_aliases_at_default_settings(optimizer):
    tmodel, kmodel = mlp_pair([6, 8, 1])
    th, kh = fit_both(tmodel, kmodel, dict(optimizer=optimizer, loss="mse"),
                      dict(x=DATA["x"], y=DATA["y_reg"], batch_size=8, epochs=3))
    assert_histories_match(th, kh)


def test_default_optimizer_is_keras_rmsprop():
    tmodel, kmodel = mlp_pair([6, 8, 1])
    tmodel.compile(loss="mse")
    kmodel.compile(loss="mse")
    kw = dict(x=DATA["x"], y=DATA["y_reg"], batch_size=10, epochs=2, shuffle=False, verbose=0)
    assert_histories_match(tmodel.fit(**kw), kmodel.fit(**kw))


LOSS_CASES = [
    ("mse", None, "y_reg", 1), ("mae", None, "y_reg", 1), ("mape", "relu", "y_pos", 3),
    ("msle", "relu", "y_pos", 3), ("huber", None, "y_reg", 1), ("log_cosh", None, "y_reg", 1),
    ("poisson", "relu", "y_pos", 3), ("kl_divergence", "softmax", "y_onehot", 3),
    ("binary_crossentropy", "sigmoid", "y_bin", 1), ("hinge", "tanh", "y_bin", 1),
    ("squared_hinge", "tanh", "y_bin", 1), ("categorical_hinge", None, "y_onehot", 3),
    ("categorical_crossentropy", "softmax", "y_onehot", 3),
    ("sparse_categorical_crossentropy", "softmax", "y_sparse", 3),
    ("cosine_similarity", None, "y_pos", 3), ("mean_squared_error", None, "y_reg", 1),
]


@pytest.mark.parametrize("loss,activation,target,units", LOSS_CASES)
def test_each_loss_by_name(loss, activation, target, units):
    tmodel, kmodel = mlp_pair([6, 8, units], activation)
    th, kh = fit_both(tmodel, kmodel, dict(optimizer="adam", loss=loss),
                      dict(x=DATA["x"], y=DATA[target], batch_size=16, epochs=2))
    assert_histories_match(th, kh)


def test_loss_objects_with_from_logits_and_label_smoothing():
    k = keras()
    tmodel, kmodel = mlp_pair([6, 8, 3])
    th, kh = fit_both(
        tmodel, kmodel,
        dict(optimizer="adam", loss=torchfit.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)),
        dict(x=DATA["x"], y=DATA["y_onehot"], batch_size=16, epochs=2),
        dict(optimizer="adam", loss=k.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)))
    assert_histories_match(th, kh)


@pytest.mark.parametrize("metric,activation,target,units", [
    ("accuracy", "sigmoid", "y_bin", 1), ("accuracy", "softmax", "y_sparse", 3),
    ("accuracy", "softmax", "y_onehot", 3), ("acc", "softmax", "y_onehot", 3),
    ("mse", "softmax", "y_onehot", 3), ("mae", "sigmoid", "y_bin", 1),
    ("binary_accuracy", "sigmoid", "y_bin", 1), ("auc", "sigmoid", "y_bin", 1),
    ("precision", "sigmoid", "y_bin", 1), ("recall", "sigmoid", "y_bin", 1),
])
def test_string_metric_resolution(metric, activation, target, units):
    loss = {"y_bin": "binary_crossentropy", "y_sparse": "sparse_categorical_crossentropy",
            "y_onehot": "categorical_crossentropy"}[target]
    tmodel, kmodel = mlp_pair([6, 8, units], activation)
    th, kh = fit_both(tmodel, kmodel, dict(optimizer="adam", loss=loss, metrics=[metric]),
                      dict(x=DATA["x"], y=DATA[target], batch_size=16, epochs=2,
                           validation_data=(DATA["x"][:20], DATA[target][:20])))
    assert_histories_match(th, kh)


@pytest.mark.parametrize("target,units,activation,loss", [
    ("y_sparse", 3, "softmax", "sparse_categorical_crossentropy"),
    ("y_onehot", 3, "softmax", "categorical_crossentropy"),
    ("y_bin", 1, "sigmoid", "binary_crossentropy"),
])
def test_class_weight(target, units, activation, loss):
    tmodel, kmodel = mlp_pair([6, 8, units], activation)
    th, kh = fit_both(tmodel, kmodel,
                      dict(optimizer="adam", loss=loss, metrics=["accuracy"],
                           weighted_metrics=["accuracy"]),
                      dict(x=DATA["x"], y=DATA[target], batch_size=16, epochs=2,
                           class_weight={0: 0.5, 1: 2.0, 2: 1.5} if units == 3 else {0: 0.3, 1: 3.0}))
    assert_histories_match(th, kh)


def test_sample_weight_1d_with_weighted_metrics_and_validation_weights():
    tmodel, kmodel = mlp_pair([6, 8, 3], "softmax")
    th, kh = fit_both(
        tmodel, kmodel,
        dict(optimizer="adam", loss="sparse_categorical_crossentropy",
             metrics=["accuracy"], weighted_metrics=["accuracy", "sparse_categorical_crossentropy"]),
        dict(x=DATA["x"], y=DATA["y_sparse"], sample_weight=DATA["sw"], batch_size=16, epochs=2,
             validation_data=(DATA["x"][:20], DATA["y_sparse"][:20], DATA["sw"][:20])))
    assert_histories_match(th, kh)


def test_temporal_sample_weight():
    from twins import MLP, copy_linear_weights, linear_layers

    k = keras()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 5, 4)).astype("float32")
    y = rng.normal(size=(20, 5, 2)).astype("float32")
    sw = rng.random((20, 5)).astype("float32")
    torch.manual_seed(0)
    tmodel = MLP([4, 6, 2])
    kmodel = k.Sequential([k.Input((5, 4)), k.layers.Dense(6, activation="relu"), k.layers.Dense(2)])
    copy_linear_weights(linear_layers(tmodel), kmodel.layers)
    th, kh = fit_both(tmodel, kmodel, dict(optimizer="sgd", loss="mse", weighted_metrics=["mae"]),
                      dict(x=x, y=y, sample_weight=sw, batch_size=6, epochs=2))
    assert_histories_match(th, kh)
    assert_same_results(tmodel.evaluate(x, y, sample_weight=sw, verbose=0),
                        kmodel.evaluate(x, y, sample_weight=sw, verbose=0))


@pytest.mark.parametrize("fit_kwargs", [
    dict(validation_split=0.2),
    dict(validation_split=0.3, validation_freq=2, epochs=4),
    dict(validation_split=0.2, validation_freq=[1, 3], epochs=3),
    dict(initial_epoch=2, epochs=4),
    dict(validation_split=0.2, validation_batch_size=7),
    dict(steps_per_epoch=2, epochs=3),
    dict(batch_size=7),
])
def test_fit_arguments(fit_kwargs):
    tmodel, kmodel = mlp_pair([6, 8, 3], "softmax")
    kwargs = dict(x=DATA["x"], y=DATA["y_onehot"], batch_size=16, epochs=2)
    kwargs.update(fit_kwargs)
    th, kh = fit_both(tmodel, kmodel,
                      dict(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"]),
                      kwargs)
    assert_histories_match(th, kh)


@pytest.mark.parametrize("as_dict", [True, False])
def test_multi_output_with_loss_weights_and_per_output_metrics(as_dict):
    tmodel, kmodel = two_head_pair(as_dict=as_dict)
    y = {"a": DATA["y_reg"], "b": DATA["y_sparse"]}
    if as_dict:
        compile_kwargs = dict(optimizer="adam",
                              loss={"a": "mse", "b": "sparse_categorical_crossentropy"},
                              loss_weights={"a": 0.5, "b": 2.0},
                              metrics={"a": ["mae"], "b": ["accuracy"]})
        y_fit = y
    else:
        compile_kwargs = dict(optimizer="adam", loss=["mse", "sparse_categorical_crossentropy"],
                              loss_weights=[0.5, 2.0], metrics=[["mae"], ["accuracy"]])
        y_fit = [y["a"], y["b"]]
    th, kh = fit_both(tmodel, kmodel, compile_kwargs,
                      dict(x=DATA["x"], y=y_fit, batch_size=16, epochs=2, validation_split=0.2))
    assert_histories_match(th, kh)
    for return_dict in (False, True):
        assert_same_results(tmodel.evaluate(DATA["x"], y_fit, verbose=0, return_dict=return_dict),
                            kmodel.evaluate(DATA["x"], y_fit, verbose=0, return_dict=return_dict))
    pt, pk = tmodel.predict(DATA["x"], verbose=0), kmodel.predict(DATA["x"], verbose=0)
    assert type(pt) is type(pk)
    for a, b in zip(torchfit.tree.flatten(pt), torchfit.tree.flatten(pk)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_evaluate_without_metrics_returns_float_and_partial_batches():
    tmodel, kmodel = mlp_pair([6, 8, 1])
    tmodel.compile(optimizer="sgd", loss="mse")
    kmodel.compile(optimizer="sgd", loss="mse")
    for bs in (7, 50, 64):
        assert_same_results(tmodel.evaluate(DATA["x"], DATA["y_reg"], batch_size=bs, verbose=0),
                            kmodel.evaluate(DATA["x"], DATA["y_reg"], batch_size=bs, verbose=0))
