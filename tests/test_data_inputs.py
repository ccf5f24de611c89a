"""Input types and their semantics beyond what Keras 3 covers: bare torch Datasets,
class_weight and validation_split where Keras refuses them, PyDataset workers,
tf.data (via a stand-in class), pandas, pinned memory, and the errors every
entry point raises for bad input."""

from __future__ import annotations

import os
import sys
import threading
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, TensorDataset

import torchfit
from torchfit.data import EpochIterator, PinnedBatches, get_adapter
from torchfit.utils import PyDataset

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 3)).astype("float32")
Y = RNG.normal(size=(30, 1)).astype("float32")
LABELS = (np.arange(30) % 3).astype("int64")
SW = RNG.random(30).astype("float32") + 0.5


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self, out=1):
        super().__init__()
        self.fc = nn.Linear(3, out)

    def forward(self, x):
        return self.fc(x)


def fresh(out=1, loss="mse", **compile_kwargs):
    torch.manual_seed(0)
    model = Net(out)
    model.compile(optimizer="sgd", loss=loss, **compile_kwargs)
    return model


def fit_history(data, *, out=1, loss="mse", compile_kwargs=None, **kwargs):
    kwargs = dict(dict(epochs=2, verbose=0, shuffle=False), **kwargs)
    return fresh(out, loss, **(compile_kwargs or {})).fit(data, **kwargs).history


def assert_same_history(a, b, rtol=1e-6):
    assert list(a) == list(b)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=rtol, err_msg=key)


def t(*arrays):
    return [torch.from_numpy(a) for a in arrays]


class Samples(Dataset):
    """A plain map-style dataset (not a TensorDataset): the DataLoader path."""

    def __init__(self, *arrays):
        self.arrays = arrays

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, i):
        return tuple(a[i] for a in self.arrays)


class Stream(IterableDataset):
    def __init__(self, *arrays):
        self.arrays = arrays

    def __iter__(self):
        for i in range(len(self.arrays[0])):
            yield tuple(a[i] for a in self.arrays)


# ------------------------------------------------------------ torch Datasets
@pytest.mark.parametrize("make", [lambda *a: TensorDataset(*t(*a)), Samples, Stream],
                         ids=["TensorDataset", "map-style", "iterable"])
