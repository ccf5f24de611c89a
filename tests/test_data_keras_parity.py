"""Differential tests of the input pipeline: every input type Keras 3 accepts, fed
the same data in the same order to a torchfit model and a Keras model with the
same weights, must give the same History (and evaluate/predict results).

Inputs are unshuffled (``shuffle=False`` or ordered sources) since the two
libraries draw different random numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import torchfit
from twins import (assert_histories_match, assert_same_results, copy_linear_weights, keras,
                   mlp_pair, rng_data)

pytest.importorskip("keras")

D = rng_data(n=50)
RTOL = 2e-4


@pytest.fixture(autouse=True)
def fresh_keras_names():
    keras().utils.clear_session()


def compile_both(tmodel, kmodel, **kwargs):
    tmodel.compile(**kwargs)
    kmodel.compile(**kwargs)


def fit_both(tmodel, kmodel, t_x, k_x=None, **kwargs):
    """Fit both models; ``k_x`` is Keras's input when it differs (e.g. a Keras PyDataset)."""
    kwargs = dict(dict(verbose=0, shuffle=False), **kwargs)
    return tmodel.fit(t_x, **kwargs), kmodel.fit(t_x if k_x is None else k_x, **kwargs)


def tensors(*arrays):
    return [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]


def classifier_pair(metrics=("accuracy",), weighted=None, seed=0):
    tmodel, kmodel = mlp_pair([6, 8, 3], "softmax", seed=seed)
    compile_both(tmodel, kmodel, optimizer="adam", loss="sparse_categorical_crossentropy",
                 metrics=list(metrics), weighted_metrics=weighted)
    return tmodel, kmodel


# ------------------------------------------------------------------ arrays
def test_torch_tensors_with_sample_weight_validation_split_and_uneven_batches():
    tmodel, kmodel = classifier_pair()
    x, y, sw = tensors(D["x"], D["y_sparse"], D["sw"])
    th, kh = fit_both(tmodel, kmodel, x, y=y, sample_weight=sw, batch_size=7, epochs=2,
                      validation_split=0.3)
    assert_histories_match(th, kh)


def test_validation_steps_restart_each_epoch_with_freq_and_initial_epoch():
    tmodel, kmodel = mlp_pair([6, 8, 1])
    compile_both(tmodel, kmodel, optimizer="sgd", loss="mse", metrics=["mae"])
    val = (D["x"][:30], D["y_reg"][:30])
    th, kh = fit_both(tmodel, kmodel, D["x"], y=D["y_reg"], batch_size=8, epochs=5,
                      initial_epoch=1, validation_data=val, validation_steps=2,
                      validation_batch_size=5, validation_freq=2)
    assert_histories_match(th, kh)
    assert th.epoch == [1, 2, 3, 4] and len(th.history["val_loss"]) == 2


def test_steps_per_epoch_on_arrays_continues_across_epochs():
    tmodel, kmodel = mlp_pair([6, 8, 1])
    compile_both(tmodel, kmodel, optimizer="sgd", loss="mse")
    th, kh = fit_both(tmodel, kmodel, D["x"], y=D["y_reg"], batch_size=8, epochs=4,
                      steps_per_epoch=3)
    assert_histories_match(th, kh)


@pytest.mark.parametrize("target,activation,loss", [
    ("y_sparse", "softmax", "sparse_categorical_crossentropy"),
    ("y_onehot", "softmax", "categorical_crossentropy"),
    ("y_bin", "sigmoid", "binary_crossentropy"),
])
def test_class_weight_on_arrays(target, activation, loss):
    out = 1 if target == "y_bin" else 3
    tmodel, kmodel = mlp_pair([6, 8, out], activation)
    compile_both(tmodel, kmodel, optimizer="adam", loss=loss, weighted_metrics=["accuracy"])
    weights = {0: 0.5, 1: 2.0, 2: 1.5} if out == 3 else {0: 0.3, 1: 2.5}
    th, kh = fit_both(tmodel, kmodel, D["x"], y=D[target], batch_size=16, epochs=2,
                      class_weight=weights, validation_split=0.2)
    assert_histories_match(th, kh)


