"""Hardening, part 3: property-based tests of the data adapters and the public
entry points over random nested structures of arrays/tensors/None, dtypes
(bool, int, float16...), lengths and input kinds (arrays, DataLoader, Dataset,
generator). Each call gives a correct result or a clear TypeError/ValueError;
never an internal error raised inside torchfit, and never a hang (each example
runs under an alarm).
"""

from __future__ import annotations

import contextlib
import os
import signal
import traceback
import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import torchfit
from torchfit import callbacks as tcb
from torchfit import tree
from torchfit.data import EpochIterator, get_adapter

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TORCHFIT_DIR = os.path.dirname(torchfit.__file__) + os.sep
# Deterministic in the suite (the same 40 examples each run); for a bug hunt run
# e.g. FUZZ_EXAMPLES=2000 FUZZ_RANDOM=1 pytest tests/test_hardening_fuzz.py
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 40)), deadline=None, database=None,
                derandomize=not os.environ.get("FUZZ_RANDOM"),
                suppress_health_check=list(HealthCheck))
DTYPES = ["float32", "float64", "float16", "int64", "int32", "uint8", "bool"]
TIMEOUT_S = 20


class Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: int = TIMEOUT_S):
    """Fail (instead of hanging) when the body runs longer than ``seconds``."""

    def expire(signum, frame):
        raise Hang(f"no result after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_clear(error: BaseException) -> None:
    """A clear TypeError/ValueError, or an error of the user's model/torch raised
    outside torchfit; anything raised by torchfit's own code must be clear."""
    assert not isinstance(error, Hang), str(error)
    frames = traceback.extract_tb(error.__traceback__)
    last = frames[-1] if frames else None
    inside = last is not None and last.filename.startswith(TORCHFIT_DIR)
    where = [(os.path.basename(f.filename), f.lineno, f.name) for f in frames[-5:]]
    if isinstance(error, (TypeError, ValueError)):
        if inside:
            message = str(error)
            assert "`" in message or "argument" in message.lower() or "expected" in message.lower(), (
                f"unclear {type(error).__name__} at {where}: {message}")
        return
    assert not inside, f"internal {type(error).__name__} at {where}: {error}"


def run_checked(call):
    """``call()`` under a time limit; returns (result, error)."""
    try:
        with time_limit(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except Exception as error:  # noqa: BLE001 - classified below
        hypothesis.event(f"refused: {type(error).__name__}")
        assert_clear(error)
        return None, error
    hypothesis.event("accepted")
    return result, None


# ------------------------------------------------------------------ strategies
@st.composite
def leaves(draw, n):
    kind = draw(st.sampled_from(["numpy"] * 6 + ["tensor"] * 3 + ["none", "pylist", "scalar", "string"]))
    dtype = draw(st.sampled_from(DTYPES))
    dims = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    rows = draw(st.sampled_from([n] * 8 + [max(n - 1, 0), n + 1]))
    array = (np.random.default_rng(rows).normal(size=(rows,) + dims) * 3).astype(dtype)
    if kind == "tensor":
        return torch.from_numpy(array)
    if kind == "none":
        return None
    if kind == "pylist":
        return array.tolist()
    if kind == "scalar":
        return 3.0
    if kind == "string":
        return "abc"
    return array


@st.composite
def structures(draw, n, depth=0):
    if depth >= 2 or draw(st.booleans()):
        return draw(leaves(n))
    kind = draw(st.sampled_from(["list", "tuple", "dict"]))
    items = [draw(structures(n, depth + 1)) for _ in range(draw(st.integers(0, 3)))]
    if kind == "dict":
        return {f"k{i}": item for i, item in enumerate(items)}
    return items if kind == "list" else tuple(items)


def as_batched(kind, x, y, batch_size):
    """``x``/``y`` (arrays) re-packaged as a batched input of ``kind``."""
    n = tree.first_leaf(x).shape[0]
    size = batch_size if isinstance(batch_size, int) and batch_size > 0 else 3
    batches = []
    for start in range(0, n, size):
        xb = tree.map_structure(lambda t: None if t is None else t[start:start + size], x)
        batches.append(xb if y is None else (xb, y[start:start + size]))

    class Batches(Dataset):
        def __len__(self):
            return len(batches)

        def __getitem__(self, i):
            return batches[i]

    class Stream(IterableDataset):
        def __iter__(self):
            return iter(batches)

    if kind == "generator":
        return (b for b in batches)
    if kind == "dataloader":
        return DataLoader(Batches(), batch_size=None)
    if kind == "iterable_dataloader":
        return DataLoader(Stream(), batch_size=None)
    if kind == "samples_dataset":  # a bare map-style Dataset of samples, batched by fit
        class Samples(Dataset):
            def __len__(self):
                return n

            def __getitem__(self, i):
                xi = tree.map_structure(lambda t: None if t is None else t[i], x)
                return xi if y is None else (xi, y[i])

        return Samples()
    if kind == "tensor_dataset" and isinstance(x, torch.Tensor):
        return TensorDataset(x) if y is None else TensorDataset(x, torch.as_tensor(y))
    return DataLoader(Batches(), batch_size=None)


# ------------------------------------------------------------------- adapters
@FUZZ
@given(st.data())
def test_get_adapter_gives_batches_of_every_sample_or_a_clear_error(data):
    n = data.draw(st.integers(0, 7))
    x = data.draw(structures(n))
    y = data.draw(st.one_of(st.none(), structures(n)))
    sample_weight = data.draw(st.one_of(st.none(), st.none(), leaves(n)))
    batch_size = data.draw(st.sampled_from([None, 1, 2, 5] * 3 + [0, -1, 2.5, True, "4"]))
    steps = data.draw(st.sampled_from([None, None, None, 1, 3, 0]))
    shuffle = data.draw(st.sampled_from([False, True, "batch"] * 3 + ["yes", None]))
    class_weight = data.draw(st.sampled_from([None] * 6 + [{0: 1.0, 1: 2.0}, {0: "a"}, [1.0], {-1: 1.0}]))

    def walk():
        adapter = get_adapter(x, y, sample_weight, batch_size, steps, shuffle, class_weight)
        iterator = EpochIterator(adapter, steps)
        epochs = []
        for _ in range(2):
            rows = 0
            for _, _, group in iterator:
                for batch in group:
                    assert isinstance(batch, tuple) and len(batch) == 3
                    rows += int(tree.first_leaf(batch[0]).shape[0])
            epochs.append(rows)
        return adapter, epochs

    result, error = run_checked(walk)
    if error is None:
        adapter, epochs = result
        if steps is None and adapter.num_samples is not None:
            assert epochs == [adapter.num_samples] * 2  # every sample once per epoch
        assert adapter.num_samples != 0


@FUZZ
@given(n=st.integers(0, 6), dtype=st.sampled_from(DTYPES), kind=st.sampled_from(
    ["generator", "dataloader", "iterable_dataloader", "samples_dataset", "tensor_dataset"]),
    batch_size=st.sampled_from([None, 1, 2, 4]), steps=st.sampled_from([None, 1, 5]),
    with_y=st.booleans())
def test_batched_inputs_through_get_adapter(n, dtype, kind, batch_size, steps, with_y):
    x = torch.from_numpy(np.random.default_rng(n).normal(size=(n, 3)).astype(dtype))
    y = np.arange(n) % 2 if with_y else None

    def walk():
        source = as_batched(kind, x, y, batch_size)
        extra = {"batch_size": batch_size} if kind in ("samples_dataset", "tensor_dataset") else {}
        adapter = get_adapter(source, steps=steps, **extra)
        total = 0
        for _ in range(2):
            for _, _, group in EpochIterator(adapter, steps):
                for xb, yb, _ in group:
                    total += int(xb.shape[0])
                    assert (yb is None) == (y is None)
        return total

    total, error = run_checked(walk)
    if error is None:  # an empty iterable dataset has no length: only fit/evaluate can tell
        assert total <= 2 * n and (total > 0 or kind == "iterable_dataloader")


# ----------------------------------------------------------- entry points
class AnyInput(torchfit.KerasStyleModule, nn.Module):
    """Takes any structure: its first leaf (flattened) feeds a Linear(3, 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, *args, **kwargs):
        leaf = tree.first_leaf(list(args) + [kwargs[k] for k in sorted(kwargs)])
        flat = leaf.float().reshape(leaf.shape[0], -1)
        if flat.shape[1] < 3:
            flat = torch.cat([flat, flat.new_zeros(flat.shape[0], 3 - flat.shape[1])], dim=1)
        return self.fc(flat[:, :3])


LOSSES = {
    "torch_ce": lambda: nn.CrossEntropyLoss(),
    "sparse": lambda: torchfit.losses.SparseCategoricalCrossentropy(from_logits=True),
    "mse": lambda: "mse",
    "categorical": lambda: "categorical_crossentropy",
}


@st.composite
def training_cases(draw):
    n = draw(st.integers(0, 7))
    dtype = draw(st.sampled_from(DTYPES))
    dims = (3,) if draw(st.booleans()) else tuple(draw(st.lists(st.integers(1, 4), max_size=2)))
    x = (np.random.default_rng(n).normal(size=(n,) + dims) * 2).astype(dtype)
    wrap = draw(st.sampled_from(["numpy", "tensor", "list", "dict", "nested"]))
    x = {"numpy": x, "tensor": torch.from_numpy(x), "list": [x, x], "dict": {"a": x},
         "nested": {"a": (x, [x])}}[wrap]
    rows = draw(st.sampled_from([n, n, n + 1]))
    y = {"sparse": np.arange(rows) % 2, "onehot": np.eye(2, dtype="float32")[np.arange(rows) % 2],
         "none": None, "float": np.zeros((rows, 2)), "out_of_range": np.arange(rows) + 5,
         "int_2d": np.zeros((rows, 3), "int64"), "bool": np.arange(rows) % 2 == 0,
         }[draw(st.sampled_from(["sparse", "onehot", "none", "float", "out_of_range", "int_2d", "bool"]))]
    sample_weight = {None: None, "ok": np.ones(n), "negative": -np.ones(n), "nan": np.full(n, np.nan),
                     "temporal": np.ones((n, 2))}[
        draw(st.sampled_from([None, "ok", "negative", "nan", "temporal"]))]
    kind = draw(st.sampled_from(["arrays", "arrays", "generator", "dataloader", "iterable_dataloader",
                                 "samples_dataset", "tensor_dataset"]))
    batch_size = draw(st.sampled_from([None, 1, 3]))
    return x, y, sample_weight, kind, batch_size


def call_entry(model, method, case, **extra):
    x, y, sample_weight, kind, batch_size = case
    if method == "predict":
        y, sample_weight = None, None
    if kind == "arrays":
        kwargs = dict(x=x, y=y, sample_weight=sample_weight, batch_size=batch_size)
    else:
        if tree.first_leaf(x).shape[0] != (len(y) if y is not None else tree.first_leaf(x).shape[0]):
            y = None  # batched inputs carry their own targets
        kwargs = dict(x=as_batched(kind, x, y, batch_size))
        if kind in ("samples_dataset", "tensor_dataset"):
            kwargs["batch_size"] = batch_size
    if method == "predict":
        kwargs.pop("y", None)
        kwargs.pop("sample_weight", None)
    return getattr(model, method)(verbose=0, **kwargs, **extra)


@FUZZ
@given(case=training_cases(), method=st.sampled_from(["fit", "evaluate", "predict"]),
       loss=st.sampled_from(sorted(LOSSES)), policy=st.sampled_from([None, "raise"]))
def test_fit_evaluate_predict_give_a_result_or_a_clear_error(case, method, loss, policy):
    torch.manual_seed(0)
    model = AnyInput()
    model.compile(optimizer="sgd", loss=LOSSES[loss](), metrics=["accuracy"])
    model.input_nan_policy = policy
    result, error = run_checked(lambda: call_entry(model, method, case))
    if error is None and method == "predict":
        assert isinstance(result, np.ndarray) and result.shape[-1] == 2
        assert result.shape[0] == tree.first_leaf(case[0]).shape[0]
    if error is None and method == "evaluate":
        assert isinstance(result, list) and len(result) == 2


@FUZZ
@given(case=training_cases(), method=st.sampled_from(["train_on_batch", "test_on_batch", "predict_on_batch"]),
       loss=st.sampled_from(sorted(LOSSES)), return_dict=st.sampled_from([False, True, "yes"]))
def test_on_batch_methods_give_a_result_or_a_clear_error(case, method, loss, return_dict):
    x, y, sample_weight, _, _ = case
    model = AnyInput()
    model.compile(optimizer="adam", loss=LOSSES[loss]())
    if method == "predict_on_batch":
        call = lambda: model.predict_on_batch(x)  # noqa: E731
    else:
        call = lambda: getattr(model, method)(x, y, sample_weight=sample_weight,  # noqa: E731
                                              return_dict=return_dict)
    result, error = run_checked(call)
    if error is None and method == "predict_on_batch":
        assert result.shape == (tree.first_leaf(x).shape[0], 2)


# ------------------------------------------------------ compile and callbacks
VALUES = st.sampled_from([None, 0, 1, -1, 2.5, float("nan"), True, "", "x", "auto", "epoch", [],
                          [1], {}, {"a": 1}, object(), "adam", "mse", "accuracy", 10])


@FUZZ
@given(st.dictionaries(st.sampled_from(["optimizer", "loss", "loss_weights", "metrics",
                                        "weighted_metrics", "run_eagerly", "steps_per_execution",
                                        "jit_compile", "auto_scale_loss"]), VALUES, max_size=4))
def test_compile_accepts_or_refuses_clearly(kwargs):
    model = AnyInput()
    _, error = run_checked(lambda: model.compile(**kwargs))
    if error is not None:
        assert not model.compiled  # a refused compile leaves nothing half-configured


CALLBACKS = {
    "EarlyStopping": ["monitor", "min_delta", "patience", "verbose", "mode", "baseline",
                      "restore_best_weights", "start_from_epoch"],
    "ModelCheckpoint": ["filepath", "monitor", "verbose", "save_best_only", "save_weights_only",
                        "mode", "save_freq", "initial_value_threshold"],
    "ReduceLROnPlateau": ["monitor", "factor", "patience", "verbose", "mode", "min_delta",
                          "cooldown", "min_lr"],
    "CSVLogger": ["filename", "separator", "append"],
    "BackupAndRestore": ["backup_dir", "save_freq", "double_checkpoint", "delete_checkpoint",
                         "extra_state"],
    "TensorBoard": ["log_dir", "histogram_freq", "write_graph", "write_images",
                    "write_steps_per_second", "update_freq", "profile_batch", "embeddings_freq"],
    "LearningRateScheduler": ["schedule", "verbose"],
    "TerminateOnNaN": [],
}
REQUIRED = {"ModelCheckpoint": "filepath", "CSVLogger": "filename", "BackupAndRestore": "backup_dir",
            "LearningRateScheduler": "schedule"}


@FUZZ
@given(st.data())
def test_callback_constructors_accept_or_refuse_clearly(data):
    name = data.draw(st.sampled_from(sorted(CALLBACKS)))
    arguments = CALLBACKS[name]
    kwargs = data.draw(st.dictionaries(st.sampled_from(arguments), VALUES, max_size=3)) if arguments else {}
    if name in REQUIRED and REQUIRED[name] not in kwargs:
        kwargs[REQUIRED[name]] = "unused_path" if name != "LearningRateScheduler" else (lambda e: 0.1)
    _, error = run_checked(lambda: getattr(tcb, name)(**kwargs))
    if isinstance(error, (TypeError, ValueError)) and "unexpected keyword" not in str(error):
        assert name in str(error) or "`" in str(error), str(error)


@FUZZ
@given(case=training_cases(), loss=st.sampled_from(sorted(LOSSES)), extra=st.fixed_dictionaries({}, optional={
    "epochs": st.sampled_from([0, 1, 2, -1, 1.5]),
    "initial_epoch": st.sampled_from([0, 1, 3]),
    "steps_per_epoch": st.sampled_from([None, 1, 2, 50, 0]),
    "validation_split": st.sampled_from([0.0, 0.3, 0.99, 1.0]),
    "validation_freq": st.sampled_from([1, 2, [1, 2], [0]]),
    "class_weight": st.sampled_from([None, {0: 1.0, 1: 3.0}, {5: 1.0}, {0: float("inf")}]),
    "shuffle": st.sampled_from([True, False, "batch"]),
    "validation_steps": st.sampled_from([None, 1, 3]),
}))
def test_fit_arguments_give_a_history_or_a_clear_error(case, loss, extra):
    torch.manual_seed(0)
    model = AnyInput()
    model.compile(optimizer="sgd", loss=LOSSES[loss](), metrics=["accuracy"])
    x, y = case[0], case[1]
    if "validation_steps" in extra and "validation_split" not in extra and y is not None:
        extra["validation_data"] = (x, y)
    history, error = run_checked(lambda: call_entry(model, "fit", case, **extra))
    if error is None:
        assert isinstance(history, torchfit.callbacks.History)
        for values in history.history.values():  # fewer: validation_freq, spent generators
            assert len(values) <= len(history.epoch)
            assert all(isinstance(v, float) for v in values)


def test_categorical_accuracy_accepts_boolean_one_hot_targets():
    from torchfit.metrics import CategoricalAccuracy

    y_pred = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    as_bool = torch.tensor([[True, False], [False, True], [False, True]])
    a, b = CategoricalAccuracy(), CategoricalAccuracy()
    a.update_state(as_bool, y_pred)
    b.update_state(as_bool.float(), y_pred)
    assert float(a.result()) == float(b.result()) == pytest.approx(2 / 3)