def test_bare_dataset_is_batched_like_arrays(make):
    expected = fit_history(X, y=Y, sample_weight=SW, batch_size=7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # shuffle=False: nothing to warn about
        got = fit_history(make(X, Y, SW), batch_size=7)
    assert_same_history(got, expected)


@pytest.mark.parametrize("make", [lambda *a: TensorDataset(*t(*a)), Samples],
                         ids=["TensorDataset", "map-style"])
@pytest.mark.parametrize("shuffle", [True, "batch"])
def test_bare_map_style_dataset_is_shuffled_every_epoch(make, shuffle):
    ids = np.arange(30, dtype="float32")[:, None]
    adapter = get_adapter(make(ids.repeat(3, 1), ids), batch_size=8, shuffle=shuffle)
    orders = []
    for _ in range(3):
        batches = [b[1][:, 0].tolist() for b in adapter.get_iterator()]
        assert sorted(sum(batches, [])) == list(range(30))
        if shuffle == "batch":  # each batch keeps its chunk of samples
            assert [sorted(b) for b in batches] == [list(range(i, min(i + 8, 30))) for i in range(0, 30, 8)]
        orders.append(sum(batches, []))
    assert orders[0] != orders[1] or orders[1] != orders[2]


def test_dataloader_over_an_iterable_dataset():
    loader = DataLoader(Stream(X, Y, SW), batch_size=10)
    model = fresh()
    hist = model.fit(loader, epochs=2, verbose=0, shuffle=False)
    assert hist.params["steps"] is None  # unknown length, learnt during the first pass
    assert_same_history(hist.history, fit_history(X, y=Y, sample_weight=SW, batch_size=10))
    np.testing.assert_allclose(model.predict(DataLoader(Stream(X), batch_size=7), verbose=0),
                               model.predict(X, verbose=0), rtol=1e-6)


def test_iterable_dataset_ignores_shuffle_with_a_warning():
    with pytest.warns(UserWarning, match="shuffle=True.*ignored"):
        get_adapter(Stream(X, Y), batch_size=4, shuffle=True)


def test_validation_split_on_a_dataset_equals_the_split_done_by_hand():
    data = Samples(X, Y, SW)
    by_hand = fit_history(Subset(data, range(24)), validation_data=Subset(data, range(24, 30)),
                          batch_size=5)
    got = fit_history(data, validation_split=0.2, batch_size=5)
    assert_same_history(got, by_hand)
    as_arrays = fit_history(X, y=Y, sample_weight=SW, validation_split=0.2, batch_size=5)
    assert_same_history(got, as_arrays)
    tensor_data = fit_history(TensorDataset(*t(X, Y, SW)), validation_split=0.2, batch_size=5)
    assert_same_history(tensor_data, as_arrays)


@pytest.mark.parametrize("make", [
    lambda: DataLoader(TensorDataset(*t(X, Y)), batch_size=4),
    lambda: ((X[i:i + 5], Y[i:i + 5]) for i in range(0, 30, 5)),
    lambda: Stream(X, Y),
], ids=["DataLoader", "generator", "iterable-dataset"])
def test_validation_split_refused_for_inputs_that_cannot_be_sliced(make):
    with pytest.raises(ValueError, match="validation_split") as info:
        fresh().fit(make(), validation_split=0.2, verbose=0, shuffle=False)
    assert "validation_data" in str(info.value)


# ----------------------------------------------------- class_weight everywhere
@pytest.mark.parametrize("kind", ["sparse", "onehot", "binary"])
@pytest.mark.parametrize("source", ["DataLoader", "generator", "Dataset"])
def test_class_weight_on_batched_inputs_equals_arrays(kind, source):
    y = {"sparse": LABELS, "onehot": np.eye(3, dtype="float32")[LABELS],
         "binary": (LABELS == 1).astype("float32")[:, None]}[kind]
    out, loss = {"sparse": (3, "sparse_categorical_crossentropy"),
                 "onehot": (3, "categorical_crossentropy"),
                 "binary": (1, "binary_crossentropy")}[kind]
    weights = {0: 0.25, 1: 3.0, 2: 1.5} if out == 3 else {0: 0.5, 1: 4.0}
    common = dict(out=out, loss=loss, compile_kwargs=dict(weighted_metrics=["accuracy"]),
                  class_weight=weights)
    expected = fit_history(X, y=y, batch_size=8, **common)
    data = {"DataLoader": lambda: DataLoader(TensorDataset(*t(X, y)), batch_size=8),
            "generator": lambda: ((X[i:i + 8], y[i:i + 8]) for i in range(0, 30, 8)),
            "Dataset": lambda: Samples(X, y)}[source]()
    kwargs = dict(batch_size=8) if source == "Dataset" else {}
    got = fit_history(data, **dict(common, epochs=1), **kwargs)
    assert_same_history(got, {k: v[:1] for k, v in expected.items()})


def test_class_weight_refused_with_batches_that_carry_sample_weights():
    loader = DataLoader(TensorDataset(*t(X, LABELS, SW)), batch_size=8)
    with pytest.raises(ValueError, match="class_weight.*sample weights"):
        fresh(3, "sparse_categorical_crossentropy").fit(loader, class_weight={0: 2.0}, verbose=0,
                                                        shuffle=False)


# ------------------------------------------------------- nested batch structures
class Pair(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 2), nn.Linear(1, 2)

    def forward(self, a, b):
        out = self.a(a) + self.b(b)
        return {"first": out[:, :1], "second": out[:, 1:]}


def pair_history(data, **kwargs):
    torch.manual_seed(0)
    model = Pair()
    model.compile(optimizer="sgd", loss={"first": "mse", "second": "mae"})
    return model.fit(data, **dict(dict(epochs=2, verbose=0, shuffle=False), **kwargs)).history


class NestedSamples(Dataset):
    """``((a, b), {"first": y1, "second": y2}, {"first": w1, "second": w2})`` samples."""

    def __len__(self):
        return 30

    def __getitem__(self, i):
        return ((X[i, :2], X[i, 2:]), {"first": Y[i], "second": Y[i] * 2},
                {"first": SW[i], "second": 1.0 / SW[i]})


def test_dataloader_of_nested_tuples_and_dicts_for_x_y_and_sample_weight():
    y = {"first": Y, "second": Y * 2}
    sw = {"first": SW, "second": 1.0 / SW}
    expected = pair_history((X[:, :2], X[:, 2:]), y=y, sample_weight=sw, batch_size=6)
    assert_same_history(pair_history(DataLoader(NestedSamples(), batch_size=6)), expected)


# ------------------------------------------------------------------ generators
def test_exhausted_generator_ends_the_epoch_and_later_epochs_are_empty():
    batches = ((X[i:i + 10], Y[i:i + 10]) for i in range(0, 30, 10))
    seen = []

    class Count(torchfit.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = fresh().fit(batches, epochs=1, verbose=0, shuffle=False, callbacks=[Count()])
    assert seen == [0, 1, 2] and len(history.history["loss"]) == 1


def test_empty_generator_is_refused_before_training():
    model = fresh()
    with pytest.raises(ValueError, match="`x` must yield at least one batch"):
        model.fit(iter([]), verbose=0, shuffle=False)


def test_generator_with_sample_weights_equals_arrays():
    gen = ((X[i:i + 8], Y[i:i + 8], SW[i:i + 8]) for i in range(0, 30, 8))
    assert_same_history(fit_history(gen, epochs=1),
                        fit_history(X, y=Y, sample_weight=SW, batch_size=8, epochs=1))


def test_predict_on_generator_and_dataset_returns_every_row_in_order():
    model = fresh()
    expected = model.predict(X, verbose=0)
    gen = (X[i:i + 7] for i in range(0, 30, 7))
    np.testing.assert_allclose(model.predict(gen, verbose=0), expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict(TensorDataset(*t(X)), batch_size=4, verbose=0),
                               expected, rtol=1e-6)
    np.testing.assert_allclose(model.predict(Samples(X), batch_size=4, verbose=0), expected,
                               rtol=1e-6)


# ------------------------------------------------------------------ PyDataset
class Batches(PyDataset):
    def __init__(self, x, y=None, batch_size=8, sw=None, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.sw, self.batch_size = x, y, sw, batch_size
        self.events = []
        self.readers = set()

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index):
        self.readers.add((os.getpid(), threading.current_thread().name))
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        if self.y is None:
            return self.x[part]
        batch = (self.x[part], self.y[part])
        return batch if self.sw is None else batch + (self.sw[part],)

    def on_epoch_begin(self):
        self.events.append("begin")

    def on_epoch_end(self):
        self.events.append("end")


def test_py_dataset_equals_arrays_and_calls_epoch_hooks():
    data = Batches(X, Y, 8, SW)
    assert_same_history(fit_history(data, epochs=3),
                        fit_history(X, y=Y, sample_weight=SW, batch_size=8, epochs=3))
    assert data.events[:6] == ["begin", "end"] * 3


def test_py_dataset_threads_read_batches_in_order():
    data = Batches(X, Y, 4, workers=3, max_queue_size=2)
    assert_same_history(fit_history(data), fit_history(X, y=Y, batch_size=4))
    names = {name for _, name in data.readers}
    assert any(name.startswith("torchfit_pydataset") for name in names)
    assert threading.current_thread().name not in names
    assert not any(th.name.startswith("torchfit_pydataset") for th in threading.enumerate())


@pytest.mark.skipif(sys.platform == "win32", reason="fork-based worker processes")
def test_py_dataset_worker_processes_read_batches_in_order():
    data = Batches(X, Y, 5, workers=2, use_multiprocessing=True)
    assert_same_history(fit_history(data, epochs=1), fit_history(X, y=Y, batch_size=5, epochs=1))
    model = fresh()
    np.testing.assert_allclose(model.predict(Batches(X, None, 7, workers=2, use_multiprocessing=True),
                                             verbose=0),
                               model.predict(X, verbose=0), rtol=1e-6)


def test_py_dataset_shuffle_reorders_whole_batches():
    ids = np.arange(20, dtype="float32")[:, None]
    adapter = get_adapter(Batches(ids, ids, 4), shuffle=True)
    torch.manual_seed(1)
    orders = [[b[1][0, 0].item() for b in adapter.get_iterator()] for _ in range(4)]
    for order in orders:
        assert sorted(order) == [0, 4, 8, 12, 16]
    assert len({tuple(o) for o in orders}) > 1


class Failing(PyDataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        if index == 2:
            raise RuntimeError("bad batch 2")
        return X[:4], Y[:4]


@pytest.mark.parametrize("workers", [1, 2])
def test_py_dataset_errors_in_workers_reach_the_caller(workers):
    with pytest.raises(RuntimeError, match="bad batch 2"):
        fresh().fit(Failing(workers=workers), verbose=0, shuffle=False)
    assert not any(th.name.startswith("torchfit_pydataset") for th in threading.enumerate())


class Infinite(PyDataset):
    @property
    def num_batches(self):
        return None

    def __getitem__(self, index):
        start = (index * 6) % 30
        return X[start:start + 6], Y[start:start + 6]


def test_infinite_py_dataset_with_steps_per_epoch():
    with pytest.warns(UserWarning, match="infinite PyDataset"):
        hist = fresh().fit(Infinite(workers=2), steps_per_epoch=5, epochs=3, verbose=0)
    # Index i reads samples 6i..6i+5 (mod 30): five batches are one pass over X.
    assert_same_history(hist.history, fit_history(X, y=Y, batch_size=6, epochs=3))
    assert hist.params["steps"] == 5


def test_py_dataset_bad_batches_and_settings():
    class Bad(PyDataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            return "not a batch"

    with pytest.raises(ValueError, match=r"PyDataset.__getitem__\(\) must return a batch.*str"):
        fresh().fit(Bad(), verbose=0, shuffle=False)
    with pytest.raises(ValueError, match="`workers` must be an integer >= 0.*-1"):
        Bad(workers=-1)
    with pytest.raises(ValueError, match="`max_queue_size`.*0"):
        Bad(max_queue_size=0)
    with pytest.raises(TypeError, match="`use_multiprocessing`.*'yes'"):
        Bad(use_multiprocessing="yes")

    class NoSuper(PyDataset):
        def __init__(self):
            pass

        def __len__(self):
            return 1

        def __getitem__(self, index):
            return X[:2], Y[:2]

    with pytest.warns(UserWarning, match="super\\(\\).__init__"):
        assert NoSuper().workers == 1
    assert [b[0].shape for b in NoSuper()] == [(2, 3)]


# -------------------------------------------------- tf.data (a stand-in class)
class FakeTensor:
    def __init__(self, array):
        self.array = array

    def numpy(self):
        return self.array


def fake_tf_dataset(batches, cardinality):
    """An object that looks like a tf.data.Dataset to the adapter (TensorFlow absent)."""
    cls = type("DatasetV2", (), {
        "__module__": "tensorflow.python.data.ops.dataset_ops",
        "__iter__": lambda self: iter([tuple(FakeTensor(a) for a in b) for b in batches]),
        "cardinality": lambda self: cardinality,
    })
    return cls()


def test_tf_data_datasets_are_read_batch_by_batch():
    batches = [(X[i:i + 8], Y[i:i + 8], SW[i:i + 8]) for i in range(0, 30, 8)]
    data = fake_tf_dataset(batches, 4)
    assert get_adapter(data).num_batches == 4
    assert get_adapter(fake_tf_dataset(batches, -2)).num_batches is None
    assert_same_history(fit_history(data), fit_history(X, y=Y, sample_weight=SW, batch_size=8))
    with pytest.warns(UserWarning, match="tf.data.Dataset"):
        fresh().fit(data, verbose=0)
    with pytest.raises(ValueError, match="`y` must be None when `x` is a tf.data.Dataset"):
        fresh().fit(data, Y, verbose=0)


# ---------------------------------------------------------------------- pandas
def test_pandas_missing_names_the_extra(monkeypatch):
    from torchfit.data import pandas_data

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"torchfit\[pandas\]"):
        pandas_data.import_pandas()


def test_pandas_inputs_in_structures_and_their_errors():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]})
    expected = fit_history(X, y=Y, sample_weight=SW, batch_size=8, validation_split=0.2)
    got = fit_history(frame, y=pd.Series(Y[:, 0]), sample_weight=pd.Series(SW), batch_size=8,
                      validation_split=0.2)
    assert_same_history(got, expected, rtol=1e-5)
    pair = {"a": pd.DataFrame(X[:, :2]), "b": pd.Series(X[:, 2])}
    pair_y = {"first": pd.Series(Y[:, 0]), "second": pd.DataFrame(Y * 2)}
    assert_same_history(pair_history(pair, y=pair_y, batch_size=6),
                        pair_history({"a": X[:, :2], "b": X[:, 2:]}, y={"first": Y, "second": Y * 2},
                                     batch_size=6), rtol=1e-5)
    text = frame.assign(name=["x"] * 30)
    with pytest.raises(TypeError, match="`x` must hold numeric pandas columns.*'name'"):
        fresh().fit(text, Y, verbose=0)


