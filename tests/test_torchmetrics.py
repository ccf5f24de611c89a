"""torchmetrics objects in compile(metrics=...): names, numbers (against the
torchfit/Keras metric of the same meaning), resets between epochs and
between fit/evaluate, device placement and the sample_weight rule.

Skipped when torchmetrics is not installed (it is an optional extra)."""

import sys
import warnings

import numpy as np
import pytest
import torch

import torchfit
import torchfit.metrics as tm
from torchfit.compile_utils import TorchMetricAdapter

torchmetrics = pytest.importorskip("torchmetrics")
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from twins import MLP, rng_data  # noqa: E402

DATA = rng_data(n=48)


def _model(sizes, activation=None, seed=0):
    torch.manual_seed(seed)
    return MLP(sizes, activation)


def _pair_models(sizes, activation=None):
    a, b = _model(sizes, activation), _model(sizes, activation)
    b.load_state_dict(a.state_dict())
    return a, b


def test_fit_and_evaluate_match_torchfit_metrics():
    reference, model = _pair_models([6, 8, 3], "softmax")
    y = DATA["y_sparse"]
    reference.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=[tm.SparseCategoricalAccuracy(name="acc")])
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=[torchmetrics.classification.MulticlassAccuracy(num_classes=3, average="micro")],
    )
    fit = dict(x=DATA["x"], y=y, batch_size=8, epochs=3, shuffle=False, verbose=0,
               validation_split=0.25)
    h_ref, h = reference.fit(**fit), model.fit(**fit)
    assert list(h.history) == ["loss", "multiclass_accuracy", "val_loss", "val_multiclass_accuracy"]
    np.testing.assert_allclose(h.history["loss"], h_ref.history["loss"], rtol=1e-6)
    # Per-epoch values equal those of the torchfit metric: the states were
    # reset at each epoch start and before validation.
    np.testing.assert_allclose(h.history["multiclass_accuracy"], h_ref.history["acc"], rtol=1e-6)
    np.testing.assert_allclose(h.history["val_multiclass_accuracy"], h_ref.history["val_acc"], rtol=1e-6)
    result = model.evaluate(DATA["x"], y, verbose=0, return_dict=True)
    expected = reference.evaluate(DATA["x"], y, verbose=0, return_dict=True)
    assert result["multiclass_accuracy"] == pytest.approx(expected["acc"], rel=1e-6)
    assert model.metrics_names == ["loss", "multiclass_accuracy"]
    # evaluate again (states reset, not accumulated) and then keep training:
    # states touched under inference mode must still be updatable in place.
    again = model.evaluate(DATA["x"], y, verbose=0, return_dict=True)
    assert again == pytest.approx(result)
    model.fit(DATA["x"], y, batch_size=16, epochs=1, verbose=0)


def test_regression_metrics_match_torchfit_metrics():
    reference, model = _pair_models([6, 8, 1])
    reference.compile(optimizer="sgd", loss="mse",
                      metrics=[tm.MeanAbsoluteError(name="mae"), tm.RootMeanSquaredError(name="rmse")])
    model.compile(optimizer="sgd", loss="mse",
                  metrics=[torchmetrics.MeanAbsoluteError(), torchmetrics.MeanSquaredError(squared=False)])
    fit = dict(x=DATA["x"], y=DATA["y_reg"], batch_size=16, epochs=2, shuffle=False, verbose=0)
    h_ref, h = reference.fit(**fit), model.fit(**fit)
    np.testing.assert_allclose(h.history["mean_absolute_error"], h_ref.history["mae"], rtol=1e-5)
    np.testing.assert_allclose(h.history["mean_squared_error"], h_ref.history["rmse"], rtol=1e-5)
    logs = model.test_on_batch(DATA["x"][:8], DATA["y_reg"][:8], return_dict=True)
    ref_logs = reference.test_on_batch(DATA["x"][:8], DATA["y_reg"][:8], return_dict=True)
    assert logs["mean_absolute_error"] == pytest.approx(ref_logs["mae"], rel=1e-5)