class DictInput(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 5)
        self.b = nn.Linear(2, 5)
        self.out = nn.Linear(5, 1)

    def forward(self, a, b):
        return self.out(torch.relu(self.a(a) + self.b(b)))


def dict_input_pair(seed=0):
    k = keras()
    torch.manual_seed(seed)
    tmodel = DictInput()
    ia, ib = k.Input((4,), name="a"), k.Input((2,), name="b")
    da, db, do = k.layers.Dense(5), k.layers.Dense(5), k.layers.Dense(1)
    out = do(k.layers.Activation("relu")(k.layers.Add()([da(ia), db(ib)])))
    kmodel = k.Model({"a": ia, "b": ib}, out)
    copy_linear_weights([tmodel.a, tmodel.b, tmodel.out], [da, db, do])
    return tmodel, kmodel


def test_dict_inputs_with_dict_validation_data():
    tmodel, kmodel = dict_input_pair()
    compile_both(tmodel, kmodel, optimizer="adam", loss="mse", metrics=["mae"])
    x = {"a": D["x"][:, :4], "b": D["x"][:, 4:]}
    val = ({"a": D["x"][:12, :4], "b": D["x"][:12, 4:]}, D["y_reg"][:12])
    th, kh = fit_both(tmodel, kmodel, x, y=D["y_reg"], batch_size=9, epochs=2,
                      validation_data=val)
    assert_histories_match(th, kh)
    assert_same_results(tmodel.evaluate(x, D["y_reg"], verbose=0),
                        kmodel.evaluate(x, D["y_reg"], verbose=0))


def test_dict_inputs_with_validation_split():
    tmodel, kmodel = dict_input_pair()
    compile_both(tmodel, kmodel, optimizer="sgd", loss="mse")
    x = {"a": D["x"][:, :4], "b": D["x"][:, 4:]}
    th, kh = fit_both(tmodel, kmodel, x, y=D["y_reg"], batch_size=10, epochs=2,
                      validation_split=0.25)
    assert_histories_match(th, kh)