# --------------------------------------------------------------- pinned memory
def test_batches_are_pinned_only_for_a_cuda_target(monkeypatch):
    pinned = []

    def fake_pin(self):
        pinned.append(tuple(self.shape))
        return self.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    monkeypatch.setattr(torch.Tensor, "is_pinned", lambda self: False)
    assert not isinstance(get_adapter(X, Y, batch_size=8, device=torch.device("cpu")), PinnedBatches)
    for data, kwargs in [(X, dict(y=Y, batch_size=8)),
                         (DataLoader(TensorDataset(*t(X, Y)), batch_size=8), {}),
                         (((X[i:i + 8], Y[i:i + 8]) for i in range(0, 30, 8)), {})]:
        pinned.clear()
        adapter = get_adapter(data, device=torch.device("cuda", 0), **kwargs)
        assert isinstance(adapter, PinnedBatches)
        batches = list(adapter.get_iterator())
        assert len(batches) == 4 and len(pinned) == 8  # every x and y leaf
        assert all(isinstance(leaf, torch.Tensor) for b in batches for leaf in b[:2])


# ------------------------------------------------- arguments and their errors
def test_arguments_that_batched_inputs_do_not_take():
    model = fresh()
    loader = DataLoader(TensorDataset(*t(X, Y)), batch_size=4)
    cases = [
        (loader, dict(sample_weight=SW), "`sample_weight` must be None when `x` is a DataLoader"),
        (Batches(X, Y), dict(y=Y), "`y` must be None when `x` is a PyDataset"),
        (Batches(X, Y), dict(batch_size=4), "`batch_size` must be None when `x` is a PyDataset"),
        (TensorDataset(*t(X, Y)), dict(y=Y), "`y` must be None when `x` is a torch Dataset"),
        (iter([(X, Y)]), dict(batch_size=3), "`batch_size` must be None when `x` is a"),
    ]
    for data, kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            model.fit(data, verbose=0, shuffle=False, **kwargs)


