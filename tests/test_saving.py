"""save_weights/load_weights, save/load_model (torch format, weights_only, atomic
writes, clear errors) and summary()."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import saving

RNG = np.random.default_rng(5)
X = RNG.normal(size=(40, 4)).astype("float32")
Y = RNG.integers(0, 3, size=40).astype("int64")


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, hidden), nn.BatchNorm1d(hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 3)

    def forward(self, x):
        return torch.softmax(self.head(self.body(x)), dim=-1)


def trained(optimizer="adam", epochs=2, **compile_kwargs):
    torch.manual_seed(0)
    model = Net()
    compile_kwargs.setdefault("loss", "sparse_categorical_crossentropy")
    compile_kwargs.setdefault("metrics", ["accuracy"])
    model.compile(optimizer=optimizer, **compile_kwargs)
    model.fit(X, Y, batch_size=10, epochs=epochs, verbose=0, shuffle=False)
    return model


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# ------------------------------------------------------------------ weights
def test_save_weights_is_a_plain_state_dict(tmp_path):
    model = trained()
    path = tmp_path / "w.pt"
    model.save_weights(path)
    plain = Net()
    plain.load_state_dict(torch.load(path, weights_only=True))  # no torchfit needed
    assert_same_weights(plain, model)
    fresh = Net()
    fresh.load_weights(str(path))
    assert_same_weights(fresh, model)


def test_load_weights_reads_the_weights_of_a_full_save(tmp_path):
    model = trained()
    model.save(tmp_path / "m.pt")
    fresh = Net()
    fresh.load_weights(tmp_path / "m.pt")
    assert_same_weights(fresh, model)


def test_load_weights_from_another_model_lists_the_keys(tmp_path):
    torch.save(nn.Linear(4, 3).state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError) as info:
        Net().load_weights(tmp_path / "other.pt")
    message = str(info.value)
    assert "Missing keys" in message and "'head.weight'" in message
    assert "Unexpected keys" in message and "'weight'" in message


def test_load_weights_on_a_model_of_another_shape(tmp_path):
    Net(hidden=8).save_weights(tmp_path / "w.pt")
    small = Net(hidden=5)
    with pytest.raises(ValueError, match=re.escape("body.0.weight: model (5, 4), file (8, 4)")):
        small.load_weights(tmp_path / "w.pt")
    with pytest.warns(UserWarning, match="Skipped"):
        small.load_weights(tmp_path / "w.pt", skip_mismatch=True)
    assert torch.equal(small.head.bias, torch.load(tmp_path / "w.pt")["head.bias"])


def test_truncated_and_foreign_files_are_clear_errors(tmp_path):
    model = trained(epochs=1)
    path = tmp_path / "w.pt"
    model.save_weights(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated, corrupted"):
        model.load_weights(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="truncated, corrupted"):
        torchfit.load_model(path, model=Net())
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match="not a file written by torch.save"):
        model.load_weights(tmp_path / "text.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="does not hold model weights"):
        model.load_weights(tmp_path / "list.pt")
    with pytest.raises(FileNotFoundError, match="no such file"):
        model.load_weights(tmp_path / "missing.pt")


def test_writes_are_atomic(tmp_path, monkeypatch):
    model = trained(epochs=1)
    path = tmp_path / "w.pt"
    model.save_weights(path)
    before = path.read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"partial data")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before  # the old file is intact
    assert os.listdir(tmp_path) == ["w.pt"]  # no temporary file left behind


def test_overwrite_false_and_argument_checks(tmp_path):
    model = trained(epochs=1)
    model.save_weights(tmp_path / "w.pt")
    with pytest.raises(FileExistsError, match="overwrite"):
        model.save_weights(tmp_path / "w.pt", overwrite=False)
    with pytest.raises(FileExistsError, match="overwrite"):
        model.save(tmp_path / "w.pt", overwrite=False)
    with pytest.raises(TypeError, match="Argument `filepath`"):
        model.save_weights(None)
    with pytest.raises(TypeError, match="Argument `overwrite`"):
        model.save_weights(tmp_path / "x.pt", overwrite="yes")
    with pytest.raises(TypeError, match="Argument `skip_mismatch`"):
        model.load_weights(tmp_path / "w.pt", skip_mismatch=1)
    with pytest.raises(TypeError, match="Argument `include_optimizer`"):
        model.save(tmp_path / "m.pt", include_optimizer=None)
    with pytest.raises(TypeError, match="Argument `model`"):
        torchfit.load_model(tmp_path / "w.pt", model="Net")
    with pytest.raises(TypeError, match="Argument `compile`"):
        torchfit.load_model(tmp_path / "w.pt", model=Net(), compile="yes")
    with pytest.raises(IsADirectoryError, match="filepath"):
        model.save(tmp_path)


# -------------------------------------------------------------------- models
def test_save_and_load_model_restore_compile_optimizer_epoch_and_step(tmp_path):
    model = trained(optimizer=torchfit.optimizers.Adam(learning_rate=0.02), epochs=2)
    path = tmp_path / "m.pt"
    model.save(path)
    archive = torch.load(path, weights_only=True)
    assert archive["format"] == "torchfit.model"
    assert (archive["epoch"], archive["step"], archive["iterations"]) == (2, 0, 8)
    assert archive["compile_config"]["loss"] == "sparse_categorical_crossentropy"
    assert archive["compile_config"]["unserialized"] == []
    plain = Net()
    plain.load_state_dict(archive["weights"])  # the weights part is a plain state dict

    restored = torchfit.load_model(path, model=Net())
    assert restored.compiled and isinstance(restored.optimizer, torchfit.optimizers.Adam)
    assert restored.optimizer.learning_rate == pytest.approx(0.02)
    assert restored.optimizer.iterations == 8
    assert_same_weights(restored, model)
    # Training on from the restored state equals training on the original.
    model.fit(X, Y, batch_size=10, epochs=1, verbose=0, shuffle=False)
    restored.fit(X, Y, batch_size=10, epochs=1, verbose=0, shuffle=False)
    assert_same_weights(restored, model)
    assert restored.evaluate(X, Y, verbose=0) == model.evaluate(X, Y, verbose=0)


def test_load_model_with_a_torch_optimizer_and_loss_objects(tmp_path):
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                  loss=torchfit.losses.SparseCategoricalCrossentropy(),
                  metrics=[torchfit.metrics.SparseCategoricalAccuracy()])
    model.fit(X, Y, batch_size=10, epochs=1, verbose=0, shuffle=False)
    model.save(tmp_path / "m.pt")
    restored = torchfit.load_model(tmp_path / "m.pt", model=Net())
    assert isinstance(restored.optimizer, torch.optim.SGD)
    assert restored.optimizer.param_groups[0]["momentum"] == 0.9
    model.fit(X, Y, batch_size=10, epochs=1, verbose=0, shuffle=False)
    restored.fit(X, Y, batch_size=10, epochs=1, verbose=0, shuffle=False)
    assert_same_weights(restored, model)


def test_unserializable_compile_arguments_leave_compiling_to_the_user(tmp_path):
    torch.manual_seed(0)
    model = Net()
    cross_entropy = nn.CrossEntropyLoss()
    model.compile(optimizer="adam", loss=lambda y, p: cross_entropy(p, y.long()))  # a lambda has no name
    model.fit(X, Y, batch_size=10, epochs=1, verbose=0)
    model.save(tmp_path / "m.pt")
    assert torch.load(tmp_path / "m.pt", weights_only=True)["compile_config"]["unserialized"] == ["loss"]
    with pytest.warns(UserWarning, match=r"\['loss'\]"):
        restored = torchfit.load_model(tmp_path / "m.pt", model=Net())
    assert not restored.compiled
    assert_same_weights(restored, model)
    # Compiled beforehand, the optimizer state is restored.
    ready = Net()
    ready.compile(optimizer="adam", loss=nn.CrossEntropyLoss())
    torchfit.load_model(tmp_path / "m.pt", model=ready)
    assert ready.optimizer.iterations == model.optimizer.iterations


def test_pickled_models_need_an_explicit_weights_only_false(tmp_path):
    model = trained(epochs=1)
    model.save(tmp_path / "m.pt", pickle_model=True)
    with pytest.raises(ValueError, match="Argument `model` is required"):
        torchfit.load_model(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="weights_only=False"):
        torchfit.load_model(tmp_path / "m.pt", model=Net())
    restored = torchfit.load_model(tmp_path / "m.pt", weights_only=False)
    assert isinstance(restored, Net) and restored.compiled
    assert_same_weights(restored, model)
    model.save(tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="does not hold a pickled model"):
        torchfit.load_model(tmp_path / "plain.pt", weights_only=False)


def test_a_loss_scale_optimizer_keeps_its_scaler_state(tmp_path):
    previous = torchfit.mixed_precision.global_policy()
    torchfit.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = trained(epochs=1)
        model.save(tmp_path / "m.pt")
        restored = torchfit.load_model(tmp_path / "m.pt", model=Net())
        assert restored.optimizer.state_dict()["scaler"] == model.optimizer.state_dict()["scaler"]
        assert restored.optimizer.state_dict()["scaler"]["_growth_tracker"] > 0
    finally:
        torchfit.mixed_precision.set_global_policy(previous)


def test_load_model_on_a_keras_style_sequential(tmp_path):
    torch.manual_seed(0)
    seq = torchfit.keras_style(nn.Sequential(nn.Linear(4, 3), nn.Softmax(-1)))
    seq.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    seq.fit(X, Y, verbose=0)
    seq.save(tmp_path / "s.pt")
    restored = torchfit.load_model(tmp_path / "s.pt", model=nn.Sequential(nn.Linear(4, 3),
                                                                           nn.Softmax(-1)))
    assert restored.compiled
    assert_same_weights(restored, seq)


def test_load_model_from_another_model_lists_keys(tmp_path):
    trained(epochs=1).save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"Missing keys .*'weight'.*Unexpected keys .*'head.bias'"):
        torchfit.load_model(tmp_path / "m.pt", model=nn.Linear(4, 3))


# -------------------------------------------------------------------- RNG
def test_rng_state_round_trip_is_weights_only_loadable(tmp_path):
    import random

    state = saving.get_rng_state()
    saving.atomic_save(state, tmp_path / "rng.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1))
    saving.set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


# ------------------------------------------------------------------ summary
def capture(model, **kwargs):
    lines = []
    model.summary(print_fn=lines.append, **kwargs)
    assert len(lines) == 1
    return lines[0]


def test_summary_table_counts_and_output_shapes():
    model = trained(epochs=1)
    text = capture(model, sample_input=X[:2])
    assert text.startswith('Model: "Net"')
    assert "body (Sequential)" in text and "head (Linear)" in text
    assert "(None, 8)" in text and "(None, 3)" in text
    trainable = sum(p.numel() for p in model.parameters())
    assert f"Trainable params: {trainable:,}" in text
    assert "Non-trainable params: 16 (64.00 B)" in text  # BatchNorm running mean/var
    assert f"Total params: {trainable + 16:,}" in text
    assert "Optimizer params:" in text
    nested = capture(model, expand_nested=True, show_trainable=True)
    assert "  body.1 (BatchNorm1d)" in nested and "Trainable" in nested
    assert re.search(r"body\.1 \(BatchNorm1d\)\s+│ \(None, 8\)", nested)  # recorded by fit
    assert "?" in capture(Net())  # never run, no sample input: shapes unknown


def test_summary_param_counts_match_keras():
    keras = pytest.importorskip("keras")
    from twins import mlp_pair

    keras.utils.clear_session()
    tmodel, kmodel = mlp_pair([6, 8, 3])
    text = capture(tmodel)
    assert f"Total params: {kmodel.count_params():,}" in text


def test_summary_frozen_parameters_and_layer_range():
    model = Net()
    for p in model.head.parameters():
        p.requires_grad_(False)
    text = capture(model, show_trainable=True)
    assert re.search(r"head \(Linear\)\s+│\s+\?\s+│\s+27\s+│\s+N", text)
    assert re.search(r"body \(Sequential\)\s+│\s+\?\s+│\s+72\s+│\s+Y", text)
    assert "Non-trainable params: 43" in text  # 27 frozen + 16 buffer values
    ranged = capture(model, layer_range=["head", "head"])
    assert "head (Linear)" in ranged and "body (Sequential)" not in ranged


def test_summary_validates_its_arguments():
    model = Net()
    with pytest.raises(TypeError, match="sample_input="):
        model.summary(X[:2])  # a batch given positionally lands in line_length
    with pytest.raises(ValueError, match="sample_input"):
        model.summary(sample_input=np.zeros((2, 7), "float32"), print_fn=lambda s: None)
    with pytest.raises(TypeError, match="sample_input"):
        model.summary(sample_input="x", print_fn=lambda s: None)
    with pytest.raises(ValueError, match="layer_range"):
        model.summary(layer_range=["nope", "head"])
    with pytest.raises(ValueError, match="positions"):
        model.summary(positions=[0.5])
    with pytest.raises(TypeError, match="print_fn"):
        model.summary(print_fn=3)
