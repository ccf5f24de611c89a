"""Hardening, part 1: a catalogue of bad inputs that tests/test_bad_input.py,
test_callbacks*.py and test_saving.py do not already cover.

Every case asserts the exception type and that the message names the argument,
what was expected and what was received; where a model is involved its weights
and optimizer state are compared byte for byte before and after the failure.
``CATALOGUE`` lists each distinct bad input once (its id is the test id).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import torchfit
from torchfit import state as training_state
from torchfit import callbacks as tcb

RNG = np.random.default_rng(0)
X = RNG.normal(size=(10, 4)).astype("float32")
Y = np.arange(10) % 3
Y_ONEHOT = np.eye(3, dtype="float32")[Y]


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self, out: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(4, out)

    def forward(self, x):
        return self.fc(x)


def trained_model(loss="sparse_categorical_crossentropy", **compile_kwargs) -> Net:
    """A compiled model that took one step where it can (so the optimizer has state)."""
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer="adam", loss=loss, **compile_kwargs)
    one_hot = loss in ("mse", "categorical_crossentropy") or isinstance(loss, dict)
    try:
        model.train_on_batch(X, Y_ONEHOT if one_hot else Y)
    except ValueError:
        model.compile(optimizer="adam", loss=loss, **compile_kwargs)  # refused at the first batch
    return model


# ------------------------------------------------------------------ snapshots
def _leaves(value, prefix=""):
    """A flat {path: bytes-or-repr} view of a nested state (tensors as raw bytes)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        return {prefix: (str(tensor.dtype), tuple(tensor.shape),
                         tensor.reshape(-1).view(torch.uint8).numpy().tobytes())}
    if isinstance(value, dict):
        out = {}
        for key in value:
            out.update(_leaves(value[key], f"{prefix}/{key}"))
        return out or {prefix: "{}"}
    if isinstance(value, (list, tuple)):
        out = {}
        for index, item in enumerate(value):
            out.update(_leaves(item, f"{prefix}[{index}]"))
        return out or {prefix: repr(value)}
    return {prefix: repr(value)}


def snapshot(model: nn.Module):
    """Weights, buffers and optimizer state, byte for byte."""
    state = training_state.of(model)
    optimizer = state.compiled.optimizer if state is not None else None
    return (_leaves(model.state_dict()),
            _leaves(optimizer.state_dict()) if optimizer is not None else None)


def assert_unchanged(model: nn.Module, before) -> None:
    after = snapshot(model)
    assert after[0] == before[0], "weights changed"
    assert after[1] == before[1], "optimizer state changed"