def test_validation_data_batch_sizes():
    loader = DataLoader(TensorDataset(*t(X, Y)), batch_size=4)
    # The training batch_size is simply not used for a validation DataLoader...
    hist = fit_history(X, y=Y, batch_size=8, validation_data=loader, epochs=1)
    assert len(hist["val_loss"]) == 1
    # ...but an explicit validation_batch_size cannot apply to one.
    with pytest.raises(ValueError, match="`validation_batch_size` must be None when "
                                         "`validation_data` is a DataLoader"):
        fit_history(X, y=Y, batch_size=8, validation_data=loader, validation_batch_size=2)
    # It does batch array validation data.
    seen = []

    class Sizes(torchfit.Callback):
        def on_test_batch_end(self, batch, logs=None):
            seen.append(batch)

    fit_history(X, y=Y, batch_size=8, validation_data=(X[:9], Y[:9]), validation_batch_size=2,
                epochs=1, callbacks=[Sizes()])
    assert seen == [0, 1, 2, 3, 4]


def test_bad_input_types_name_the_argument():
    model = fresh()
    with pytest.raises(TypeError, match="`x` must be a NumPy array.*Received: set"):
        model.fit({1, 2}, Y, verbose=0)
    with pytest.raises(TypeError, match="`validation_data` must be a NumPy array.*Received: str"):
        model.fit(X, Y, validation_data="val", verbose=0)
    with pytest.raises(ValueError, match=r"validation_data\[0\].*validation_data\[1\].*sizes"):
        model.fit(X, Y, validation_data=(X[:5], Y[:4]), verbose=0)
    with pytest.raises(TypeError, match="`y` must be a NumPy array.*DataLoader"):
        model.fit(X, DataLoader(TensorDataset(*t(Y))), verbose=0)
    with pytest.raises(ValueError, match="tuple of length 4"):
        model.fit(iter([(X, Y, SW, SW)]), verbose=0, shuffle=False)
    with pytest.raises(ValueError, match="class_weight.*needs targets"):
        model.fit(iter([(X,)]), class_weight={0: 1.0}, verbose=0, shuffle=False)


def test_a_custom_adapter_can_be_passed_as_x():
    class Twice(torchfit.data.DataAdapter):
        num_batches = 2

        def get_iterator(self):
            yield from [(torch.from_numpy(X[:10]), torch.from_numpy(Y[:10]), None)] * 2

    hist = fresh().fit(Twice(), verbose=0, epochs=2)
    assert hist.params["steps"] == 2 and len(hist.history["loss"]) == 2


def test_validation_restarts_at_the_start_of_a_dataloader_every_epoch():
    seen = []

    class Record(Dataset):
        def __len__(self):
            return 30

        def __getitem__(self, i):
            seen.append(i)
            return X[i], Y[i]

    loader = DataLoader(Record(), batch_size=5)
    fit_history(X, y=Y, batch_size=10, epochs=3, validation_data=loader, validation_steps=2)
    assert seen == list(range(10)) * 3
    seen.clear()
    it = EpochIterator(get_adapter(loader), steps_per_epoch=2)
    for _ in range(2):
        it.reset()
        list(it)
    assert seen == list(range(10)) * 2
