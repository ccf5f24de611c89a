"""Hardening, part 2 (issue 15, "Bad input"): each case gets a TypeError/ValueError
naming the argument at fault, what was expected and what was received, and leaves
the weights and optimizer state as they were (or as after the last applied step).

Also: a tensor ``x`` with ``requires_grad=True`` trains like plain data, and an
input that runs dry before the last epoch stops ``fit`` with Keras's warning.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from test_hardening_bad_input import X, Y, Y_ONEHOT, Net, assert_unchanged, snapshot, trained_model

Y_REG = np.zeros((10, 3), dtype="float32")


class TwoHeads(torchfit.KerasStyleModule, nn.Module):
    """Outputs {"a": (N, 3), "b": (N, 1)}."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(4, 1)

    def forward(self, x):
        return {"a": self.a(x), "b": self.b(x)}


def two_heads(**compile_kwargs) -> TwoHeads:
    torch.manual_seed(0)
    model = TwoHeads()
    model.compile(optimizer="adam", loss="mse", **compile_kwargs)
    return model


TWO_TARGETS = {"a": Y_REG, "b": np.zeros((10, 1), dtype="float32")}


def fit(model, *args, **kwargs):
    kwargs.setdefault("verbose", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # shuffle ignored for generators
        return model.fit(*args, **kwargs)


def batches(*items):
    yield from items


class NeedsArgument(nn.Module):
    """A loss class that cannot be built without arguments."""

    def __init__(self, margin):
        super().__init__()
        self.margin = margin


def FIRST_BATCH_APPLIED(model):
    """What a generator whose second batch is bad leaves: its first (good) step applied."""
    fit(model, batches((X[:5], Y[:5])))


# (id, model builder, call(model), exception, words that must all be in the message[,
#  what the steps applied before the bad batch did to a twin model])
CASES = [
    ("loss-weights-list-longer-than-outputs", lambda: two_heads(loss_weights=[1.0, 2.0, 3.0]),
     lambda m: fit(m, X, TWO_TARGETS), ValueError,
     ["`loss_weights`", "one entry per model output", "['a', 'b']", "3 entries"]),
    ("loss-weights-dict-unknown-key", lambda: two_heads(loss_weights={"a": 1.0, "c": 2.0}),
     lambda m: fit(m, X, TWO_TARGETS), ValueError,
     ["`loss_weights`", "['c']", "not model outputs", "Expected keys among ['a', 'b']"]),
    ("loss-weights-dict-missing-an-output", lambda: two_heads(loss_weights={"a": 1.0}),
     lambda m: fit(m, X, TWO_TARGETS), ValueError,
     ["`loss_weights`", "a weight for every output", "expected keys ['a', 'b']", "received keys ['a']",
      "missing ['b']"]),
    ("loss-weights-dict-for-a-single-output", lambda: trained_model("mse", loss_weights={"out": 2.0}),
     lambda m: fit(m, X, Y_ONEHOT), ValueError,
     ["`loss_weights`", "keys ['out']", "single output", "expected a float", "'output'"]),
    ("complex-y", lambda: trained_model("mse"),
     lambda m: fit(m, X, Y_REG.astype(np.complex64)), TypeError,
     ["`y`", "real numbers", "complex", "complex64"]),
    ("complex-class-indices", lambda: trained_model(),
     lambda m: fit(m, X, Y.astype(np.complex64)), TypeError, ["`y`", "real numbers", "complex64"]),
    ("complex-y-evaluate", lambda: trained_model("mse"),
     lambda m: m.evaluate(X, Y_REG.astype(np.complex128), verbose=0), TypeError,
     ["`y`", "real numbers", "complex128"]),
    ("dict-x-with-integer-keys", lambda: trained_model(),
     lambda m: fit(m, {0: X}, Y), TypeError, ["`x`", "keys must be strings", "[0]", "int"]),
    ("dict-x-with-integer-keys-from-a-generator", lambda: trained_model(),
     lambda m: fit(m, batches(({0: X}, Y))), TypeError, ["`x`", "keys must be strings", "[0]"]),
    ("y-dict-for-a-single-output", lambda: trained_model(),
     lambda m: fit(m, X, {"labels": Y}), ValueError,
     ["`y`", "keys ['labels']", "single output", "expected a single array", "'output'"]),
    ("sample-weight-dict-for-a-single-output", lambda: trained_model(),
     lambda m: fit(m, X, Y, sample_weight={"output": np.ones(10)}), ValueError,
     ["`sample_weight`", "one array for a single-output model", "Received a dict", "['output']"]),
    ("sample-weight-dict-for-a-single-output-on-batch", lambda: trained_model(),
     lambda m: m.train_on_batch(X, Y, sample_weight={"w": np.ones(10)}), ValueError,
     ["`sample_weight`", "one array for a single-output model", "['w']"]),
    ("validation-class-indices-out-of-range", lambda: trained_model(),
     lambda m: fit(m, X, Y, validation_data=(X, Y + 3)), ValueError,
     ["`validation_data`", "class indices outside [0, 2]", "from 3 to 5"]),
    ("validation-class-indices-for-a-torch-loss", lambda: trained_model(nn.CrossEntropyLoss()),
     lambda m: fit(m, X, Y, validation_data=(X, Y - 1)), ValueError,
     ["`validation_data`", "outside [0, 2]", "CrossEntropyLoss", "from -1 to 1"]),
    ("validation-targets-of-the-wrong-shape", lambda: trained_model("mse"),
     lambda m: fit(m, X, Y_ONEHOT, validation_data=(X, np.zeros((10, 5), "float32"))), ValueError,
     ["`validation_data`", "shaped like the model output", "(10, 5)"]),
    ("validation-y-dict-for-a-single-output", lambda: trained_model(),
     lambda m: fit(m, X, Y, validation_data=(X, {"labels": Y})), ValueError,
     ["`validation_data`", "keys ['labels']", "single output"]),
    ("validation-complex-targets", lambda: trained_model("mse"),
     lambda m: fit(m, X, Y_REG, validation_data=(X, Y_REG.astype(np.complex64))), TypeError,
     ["`validation_data`", "real numbers", "complex64"]),
    ("generator-yields-none", lambda: trained_model(),
     lambda m: fit(m, batches((X[:5], Y[:5]), None)), ValueError,
     ["`x`", "yielded None as batch 1", "(x, y)", "received None"], FIRST_BATCH_APPLIED),
    ("generator-yields-none-first", lambda: trained_model(),
     lambda m: fit(m, batches(None)), ValueError, ["`x`", "yielded None as batch 0"]),
    ("generator-adds-sample-weights", lambda: trained_model(),
     lambda m: fit(m, batches((X[:5], Y[:5]), (X[5:], Y[5:], np.ones(5)))), ValueError,
     ["`x`", "changed structure at batch 1", "(x=array, y=array)",
      "received (x=array, y=array, sample_weight=array)"], FIRST_BATCH_APPLIED),
    ("generator-drops-targets", lambda: trained_model(),
     lambda m: fit(m, iter([(X[:5], Y[:5]), (X[5:],)])), ValueError,
     ["`x`", "changed structure", "received (x=array)"], FIRST_BATCH_APPLIED),
    ("generator-renames-inputs", lambda: trained_model(),
     lambda m: fit(m, batches(({"x": X[:5]}, Y[:5]), ({"inputs": X[5:]}, Y[5:]))), ValueError,
     ["`x`", "changed structure", "{'x': array}", "{'inputs': array}"], FIRST_BATCH_APPLIED),
    ("sparse-x", lambda: trained_model(),
     lambda m: fit(m, torch.from_numpy(X).to_sparse(), Y), TypeError,
     ["`x`", "dense tensors", "torch.sparse_coo", "(10, 4)", "to_dense()"]),
    ("sparse-csr-x-predict", lambda: trained_model(),
     lambda m: m.predict(torch.from_numpy(X).to_sparse_csr(), verbose=0), TypeError,
     ["`x`", "dense tensors", "torch.sparse_csr"]),
    ("loss-class-that-needs-arguments", lambda: trained_model(),
     lambda m: m.compile(optimizer="adam", loss=NeedsArgument), TypeError,
     ["`loss`", "class NeedsArgument", "cannot be instantiated without arguments", "margin",
      "loss=NeedsArgument(...)"]),
    ("integer-x-on-a-float-layer", lambda: trained_model(),
     lambda m: fit(m, X.astype(np.int64), Y), TypeError,
     ["`x`", "integer", "torch.int64", "only floating-point inputs", "cast", "mat1 and mat2"]),
    ("integer-x-predict", lambda: trained_model(),
     lambda m: m.predict(X.astype(np.int32), verbose=0), TypeError,
     ["`x`", "integer", "torch.int32", "only floating-point inputs"]),
    ("bool-x-train-on-batch", lambda: trained_model(),
     lambda m: m.train_on_batch(X > 0, Y), TypeError, ["`x`", "torch.bool", "only floating-point inputs"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_the_argument_and_changes_nothing(case):
    _, build, call, error, words = case[:5]
    model = build()
    twin = build()
    if len(case) > 5:
        case[5](twin)  # the steps before the bad batch are applied, as in Keras
    with pytest.raises(error) as info:
        call(model)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in: {message}"
    assert_unchanged(model, snapshot(twin))


def test_the_cases_are_distinct():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names)) >= 20


def test_validation_data_is_checked_before_the_first_epoch_trains():
    model = trained_model()
    before = snapshot(model)
    seen = []

    class Record(torchfit.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    with pytest.raises(ValueError, match="`validation_data`"):
        fit(model, X, Y, validation_data=(X, Y + 3), callbacks=[Record()])
    assert seen == [] and snapshot(model) == before


def test_valid_single_output_dicts_are_still_accepted():
    plain = trained_model()
    keyed = trained_model()
    history_plain = fit(plain, X, Y, shuffle=False).history
    history_keyed = fit(keyed, X, {"output": Y}, shuffle=False).history
    assert history_keyed == history_plain
    weighted = trained_model("mse", loss_weights={"output": 2.0})
    assert weighted.train_on_batch(X, Y_ONEHOT) == pytest.approx(
        2.0 * trained_model("mse").train_on_batch(X, Y_ONEHOT), rel=1e-6)


# ------------------------------------------------------- loss given as a class
@pytest.mark.parametrize("as_class, as_instance", [
    (nn.CrossEntropyLoss, nn.CrossEntropyLoss()),
    (torchfit.losses.SparseCategoricalCrossentropy, torchfit.losses.SparseCategoricalCrossentropy()),
])
def test_a_loss_class_is_instantiated_as_keras_does(as_class, as_instance):
    by_class, by_instance = trained_model(as_class), trained_model(as_instance)
    assert fit(by_class, X, Y, shuffle=False).history == fit(by_instance, X, Y, shuffle=False).history
    assert snapshot(by_class)[0] == snapshot(by_instance)[0]
    assert not any(isinstance(m, nn.CrossEntropyLoss) for m in by_class.modules())


def test_a_loss_class_per_output():
    model = two_heads()
    model.compile(optimizer="adam", loss={"a": nn.MSELoss, "b": "mse"})
    history = fit(model, X, TWO_TARGETS)
    assert sorted(history.history) == ["a_loss", "b_loss", "loss"]


# ------------------------------------------------------ x that requires grad
def test_an_x_that_requires_grad_trains_like_plain_data():
    plain = torch.from_numpy(X.copy())
    tracked = torch.from_numpy(X.copy()).requires_grad_()
    results = []
    for x in (plain, tracked):
        model = trained_model()
        torch.manual_seed(1)
        history = fit(model, x, Y, batch_size=3, epochs=2, shuffle=True)
        results.append((history.history, snapshot(model)))
    assert results[0] == results[1]
    assert tracked.grad is None  # no graph from the batches back to the caller's tensor


def test_an_x_that_requires_grad_in_on_batch_and_predict():
    tracked = torch.from_numpy(X.copy()).requires_grad_()
    model = trained_model()
    model.train_on_batch(tracked, Y)
    assert model.predict(tracked, verbose=0).shape == (10, 3)
    assert tracked.grad is None


# ------------------------------------------------------------ ran out of data
class EpochLogs(torchfit.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []
        self.begun = []

    def on_epoch_begin(self, epoch, logs=None):
        self.begun.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append((epoch, dict(logs or {})))


def five_batches():
    for i in range(0, 10, 2):
        yield X[i:i + 2], Y[i:i + 2]


@pytest.mark.parametrize("make, steps_per_epoch, epochs_run", [
    (five_batches, None, [0]),
    (lambda: iter(list(five_batches())), None, [0]),
    (five_batches, 3, [0, 1]),  # 3 steps, then 2 (the generator runs out), then none
    (lambda: (b for _ in range(2) for b in five_batches()), 5, [0, 1]),  # used up exactly
])
def test_an_input_that_runs_dry_stops_training_with_keras_warning(make, steps_per_epoch, epochs_run):
    model = trained_model()
    record = EpochLogs()
    with pytest.warns(UserWarning, match="Your input ran out of data; interrupting training"):
        history = model.fit(make(), epochs=4, steps_per_epoch=steps_per_epoch, verbose=0,
                            shuffle=False, validation_data=(X, Y), callbacks=[record])
    assert history.epoch == epochs_run
    assert {key: len(values) for key, values in history.history.items()} == {
        "loss": len(epochs_run), "val_loss": len(epochs_run)}
    assert [epoch for epoch, _ in record.logs] == epochs_run == record.begun
    assert all("loss" in logs and "val_loss" in logs for _, logs in record.logs)


def test_validation_data_that_runs_dry_stops_training_before_the_next_epoch():
    model = trained_model()
    record = EpochLogs()
    validation = iter([(X[:5], Y[:5]), (X[5:], Y[5:])])
    with pytest.warns(UserWarning, match="Your input ran out of data; interrupting training"):
        history = model.fit(X, Y, epochs=3, verbose=0, validation_data=validation, callbacks=[record])
    assert history.epoch == [0] == record.begun
    assert {key: len(values) for key, values in history.history.items()} == {"loss": 1, "val_loss": 1}


def test_validation_that_is_not_due_does_not_stop_training():
    model = trained_model()
    validation = iter([(X[:5], Y[:5])])
    history = model.fit(X, Y, epochs=3, verbose=0, validation_data=validation, validation_freq=[1])
    assert history.epoch == [0, 1, 2] and len(history.history["val_loss"]) == 1


def test_an_input_that_lasts_trains_every_epoch_without_warning():
    model = trained_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = model.fit((b for _ in range(3) for b in five_batches()), epochs=3,
                            steps_per_epoch=5, verbose=0, shuffle=False)
    assert history.epoch == [0, 1, 2] and len(history.history["loss"]) == 3