def test_binary_metrics_with_integer_targets_and_auroc():
    reference, model = _pair_models([6, 8, 1], "sigmoid")
    y = DATA["y_bin"].astype("int64")
    reference.compile(optimizer="sgd", loss="binary_crossentropy",
                      metrics=[tm.BinaryAccuracy(name="ba"), tm.AUC(name="auc", num_thresholds=2000)])
    model.compile(optimizer="sgd", loss="binary_crossentropy",
                  metrics=[torchmetrics.classification.BinaryAccuracy(),
                           torchmetrics.classification.BinaryAUROC()])
    h_ref = reference.fit(DATA["x"], y.astype("float32"), batch_size=16, epochs=2, shuffle=False, verbose=0)
    h = model.fit(DATA["x"], y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(h.history["binary_accuracy"], h_ref.history["ba"], rtol=1e-6)
    np.testing.assert_allclose(h.history["binary_auroc"], h_ref.history["auc"], atol=2e-3)


def test_name_attribute_and_multi_output_names():
    metric = torchmetrics.MeanAbsoluteError()
    metric.name = "my_mae"
    assert TorchMetricAdapter(metric).name == "my_mae"
    assert TorchMetricAdapter(torchmetrics.MeanAbsoluteError()).name == "mean_absolute_error"
    assert "mean_absolute_error" in repr(TorchMetricAdapter(torchmetrics.MeanAbsoluteError()))

    from twins import TwoHead

    torch.manual_seed(0)
    model = TwoHead()

    # The categorical loss needs one-hot targets, the accuracy needs ids:
    # feed one-hot and read the accuracy on argmax of y_true through a wrapper.
    class OnehotToIds(torchmetrics.classification.MulticlassAccuracy):
        def update(self, preds, target):
            super().update(preds, target.argmax(-1))

    model.compile(optimizer="sgd", loss={"a": "mse", "b": "categorical_crossentropy"},
                  metrics={"a": [torchmetrics.MeanAbsoluteError()],
                           "b": [OnehotToIds(num_classes=3)]})
    y = {"a": DATA["y_reg"], "b": DATA["y_onehot"]}
    logs = model.evaluate(DATA["x"], y, verbose=0, return_dict=True)
    assert {"a_mean_absolute_error", "b_onehot_to_ids"} <= set(logs)


def test_sample_weight_is_ignored_with_one_warning():
    model = _model([6, 1])
    model.compile(optimizer="sgd", loss="mse", weighted_metrics=[torchmetrics.MeanSquaredError()])
    with pytest.warns(UserWarning, match="does not take sample weights") as record:
        model.fit(DATA["x"], DATA["y_reg"], sample_weight=DATA["sw"], batch_size=8, epochs=2, verbose=0)
    assert sum("does not take sample weights" in str(w.message) for w in record) == 1
    # Without weights, no warning.
    other = _model([6, 1])
    other.compile(optimizer="sgd", loss="mse", weighted_metrics=[torchmetrics.MeanSquaredError()])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        other.evaluate(DATA["x"], DATA["y_reg"], verbose=0)


def test_adapter_moves_metric_once_and_compiled_metric_not_registered():
    adapter = TorchMetricAdapter(torchmetrics.MeanSquaredError())
    calls = []
    real_to = adapter.metric.to

    def counting_to(*args, **kwargs):
        calls.append(args)
        return real_to(*args, **kwargs)

    adapter.metric.to = counting_to
    for _ in range(3):
        adapter.update_state(torch.zeros(4), torch.ones(4))
    assert calls == []  # already on the inputs' device
    assert float(adapter.result()) == pytest.approx(1.0)
    adapter.reset_state()
    adapter.update_state(torch.zeros(2), torch.full((2,), 2.0))
    assert float(adapter.result()) == pytest.approx(4.0)

    model = _model([6, 1])
    keys = set(model.state_dict())
    model.compile(optimizer="sgd", loss="mse", metrics=[torchmetrics.MeanSquaredError()])
    model.fit(DATA["x"], DATA["y_reg"], epochs=1, verbose=0)
    assert set(model.state_dict()) == keys
    assert not any("mean_squared" in name for name, _ in model.named_modules())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model_moves_metric_to_cuda():
    model = _model([6, 1]).cuda()
    metric = torchmetrics.MeanSquaredError()
    model.compile(optimizer="sgd", loss="mse", metrics=[metric])
    model.fit(DATA["x"], DATA["y_reg"], epochs=1, verbose=0)
    assert metric.device.type == "cuda"
    assert isinstance(model.evaluate(DATA["x"], DATA["y_reg"], verbose=0), list)


def test_adapter_survives_inference_mode_resets_and_updates():
    # Bare torchmetrics would make its states inference tensors here, and the
    # next in-place update outside inference mode (training) would fail.
    adapter = TorchMetricAdapter(torchmetrics.MeanSquaredError())
    preds, target = torch.ones(3), torch.zeros(3)
    with torch.inference_mode():
        adapter.reset_state()
        adapter.update_state(target, preds)
        assert float(adapter.result()) == pytest.approx(1.0)
    assert not adapter.metric.sum_squared_error.is_inference()
    adapter.update_state(target, preds * 3)  # in place, outside inference mode
    assert float(adapter.result()) == pytest.approx(5.0)