# ----------------------------------------------------------------- helpers
class Samples(Dataset):
    def __init__(self, n=10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.from_numpy(X[i]), int(Y[i])


class EmptyStream(IterableDataset):
    def __iter__(self):
        return iter([])


def empty_loader():
    return DataLoader(TensorDataset(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), batch_size=4)


def exhausted_generator():
    gen = ((X[i:i + 2], Y[i:i + 2]) for i in range(0, 10, 2))
    for _ in gen:
        pass
    return gen


def with_nan(array, value=np.nan):
    array = np.array(array, dtype="float32", copy=True)
    array.flat[3] = value
    return array


def fit(model, *args, **kwargs):
    kwargs.setdefault("verbose", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. shuffle ignored for batched inputs
        return model.fit(*args, **kwargs)


def raising_policy(call):
    def run(model, tmp_path):
        model.input_nan_policy = "raise"
        return call(model, tmp_path)
    return run


# --------------------------------------------------------------- catalogue
# (id, call(model, tmp_path), exception type, words that must all be in the message)
CATALOGUE = [
    # ---------------------------------------------------------------- compile
    ("compile-optimizer-typo-did-you-mean", lambda m, p: m.compile(optimizer="sdg", loss="mse"),
     ValueError, ["`optimizer`", "expected one of", "'sdg'", "Did you mean 'sgd'"]),
    ("compile-loss-typo-did-you-mean", lambda m, p: m.compile(loss="mean_sqared_error"),
     ValueError, ["`loss`", "'mean_sqared_error'", "Did you mean 'mean_squared_error'"]),
    ("compile-metric-typo-did-you-mean",
     lambda m, p: m.compile(loss="mse", metrics=["categorical_acuracy"]),
     ValueError, ["`metrics`", "'categorical_acuracy'", "Did you mean 'categorical_accuracy'"]),
    ("compile-optimizer-class-not-instance", lambda m, p: m.compile(optimizer=torch.optim.Adam, loss="mse"),
     TypeError, ["`optimizer`", "expected", "torch.optim.Optimizer instance", "type"]),
    ("compile-optimizer-of-another-module",
     lambda m, p: m.compile(optimizer=torch.optim.SGD(nn.Linear(4, 3).parameters(), lr=0.1), loss="mse"),
     ValueError, ["`optimizer`", "Expected an optimizer built on `model.parameters()`",
                  "SGD", "another module"]),
    ("compile-bound-torchfit-optimizer-of-another-module",
     lambda m, p: m.compile(optimizer=torchfit.optimizers.Adam(nn.Linear(4, 3)), loss="mse"),
     ValueError, ["`optimizer`", "Expected", "Adam", "another module"]),
    ("compile-optimizer-negative-learning-rate",
     lambda m, p: m.compile(optimizer=torchfit.optimizers.SGD(learning_rate=-0.1), loss="mse"),
     ValueError, ["`learning_rate`", ">= 0", "-0.1"]),
    ("compile-loss-int", lambda m, p: m.compile(loss=3),
     TypeError, ["`loss`", "names, objects or functions", "int"]),
    ("compile-loss-weights-nan", lambda m, p: m.compile(loss="mse", loss_weights=float("nan")),
     ValueError, ["`loss_weights`", "finite", "nan"]),
    ("fit-loss-weights-two-for-one-output", lambda m, p: fit(m, X, Y_ONEHOT),
     ValueError, ["`loss_weights`", "one entry for a single-output model", "2 entries"],
     dict(loss="mse", loss_weights=[1.0, 2.0])),
    ("fit-loss-dict-with-unknown-output", lambda m, p: fit(m, X, Y_ONEHOT),
     ValueError, ["`loss`", "['nope']", "Expected keys among"], dict(loss={"nope": "mse"})),
    # -------------------------------------------------------------------- fit
    ("fit-ragged-list-x", lambda m, p: fit(m, [X, X[:5]], Y),
     ValueError, ["`x`", "same number of samples", "[5, 10]"]),
    ("fit-ragged-nested-dict-x", lambda m, p: fit(m, {"a": X, "b": [X, X[:3]]}, Y),
     ValueError, ["`x`", "same number of samples", "[3, 10]"]),
    ("fit-ragged-python-lists-x", lambda m, p: fit(m, [[1.0, 2.0], [3.0]], Y),
     TypeError, ["`x`", "NumPy array", "Received: list"]),
    ("fit-y-shape-cannot-match-output", lambda m, p: fit(m, X, np.zeros((10, 5), "float32")),
     ValueError, ["`y`", "shaped like the model output (10, 3)", "(10, 5)"], dict(loss="mse")),
    ("fit-integer-targets-for-categorical-crossentropy", lambda m, p: fit(m, X, Y),
     ValueError, ["`y`", "expected targets shaped like the model output (10, 3)", "(10,)",
                  "sparse_categorical_crossentropy"], dict(loss="categorical_crossentropy")),
    ("fit-negative-class-indices", lambda m, p: fit(m, X, Y - 1),
     ValueError, ["`y`", "class indices outside [0, 2]", "from -1 to 1"]),
    ("fit-class-index-beyond-a-torch-loss-module-output", lambda m, p: fit(m, X, Y + 1),
     ValueError, ["`y`", "outside [0, 2]", "CrossEntropyLoss", "from 1 to 3"],
     dict(loss=nn.CrossEntropyLoss())),
    ("fit-empty-arrays", lambda m, p: fit(m, X[:0], Y[:0]),
     ValueError, ["`x`", "at least one", "0 rows"]),
    ("fit-empty-dataloader", lambda m, p: fit(m, empty_loader()),
     ValueError, ["`x`", "at least one sample", "DataLoader of length 0"]),
    ("fit-empty-iterable-dataloader", lambda m, p: fit(m, DataLoader(EmptyStream(), batch_size=None)),
     ValueError, ["`x`", "produced no batches", "Expected at least one batch", "DataLoader"]),
    ("evaluate-empty-iterable-dataloader",
     lambda m, p: m.evaluate(DataLoader(EmptyStream(), batch_size=None), verbose=0),
     ValueError, ["`x`", "produced no batches", "Expected at least one batch", "DataLoader"]),
    ("fit-empty-generator", lambda m, p: fit(m, (b for b in [])),
     ValueError, ["`x`", "at least one batch", "empty or already exhausted"]),
    ("fit-exhausted-generator-with-steps-per-epoch", lambda m, p: fit(m, exhausted_generator(), steps_per_epoch=3),
     ValueError, ["`x`", "at least one batch", "already exhausted"]),
    ("fit-empty-validation-data", lambda m, p: fit(m, X, Y, validation_data=(X[:0], Y[:0])),
     ValueError, ["`validation_data[0]`", "at least one", "0 rows"]),
    ("fit-nan-in-x", raising_policy(lambda m, p: fit(m, with_nan(X), Y)),
     ValueError, ["`x`", "non-finite", "batch 0", "1 of 40", "Expected finite"]),
    ("fit-inf-in-y", raising_policy(lambda m, p: fit(m, X, with_nan(Y_ONEHOT, np.inf))),
     ValueError, ["`y`", "non-finite", "1 of 30", "Expected finite"], dict(loss="mse")),
    ("fit-nan-in-sample-weight", raising_policy(lambda m, p: fit(m, X, Y, sample_weight=with_nan(np.ones(10)))),
     ValueError, ["`sample_weight`", "non-finite", "Expected finite"]),
    ("fit-validation-data-of-arity-4", lambda m, p: fit(m, X, Y, validation_data=(X, Y, None, None)),
     ValueError, ["`validation_data`", "(x_val, y_val)", "length 4"]),
    ("fit-validation-data-without-targets", lambda m, p: fit(m, X, Y, validation_data=X),
     ValueError, ["`validation_data`", "(x_val, y_val)", "ndarray of inputs only"]),
    ("fit-validation-data-dict-without-targets", lambda m, p: fit(m, X, Y, validation_data={"x": X}),
     ValueError, ["`validation_data`", "(x_val, y_val)", "dict of inputs only"]),
    ("fit-validation-data-string", lambda m, p: fit(m, X, Y, validation_data="val.npz"),
     TypeError, ["`validation_data`", "NumPy array", "Received: str"]),
    ("fit-validation-data-lengths-differ", lambda m, p: fit(m, X, Y, validation_data=(X, Y[:4])),
     ValueError, ["`validation_data[0]`", "`validation_data[1]`", "same number of samples", "[4]"]),
    ("fit-validation-batch-size-string", lambda m, p: fit(m, X, Y, validation_data=(X, Y), validation_batch_size="4"),
     TypeError, ["`validation_batch_size`", "integer >= 1", "'4'"]),
    ("fit-validation-steps-zero", lambda m, p: fit(m, X, Y, validation_data=(X, Y), validation_steps=0),
     ValueError, ["`validation_steps`", "integer >= 1", "0"]),
    ("fit-validation-freq-with-epoch-zero", lambda m, p: fit(m, X, Y, validation_freq=[0, 2]),
     ValueError, ["`validation_freq`", "(1-based)", "[0, 2]"]),
    ("fit-steps-per-epoch-string", lambda m, p: fit(m, X, Y, steps_per_epoch="5"),
     TypeError, ["`steps_per_epoch`", "integer >= 1", "'5'"]),
    ("fit-batch-size-bool", lambda m, p: fit(m, X, Y, batch_size=True),
     TypeError, ["`batch_size`", "integer >= 1", "True"]),
    ("fit-callbacks-dict", lambda m, p: fit(m, X, Y, callbacks={"stop": tcb.EarlyStopping()}),
     TypeError, ["`callbacks`", "list of torchfit.callbacks.Callback", "dict"]),
    ("fit-callback-class-not-instance", lambda m, p: fit(m, X, Y, callbacks=[tcb.EarlyStopping]),
     TypeError, ["`callbacks`", "Callback instances", "type at index 0"]),
    ("fit-sample-weight-per-class-for-a-per-sample-loss", lambda m, p: fit(m, X, Y_ONEHOT, sample_weight=np.ones((10, 3))),
     ValueError, ["`sample_weight`", "expected one weight per sample, shape (10,)", "(10, 3)"],
     dict(loss="categorical_crossentropy")),
    ("fit-sample-weight-that-a-torch-loss-cannot-use",
     lambda m, p: fit(m, X, Y_ONEHOT, sample_weight=np.ones((10, 3))),
     ValueError, ["`sample_weight`", "CrossEntropyLoss", "expected shape (10,)", "(10, 3)"],
     dict(loss=nn.CrossEntropyLoss())),
    ("fit-sample-weight-string", lambda m, p: fit(m, X, Y, sample_weight="w"),
     TypeError, ["`sample_weight`", "numeric arrays", "dtype <U1"]),
    ("fit-y-strings", lambda m, p: fit(m, X, np.array(["a"] * 10)),
     TypeError, ["`y`", "numeric arrays", "dtype <U1"]),
    ("fit-y-python-scalar", lambda m, p: fit(m, X, 3),
     TypeError, ["`y`", "NumPy array", "Received: int"]),
    ("fit-x-scalar", lambda m, p: fit(m, np.float32(3.0), Y),
     ValueError, ["`x`", "batch dimension", "scalar"]),
    ("fit-x-set", lambda m, p: fit(m, {1.0, 2.0}, Y),
     TypeError, ["`x`", "NumPy array", "Received: set"]),
    ("fit-class-weight-non-numeric", lambda m, p: fit(m, X, Y, class_weight={0: "heavy"}),
     TypeError, ["`class_weight`", "numeric weights", "'heavy'"]),
    ("fit-class-weight-negative-class", lambda m, p: fit(m, X, Y, class_weight={-1: 2.0}),
     ValueError, ["`class_weight`", "non-negative integer class", "-1"]),
    ("fit-sample-weight-with-a-dataloader",
     lambda m, p: fit(m, DataLoader(Samples(), batch_size=4), sample_weight=np.ones(10)),
     ValueError, ["`sample_weight`", "must be None when `x` is a DataLoader", "ndarray"]),
    ("fit-y-with-a-bare-dataset", lambda m, p: fit(m, Samples(), Y),
     ValueError, ["`y`", "must be None when `x` is a torch Dataset", "ndarray"]),
    ("fit-generator-batch-of-four-elements", lambda m, p: fit(m, iter([(X, Y, None, None)])),
     ValueError, ["(x, y, sample_weight)", "tuple of length 4"]),
    # --------------------------------------------------------------- evaluate
    ("evaluate-steps-string", lambda m, p: m.evaluate(X, Y, steps="2"),
     TypeError, ["`steps`", "integer >= 1", "'2'"]),
    ("evaluate-return-dict-int", lambda m, p: m.evaluate(X, Y, return_dict=1),
     TypeError, ["`return_dict`", "True or False", "1"]),
    ("evaluate-sample-weight-length", lambda m, p: m.evaluate(X, Y, sample_weight=np.ones(3), verbose=0),
     ValueError, ["`sample_weight`", "same number of samples", "[3]"]),
    ("evaluate-empty-arrays", lambda m, p: m.evaluate(X[:0], Y[:0], verbose=0),
     ValueError, ["`x`", "at least one", "0 rows"]),
    ("evaluate-without-targets", lambda m, p: m.evaluate(X, verbose=0),
     ValueError, ["`y`", "is required", "y=None"]),
    ("evaluate-callbacks-string", lambda m, p: m.evaluate(X, Y, callbacks="progress", verbose=0),
     TypeError, ["`callbacks`", "list of torchfit.callbacks.Callback", "str"]),
    # ---------------------------------------------------------------- predict
    ("predict-batch-size-zero", lambda m, p: m.predict(X, batch_size=0),
     ValueError, ["`batch_size`", "integer >= 1", "0"]),
    ("predict-verbose-5", lambda m, p: m.predict(X, verbose=5),
     ValueError, ["`verbose`", '"auto", 0, 1 or 2', "5"]),
    ("predict-none", lambda m, p: m.predict(None),
     ValueError, ["`x`", "predict()", "input data", "None"]),
    ("predict-steps-negative", lambda m, p: m.predict(X, steps=-1),
     ValueError, ["`steps`", "integer >= 1", "-1"]),
    ("predict-empty-dataloader", lambda m, p: m.predict(DataLoader(TensorDataset(torch.zeros(0, 4))), verbose=0),
     ValueError, ["`x`", "at least one sample", "length 0"]),
    ("predict-nan-input", raising_policy(lambda m, p: m.predict(with_nan(X), verbose=0)),
     ValueError, ["`x`", "non-finite", "Expected finite"]),
    # --------------------------------------------------------------- on_batch
    ("train-on-batch-return-dict-string", lambda m, p: m.train_on_batch(X, Y, return_dict="yes"),
     TypeError, ["`return_dict`", "True or False", "'yes'"]),
    ("train-on-batch-length-mismatch", lambda m, p: m.train_on_batch(X, Y[:3]),
     ValueError, ["`x`", "`y`", "same number of samples", "[3]"]),
    ("train-on-batch-class-and-sample-weight",
     lambda m, p: m.train_on_batch(X, Y, sample_weight=np.ones(10), class_weight={0: 2.0}),
     ValueError, ["`sample_weight`", "`class_weight`", "Expected one of them"]),
    ("train-on-batch-empty", lambda m, p: m.train_on_batch(X[:0], Y[:0]),
     ValueError, ["`x`", "at least one", "0 rows"]),
    ("train-on-batch-nan", raising_policy(lambda m, p: m.train_on_batch(with_nan(X), Y)),
     ValueError, ["`x`", "non-finite", "Expected finite"]),
    ("test-on-batch-without-targets", lambda m, p: m.test_on_batch(X),
     ValueError, ["`y`", "is required", "y=None"]),
    ("predict-on-batch-none", lambda m, p: m.predict_on_batch(None),
     ValueError, ["`x`", "predict_on_batch()", "input data", "None"]),
    ("predict-on-batch-generator", lambda m, p: m.predict_on_batch(iter([X])),
     TypeError, ["`x`", "array-like", "list_iterator"]),
    # -------------------------------------------------------------- callbacks
    ("early-stopping-baseline-nan", lambda m, p: tcb.EarlyStopping(baseline=float("nan")),
     ValueError, ["EarlyStopping", "`baseline`", "not be NaN", "nan"]),
    ("model-checkpoint-mode-not-a-string", lambda m, p: tcb.ModelCheckpoint("m.pt", mode=1),
     TypeError, ["ModelCheckpoint", "`mode`", "a string", "1"]),
    ("model-checkpoint-positional-field", lambda m, p: tcb.ModelCheckpoint("m-{}.pt"),
     ValueError, ["ModelCheckpoint", "`filepath`", "named fields", '"{}"']),
    ("model-checkpoint-unbalanced-brace", lambda m, p: tcb.ModelCheckpoint("m-{epoch.pt"),
     ValueError, ["ModelCheckpoint", "`filepath`", "str.format template", "m-{epoch.pt"]),
    ("model-checkpoint-filepath-pathlike-of-int", lambda m, p: tcb.ModelCheckpoint(3.5),
     TypeError, ["ModelCheckpoint", "`filepath`", "str or os.PathLike", "3.5"]),
    ("reduce-lr-min-delta-string", lambda m, p: tcb.ReduceLROnPlateau(min_delta="1e-3"),
     TypeError, ["ReduceLROnPlateau", "`min_delta`", "a number", "'1e-3'"]),
    ("reduce-lr-on-an-uncompiled-model",
     lambda m, p: (lambda cb: (cb.set_model(Net()), cb.on_epoch_end(0, {"val_loss": 1.0})))(tcb.ReduceLROnPlateau()),
     ValueError, ["ReduceLROnPlateau", "optimizer", "Expected a model compiled", "None"]),
    ("csv-logger-separator-int", lambda m, p: tcb.CSVLogger("log.csv", separator=1),
     TypeError, ["CSVLogger", "`separator`", "a string", "1"]),
    ("csv-logger-filename-is-a-directory", lambda m, p: fit(m, X, Y, callbacks=[tcb.CSVLogger(p)]),
     IsADirectoryError, ["CSVLogger", "`filename`", "must name a file", "existing directory"]),
    ("backup-dir-is-a-file",
     lambda m, p: ((p / "file").write_text("x"), fit(m, X, Y, callbacks=[tcb.BackupAndRestore(p / "file")])),
     NotADirectoryError, ["BackupAndRestore", "`backup_dir`", "must be a directory", "existing file"]),
    ("backup-extra-state-non-string-key",
     lambda m, p: tcb.BackupAndRestore(p, extra_state={1: torch.optim.SGD([nn.Parameter(torch.ones(1))], lr=1)}),
     TypeError, ["BackupAndRestore", "`extra_state`", "names (str)", "1: SGD"]),
    ("tensorboard-log-dir-none", lambda m, p: tcb.TensorBoard(None),
     TypeError, ["TensorBoard", "`log_dir`", "str or os.PathLike", "None"]),
    ("tensorboard-update-freq-unknown-string", lambda m, p: tcb.TensorBoard(p, update_freq="step"),
     ValueError, ["TensorBoard", "`update_freq`", '"epoch", "batch" or an integer', "'step'"]),
    ("tensorboard-write-images-string", lambda m, p: tcb.TensorBoard(p, write_images="yes"),
     TypeError, ["TensorBoard", "`write_images`", "True or False", "'yes'"]),
    ("tensorboard-embeddings-freq-negative", lambda m, p: tcb.TensorBoard(p, embeddings_freq=-1),
     ValueError, ["TensorBoard", "`embeddings_freq`", "integer >= 0", "-1"]),
    ("tensorboard-embeddings-metadata-number",
     lambda m, p: tcb.TensorBoard(p, embeddings_freq=1, embeddings_metadata={"emb": 5}),
     TypeError, ["TensorBoard", "`embeddings_metadata`", "dict of layer names to file names",
                 "{'emb': 5} (type dict)"]),
    ("tensorboard-embeddings-metadata-unknown-layer",
     lambda m, p: fit(m, X, Y, callbacks=[tcb.TensorBoard(p, embeddings_freq=1,
                                                          embeddings_metadata={"emb": "m.tsv"})]),
     ValueError, ["TensorBoard", "`embeddings_metadata`", "not nn.Embedding modules", "['emb']"]),
    ("learning-rate-scheduler-none", lambda m, p: tcb.LearningRateScheduler(None),
     TypeError, ["LearningRateScheduler", "`schedule`", "callable", "None"]),
    ("learning-rate-scheduler-verbose-string", lambda m, p: tcb.LearningRateScheduler(lambda e: 0.1, verbose="1"),
     TypeError, ["LearningRateScheduler", "`verbose`", "integer >= 0", "'1'"]),
    # ---------------------------------------------------------------- loading
    ("load-weights-none", lambda m, p: m.load_weights(None),
     TypeError, ["`filepath`", "str or os.PathLike", "None"]),
    ("load-weights-directory", lambda m, p: m.load_weights(p),
     IsADirectoryError, ["`filepath`", "must name a file", "directory"]),
    ("load-weights-value-not-a-tensor",
     lambda m, p: (torch.save({"fc.weight": "w", "fc.bias": torch.zeros(3)}, p / "w.pt"), m.load_weights(p / "w.pt")),
     ValueError, ["'fc.weight'", "expected a tensor", "str"]),
    ("load-model-map-location-unknown-device",
     lambda m, p: (m.save(p / "m.pt"), torchfit.load_model(p / "m.pt", model=Net(), map_location="gpu9")),
     ValueError, ["`map_location`", "'cpu' or 'cuda:0'", "'gpu9'"]),
    ("load-model-custom-objects-list", lambda m, p: torchfit.load_model(p / "m.pt", model=Net(), custom_objects=[1]),
     TypeError, ["`custom_objects`", "dict or None", "[1]"]),
    ("load-model-model-class-not-instance", lambda m, p: torchfit.load_model(p / "m.pt", model=Net),
     TypeError, ["`model`", "torch.nn.Module", "type"]),
    ("load-model-weights-only-string", lambda m, p: torchfit.load_model(p / "m.pt", model=Net(), weights_only="no"),
     TypeError, ["`weights_only`", "True or False", "'no'"]),
    ("load-model-newer-format",
     lambda m, p: (torch.save({"format": "torchfit.model", "version": 99, "weights": m.state_dict()}, p / "m.pt"),
                   torchfit.load_model(p / "m.pt", model=m)),
     ValueError, ["newer torchfit", "version 99", "reads up to 1"]),
]


@pytest.mark.parametrize("case", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_input_is_refused_clearly_and_changes_nothing(case, tmp_path):
    _, call, error, words = case[:4]
    model = trained_model(**(case[4] if len(case) > 4 else {}))
    before = snapshot(model)
    with pytest.raises(error) as info:
        call(model, tmp_path)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in: {message}"
    assert_unchanged(model, before)


def test_the_catalogue_has_at_least_40_distinct_inputs():
    names = [c[0] for c in CATALOGUE]
    assert len(names) == len(set(names)) and len(names) >= 40


# ------------------------------------------- failures that compile() survives
@pytest.mark.parametrize("case", [c for c in CATALOGUE if c[0].startswith("compile-")],
                         ids=lambda c: c[0])
def test_a_refused_compile_keeps_the_previous_compiled_state(case, tmp_path):
    _, call, error, _ = case[:4]
    model = trained_model()
    optimizer, before = model.optimizer, snapshot(model)
    with pytest.raises(error):
        call(model, tmp_path)
    assert model.optimizer is optimizer
    assert_unchanged(model, before)
    model.train_on_batch(X, Y)  # and the model still trains


# --------------------------------------- checkpoints that do not fit the model
def test_a_truncated_checkpoint_is_refused_and_the_model_is_untouched(tmp_path):
    source = trained_model()
    source.save(tmp_path / "m.pt")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "m.pt").write_bytes(data[: len(data) // 3])
    model = trained_model()
    model.fc.weight.data.add_(1.0)
    before = snapshot(model)
    for load in (lambda: model.load_weights(tmp_path / "m.pt"),
                 lambda: torchfit.load_model(tmp_path / "m.pt", model=model)):
        with pytest.raises(ValueError, match=r"truncated, corrupted.*bytes|bytes\).*truncated"):
            load()
        assert_unchanged(model, before)


def test_a_checkpoint_of_another_model_lists_missing_and_unexpected_keys(tmp_path):
    class Other(torchfit.KerasStyleModule, nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Linear(4, 3)

        def forward(self, x):
            return self.body(x)

    Other().save_weights(tmp_path / "w.pt")
    model = trained_model()
    before = snapshot(model)
    with pytest.raises(ValueError) as info:
        model.load_weights(tmp_path / "w.pt")
    message = str(info.value)
    assert "Missing keys" in message and "'fc.weight'" in message and "'fc.bias'" in message
    assert "Unexpected keys" in message and "'body.weight'" in message
    assert_unchanged(model, before)


def test_load_weights_on_a_model_of_another_shape_changes_nothing(tmp_path):
    Net(out=5).save_weights(tmp_path / "w.pt")
    model = trained_model()
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"fc.weight: model \(3, 4\), file \(5, 4\).*skip_mismatch"):
        model.load_weights(tmp_path / "w.pt")
    with pytest.raises(ValueError, match=r"fc.weight: model \(3, 4\), file \(5, 4\)"):
        torchfit.load_model(tmp_path / "w.pt", model=model)
    assert_unchanged(model, before)


def test_load_model_is_all_or_nothing_when_the_optimizer_state_does_not_fit(tmp_path):
    trained_model().save(tmp_path / "m.pt")  # Adam over fc.weight and fc.bias
    model = Net()
    model.compile(optimizer=torch.optim.SGD([model.fc.weight], lr=0.1), loss="mse")
    optimizer = model.optimizer
    before = snapshot(model)
    with pytest.raises(ValueError, match="optimizer state .* does not fit the model's optimizer"):
        torchfit.load_model(tmp_path / "m.pt", model=model)
    assert_unchanged(model, before)  # the weights were not half-loaded
    assert model.optimizer is optimizer


def test_load_model_failing_to_compile_leaves_an_uncompiled_model_as_it_was(tmp_path, monkeypatch):
    trained_model().save(tmp_path / "m.pt")
    model = Net()
    before = snapshot(model)
    from torchfit import saving

    def broken(*args, **kwargs):
        raise ValueError("compile failed")

    monkeypatch.setattr(saving.model_file, "_compile_from_config", broken)  # where load_model looks it up
    with pytest.raises(ValueError, match="compile failed"):
        torchfit.load_model(tmp_path / "m.pt", model=model)
    assert_unchanged(model, before)
    assert not model.compiled


# ------------------------------------------------------ fixed, not refused
def test_a_single_callback_instance_is_accepted_as_in_keras():
    model = trained_model()
    history = tcb.History()
    model.fit(X, Y, epochs=2, verbose=0, callbacks=history)
    assert history.epoch == [0, 1]
    model.fit(X, Y, epochs=1, verbose=0, callbacks=(cb for cb in [tcb.History()]))  # any iterable


def test_input_nan_policy_warn_keeps_training_and_is_validated():
    model = trained_model()
    assert model.input_nan_policy is None
    with pytest.raises(ValueError, match=r"`input_nan_policy` must be one of .*Received: 'ignore'"):
        model.input_nan_policy = "ignore"
    model.input_nan_policy = "warn"
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    assert model.input_nan_policy == "warn"  # survives compile()
    x = X.copy()
    x[5, 1] = np.inf
    with pytest.warns(UserWarning, match=r"`x` holds non-finite values \(NaN or inf\) in batch 1"):
        model.fit(x, Y, batch_size=4, shuffle=False, verbose=0)
    model.input_nan_policy = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.evaluate(x, Y, verbose=0)  # not checked by default


def test_input_nan_policy_raise_stops_at_the_bad_batch_with_earlier_steps_applied():
    model = trained_model()
    model.input_nan_policy = "raise"
    states = []

    class Snap(tcb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            states.append(snapshot(self.model))

    x = X.copy()
    x[9, 0] = np.nan  # the third batch of 4
    with pytest.raises(ValueError, match="in batch 2"):
        model.fit(x, Y, batch_size=4, shuffle=False, verbose=0, callbacks=[Snap()])
    assert len(states) == 2
    assert_unchanged(model, states[-1])


def test_nan_in_validation_data_is_found_at_validation_with_the_epoch_applied():
    model = trained_model()
    model.input_nan_policy = "raise"
    states = []

    class Snap(tcb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            states.append(snapshot(self.model))

    with pytest.raises(ValueError, match=r"`x` holds non-finite values .* Expected finite"):
        model.fit(X, Y, batch_size=5, verbose=0, callbacks=[Snap()], validation_data=(with_nan(X), Y))
    assert len(states) == 2
    assert_unchanged(model, states[-1])


def test_model_checkpoint_format_errors_name_the_filepath_and_keep_the_last_step(tmp_path):
    model = trained_model()
    states = []

    class Snap(tcb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            states.append(snapshot(self.model))

    checkpoint = tcb.ModelCheckpoint(str(tmp_path / "m-{epoch:.2q}.pt"))
    with pytest.raises(ValueError, match=r"`filepath` .*m-\{epoch:.2q\}.pt.*could not be formatted"):
        model.fit(X, Y, batch_size=5, verbose=0, callbacks=[Snap(), checkpoint])
    assert_unchanged(model, states[-1])
    assert os.listdir(tmp_path) == []


def test_column_sample_weights_weight_each_sample_once_with_torch_losses():
    """(N, 1) weights were an outer product with a torch loss module's (N,) losses."""
    model = trained_model(loss=nn.CrossEntropyLoss())
    plain = model.test_on_batch(X, Y)
    assert model.test_on_batch(X, Y, sample_weight=np.ones(10)) == pytest.approx(plain)
    assert model.test_on_batch(X, Y, sample_weight=np.ones((10, 1))) == pytest.approx(plain)


def test_new_data_is_checked_against_losses_built_on_earlier_data():
    model = trained_model(loss="mse")  # built on (10, 3) targets
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"`y` does not fit loss 'mean_squared_error'.*\(10, 5\)"):
        model.fit(X, np.zeros((10, 5), "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"`y` does not fit loss"):
        model.evaluate(X, np.zeros((10, 5), "float32"), verbose=0)
    assert_unchanged(model, before)
    model.fit(X, Y_ONEHOT, verbose=0)  # and good data still trains