# ------------------------------------------------------------------ pandas
def test_pandas_dataframe_and_series_with_class_weight_and_validation_split():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(D["x"], columns=[f"f{i}" for i in range(6)])
    labels = pd.Series(D["y_sparse"], name="label")
    tmodel, kmodel = classifier_pair(weighted=["accuracy"])
    th, kh = fit_both(tmodel, kmodel, frame, y=labels, batch_size=8, epochs=2,
                      class_weight={0: 1.0, 1: 2.0, 2: 0.5}, validation_split=0.2)
    assert_histories_match(th, kh)
    np.testing.assert_allclose(tmodel.predict(frame, verbose=0), kmodel.predict(frame, verbose=0),
                               rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------- DataLoaders
def test_dataloader_with_sample_weights_validation_loader_and_validation_steps():
    tmodel, kmodel = classifier_pair(weighted=["accuracy"])
    x, y, sw = tensors(D["x"], D["y_sparse"], D["sw"])
    train = DataLoader(TensorDataset(x[:40], y[:40], sw[:40]), batch_size=8)
    val = DataLoader(TensorDataset(x[40:], y[40:]), batch_size=3)
    th, kh = fit_both(tmodel, kmodel, train, epochs=3, validation_data=val, validation_steps=2)
    assert_histories_match(th, kh)
    assert_same_results(tmodel.evaluate(val, verbose=0, return_dict=True),
                        kmodel.evaluate(val, verbose=0, return_dict=True))
    predict = DataLoader(TensorDataset(x), batch_size=7)
    np.testing.assert_allclose(tmodel.predict(predict, verbose=0),
                               kmodel.predict(predict, verbose=0), rtol=1e-5, atol=1e-6)


def test_dataloader_steps_per_epoch_continues_across_epochs():
    tmodel, kmodel = mlp_pair([6, 8, 1])
    compile_both(tmodel, kmodel, optimizer="sgd", loss="mse")
    loader = DataLoader(TensorDataset(*tensors(D["x"], D["y_reg"])), batch_size=6)
    th, kh = fit_both(tmodel, kmodel, loader, epochs=3, steps_per_epoch=4)
    assert_histories_match(th, kh)


class DictSamples(Dataset):
    """Samples ``({"a": ..., "b": ...}, y)``: dict x inside a tuple."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"a": self.x[i, :4], "b": self.x[i, 4:]}, self.y[i]


def test_dataloader_yielding_dict_inputs():
    tmodel, kmodel = dict_input_pair()
    compile_both(tmodel, kmodel, optimizer="adam", loss="mse")
    loader = DataLoader(DictSamples(D["x"], D["y_reg"]), batch_size=16)
    th, kh = fit_both(tmodel, kmodel, loader, epochs=2)
    assert_histories_match(th, kh)


class Temporal(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 1)

    def forward(self, x):
        return self.fc(x)


def test_temporal_sample_weights_from_a_dataloader():
    k = keras()
    torch.manual_seed(0)
    tmodel = Temporal()
    dense = k.layers.Dense(1)
    kmodel = k.Sequential([k.Input((5, 3)), dense])
    copy_linear_weights([tmodel.fc], [dense])
    compile_both(tmodel, kmodel, optimizer="sgd", loss="mse", weighted_metrics=["mae"])
    rng = np.random.default_rng(3)
    x = rng.normal(size=(20, 5, 3)).astype("float32")
    y = rng.normal(size=(20, 5, 1)).astype("float32")
    sw = rng.random((20, 5)).astype("float32")
    loader = DataLoader(TensorDataset(*tensors(x, y, sw)), batch_size=6)
    th, kh = fit_both(tmodel, kmodel, loader, epochs=2)
    assert_histories_match(th, kh)
    # The same weights given as arrays agree too.
    torch.manual_seed(0)
    again = Temporal()
    again.compile(optimizer="sgd", loss="mse", weighted_metrics=["mae"])
    ah = again.fit(x, y, sample_weight=sw, batch_size=6, epochs=2, shuffle=False, verbose=0)
    for key in th.history:
        np.testing.assert_allclose(ah.history[key], th.history[key], rtol=1e-6)


# -------------------------------------------------------------- generators
def batches_forever(x, y, size, sample_weight=None):
    start = 0
    while True:
        stop = start + size
        batch = (x[start:stop], y[start:stop])
        yield batch if sample_weight is None else batch + (sample_weight[start:stop],)
        start = 0 if stop >= len(x) else stop


def test_infinite_generator_with_steps_per_epoch_and_sample_weights():
    tmodel, kmodel = classifier_pair(weighted=["accuracy"])
    th, kh = fit_both(tmodel, kmodel, batches_forever(D["x"], D["y_sparse"], 10, D["sw"]),
                      k_x=batches_forever(D["x"], D["y_sparse"], 10, D["sw"]),
                      epochs=3, steps_per_epoch=4, validation_data=(D["x"][:10], D["y_sparse"][:10]))
    assert_histories_match(th, kh)


def test_finite_generator_single_epoch_and_evaluate():
    tmodel, kmodel = mlp_pair([6, 8, 1])
    compile_both(tmodel, kmodel, optimizer="adam", loss="mse", metrics=["mae"])

    def finite():
        for i in range(0, 50, 12):
            yield D["x"][i:i + 12], D["y_reg"][i:i + 12]

    th, kh = fit_both(tmodel, kmodel, finite(), k_x=finite(), epochs=1)
    assert_histories_match(th, kh)
    assert_same_results(tmodel.evaluate(finite(), verbose=0), kmodel.evaluate(finite(), verbose=0))


# -------------------------------------------------------------- PyDatasets
class BatchesMixin:
    """``__len__``/``__getitem__`` shared by the torchfit and the Keras PyDataset."""

    def setup(self, x, y, batch_size, sample_weight=None):
        self.x, self.y, self.sw, self.batch_size = x, y, sample_weight, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        batch = (self.x[part], self.y[part])
        return batch if self.sw is None else batch + (self.sw[part],)

    def on_epoch_end(self):
        self.epochs_ended += 1


def py_dataset_pair(x, y, batch_size, sample_weight=None, workers=1, **kwargs):
    """(torchfit PyDataset read by ``workers`` threads, Keras PyDataset read in order).

    Keras is always read without workers: its enqueuer hands some batches over
    out of order around epoch boundaries (its own results with workers > 1
    differ from workers=1), while torchfit's workers give exactly the
    single-worker batches in the single-worker order.
    """
    class TorchfitBatches(BatchesMixin, torchfit.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=workers, **kwargs)
            self.setup(x, y, batch_size, sample_weight)

    class KerasBatches(BatchesMixin, keras().utils.PyDataset):
        def __init__(self):
            super().__init__(**kwargs)
            self.setup(x, y, batch_size, sample_weight)

    return TorchfitBatches(), KerasBatches()


@pytest.mark.parametrize("workers", [1, 3])
def test_py_dataset_with_class_weight_and_py_dataset_validation(workers):
    tmodel, kmodel = classifier_pair(weighted=["accuracy"])
    t_ds, k_ds = py_dataset_pair(D["x"][:40], D["y_sparse"][:40], 7, workers=workers)
    t_val, k_val = py_dataset_pair(D["x"][40:], D["y_sparse"][40:], 4, workers=workers)
    th = tmodel.fit(t_ds, epochs=2, shuffle=False, verbose=0, validation_data=t_val,
                    class_weight={0: 2.0, 1: 0.5})
    kh = kmodel.fit(k_ds, epochs=2, shuffle=False, verbose=0, validation_data=k_val,
                    class_weight={0: 2.0, 1: 0.5})
    assert_histories_match(th, kh)
    assert t_ds.epochs_ended >= 2
    t_pred, k_pred = py_dataset_pair(D["x"], D["y_sparse"], 9, workers=workers)
    np.testing.assert_allclose(tmodel.predict(t_pred, verbose=0), kmodel.predict(k_pred, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_py_dataset_with_sample_weights_and_steps_per_epoch():
    tmodel, kmodel = classifier_pair(weighted=["accuracy"])
    t_ds, k_ds = py_dataset_pair(D["x"], D["y_sparse"], 8, sample_weight=D["sw"])
    th, kh = fit_both(tmodel, kmodel, t_ds, k_x=k_ds, epochs=3, steps_per_epoch=3)
    assert_histories_match(th, kh)


def test_keras_py_dataset_objects_are_accepted():
    tmodel, kmodel = classifier_pair()
    _, k_ds = py_dataset_pair(D["x"], D["y_sparse"], 10)
    th, kh = fit_both(tmodel, kmodel, k_ds, epochs=2)
    assert_histories_match(th, kh)


# ----------------------------------------------------------------- tf.data
def test_tf_data_dataset():
    tf = pytest.importorskip("tensorflow")
    tmodel, kmodel = classifier_pair()
    ds = tf.data.Dataset.from_tensor_slices((D["x"], D["y_sparse"], D["sw"])).batch(8)
    th, kh = fit_both(tmodel, kmodel, ds, epochs=2, validation_data=ds.take(2))
    assert_histories_match(th, kh)


# ------------------------------------------ what Keras refuses, torchfit supports
def test_class_weight_with_a_dataloader_equals_arrays_where_keras_refuses():
    x, y = tensors(D["x"], D["y_sparse"])
    weights = {0: 0.5, 1: 2.0, 2: 1.5}
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    _, kmodel = classifier_pair()
    with pytest.raises(ValueError, match="class_weight"):
        kmodel.fit(loader, class_weight=weights, verbose=0, shuffle=False)
    keras().utils.clear_session()
    tmodel, kmodel = classifier_pair(weighted=["accuracy"])
    th = tmodel.fit(loader, class_weight=weights, epochs=2, verbose=0, shuffle=False)
    kh = kmodel.fit(D["x"], D["y_sparse"], class_weight=weights, batch_size=8, epochs=2,
                    verbose=0, shuffle=False)
    assert_histories_match(th, kh)


def test_validation_split_on_a_dataset_equals_keras_on_the_arrays():
    x, y = tensors(D["x"], D["y_sparse"])
    tmodel, kmodel = classifier_pair()
    th = tmodel.fit(TensorDataset(x, y), batch_size=8, epochs=2, validation_split=0.2,
                    shuffle=False, verbose=0)
    kh = kmodel.fit(D["x"], D["y_sparse"], batch_size=8, epochs=2, validation_split=0.2,
                    shuffle=False, verbose=0)
    assert_histories_match(th, kh)
