"""Validate everything before changing anything (issue 15, part 2).

A stored optimizer state never loads into another kind of optimizer (torch
would let Adam's state load into SGD, which then steps with Adam's learning
rate or fails with a KeyError), and a refused ``load_model`` or
``BackupAndRestore`` restore leaves the model and optimizer exactly as before.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import callbacks as tcb

from test_hardening_bad_input import assert_unchanged, snapshot
from test_hardening_security import Net

X = np.random.default_rng(5).normal(size=(12, 4)).astype("float32")
Y = np.arange(12) % 3


OPTIMIZERS = {
    "torchfit-adam": (lambda m: "adam", "torchfit.optimizers.Adam"),
    "torchfit-sgd": (lambda m: torchfit.optimizers.SGD(learning_rate=0.1, momentum=0.9),
                     "torchfit.optimizers.SGD"),
    "torch-adam": (lambda m: torch.optim.Adam(m.parameters(), lr=0.01), "torch.optim.Adam"),
    "torch-sgd": (lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), "torch.optim.SGD"),
}
PAIRS = [("torchfit-adam", "torchfit-sgd"), ("torchfit-adam", "torch-sgd"),
         ("torch-adam", "torch-sgd"), ("torch-sgd", "torchfit-sgd")]


def trained(kind, epochs=1, seed=0, **fit_kwargs):
    torch.manual_seed(seed)
    model = Net()
    model.compile(optimizer=OPTIMIZERS[kind][0](model), loss="sparse_categorical_crossentropy")
    model.fit(X, Y, batch_size=4, epochs=epochs, verbose=0, **fit_kwargs)
    return model


@pytest.mark.parametrize("saved, target", PAIRS, ids=[f"{a}-into-{b}" for a, b in PAIRS])
def test_load_model_refuses_another_optimizers_state(tmp_path, saved, target):
    trained(saved).save(tmp_path / "m.pt")
    model = trained(target, seed=1)
    before = snapshot(model)
    lr_before = [g["lr"] for g in model.optimizer.param_groups]
    with pytest.raises(ValueError) as raised:
        torchfit.load_model(tmp_path / "m.pt", model=model)
    message = str(raised.value)
    assert OPTIMIZERS[saved][1] in message and OPTIMIZERS[target][1] in message
    assert_unchanged(model, before)
    assert [g["lr"] for g in model.optimizer.param_groups] == lr_before
    model.fit(X, Y, batch_size=4, verbose=0)  # still trains: no KeyError at the next step


def test_files_without_the_optimizer_identity_are_told_apart_by_hyper_parameters(tmp_path):
    """Files written before the identity was recorded: Adam's betas/eps against
    SGD's momentum/dampening."""
    trained("torch-adam").save(tmp_path / "m.pt")
    archive = torch.load(tmp_path / "m.pt", weights_only=True)
    del archive["optimizer_class"]
    archive["compile_config"]["optimizer"] = None
    torch.save(archive, tmp_path / "m.pt")
    model = trained("torch-sgd", seed=1)
    before = snapshot(model)
    with pytest.raises(ValueError, match=r"torch\.optim\.SGD\): it was written by another optimizer.*betas"):
        torchfit.load_model(tmp_path / "m.pt", model=model)
    assert_unchanged(model, before)


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_the_same_optimizer_still_loads_and_trains_on_identically(tmp_path, kind):
    model = trained(kind)
    model.save(tmp_path / "m.pt")
    other = trained(kind, seed=1)
    torchfit.load_model(tmp_path / "m.pt", model=other)
    model.fit(X, Y, batch_size=4, verbose=0, shuffle=False)
    other.fit(X, Y, batch_size=4, verbose=0, shuffle=False)
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key


# ----------------------------------------------------------- BackupAndRestore
def backed_up(directory, kind="torchfit-adam", callbacks=()):
    cb = tcb.BackupAndRestore(directory, delete_checkpoint=False)
    return trained(kind, callbacks=[*callbacks, cb])


def refused_resume(directory, model, match, callbacks=(), extra_state=None):
    before = snapshot(model)
    rng = torch.get_rng_state()
    cb = tcb.BackupAndRestore(directory, extra_state=extra_state)
    with pytest.raises(ValueError, match=match):
        model.fit(X, Y, batch_size=4, epochs=3, verbose=0, callbacks=[*callbacks, cb])
    assert_unchanged(model, before)
    assert torch.equal(torch.get_rng_state(), rng)


@pytest.mark.parametrize("saved, target", PAIRS, ids=[f"{a}-into-{b}" for a, b in PAIRS])
def test_backup_with_another_optimizer_is_refused_before_the_weights_change(tmp_path, saved, target):
    backed_up(tmp_path / "b", saved)
    model = trained(target, seed=1)
    refused_resume(tmp_path / "b", model,
                   rf"{OPTIMIZERS[saved][1]}.*{OPTIMIZERS[target][1]}")


def test_backup_with_other_callbacks_is_refused_before_the_weights_change(tmp_path):
    backed_up(tmp_path / "b", callbacks=[tcb.EarlyStopping(monitor="loss", patience=5)])
    refused_resume(tmp_path / "b", trained("torchfit-adam", seed=1), "callbacks of this fit")


def test_backup_without_the_extra_state_is_refused_before_the_weights_change(tmp_path):
    backed_up(tmp_path / "b")
    model = trained("torchfit-adam", seed=1)
    scheduler = torch.optim.lr_scheduler.StepLR(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1),
                                                step_size=1)
    refused_resume(tmp_path / "b", model, r"no state for extra_state \['sched'\]",
                   extra_state={"sched": scheduler})


@pytest.mark.parametrize("damage", ["rng", "step", "weights"])
def test_backup_with_damaged_fields_is_refused_before_the_weights_change(tmp_path, damage):
    backed_up(tmp_path / "b")
    path = tmp_path / "b" / "latest.pt"
    backup = torch.load(path, weights_only=True)
    if damage == "rng":
        backup["rng"]["torch"] = backup["rng"]["torch"][:100]
    elif damage == "step":
        backup["step"] = -3
    else:
        backup["weights"] = None
    torch.save(backup, path)
    refused_resume(tmp_path / "b", trained("torchfit-adam", seed=1),
                   {"rng": "no valid RNG state", "step": "step=-3", "weights": "holds no weights"}[damage])


def test_backup_with_a_damaged_callback_state_is_refused_before_the_weights_change(tmp_path):
    stopper = tcb.EarlyStopping(monitor="loss", patience=5)
    backed_up(tmp_path / "b", callbacks=[stopper])
    path = tmp_path / "b" / "latest.pt"
    backup = torch.load(path, weights_only=True)
    backup["callbacks"][0]["state"] = {"wait": 1}  # keys missing
    torch.save(backup, path)
    refused_resume(tmp_path / "b", trained("torchfit-adam", seed=1),
                   "state of EarlyStopping .* cannot be loaded",
                   callbacks=[tcb.EarlyStopping(monitor="loss", patience=5)])
