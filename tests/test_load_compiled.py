"""Saved models come back compiled (issue 18): torch loss modules, ``torch.optim``
optimizers with their param groups, torchmetrics metrics and the user's own
named objects (through ``custom_objects``), rebuilt without importing
anything the file names, and training continues bit-identically.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit.saving import compile_args

torchmetrics = pytest.importorskip("torchmetrics")

X = np.random.default_rng(6).normal(size=(24, 4)).astype("float32")
Y = np.arange(24) % 3


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.relu(self.hidden(x)))


# The same model, data and compile() in this process and in the subprocesses.
SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import torch
    import torchmetrics
    from torch import nn
    import torchfit

    X = np.random.default_rng(6).normal(size=(24, 4)).astype("float32")
    Y = np.arange(24) % 3

    class Net(torchfit.KerasStyleModule, nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(4, 8)
            self.out = nn.Linear(8, 3)

        def forward(self, x):
            return self.out(torch.relu(self.hidden(x)))

    def compiled():
        torch.manual_seed(0)
        model = Net()
        optimizer = torch.optim.SGD([{"params": model.hidden.parameters(), "lr": 0.05},
                                     {"params": model.out.parameters()}],
                                    lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)
        model.compile(optimizer=optimizer,
                      loss=nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]),
                                               label_smoothing=0.1),
                      metrics=[torchmetrics.classification.MulticlassAccuracy(num_classes=3,
                                                                              average="micro")])
        return model

    def train(model, epochs):
        model.fit(X, Y, batch_size=5, epochs=epochs, shuffle=False, verbose=0)

    mode, path = sys.argv[1], sys.argv[2]
    if mode == "uninterrupted":
        model = compiled()
        train(model, 4)
        torch.save(model.state_dict(), path)
    elif mode == "first-half":
        model = compiled()
        train(model, 2)
        model.save(path)
    else:  # a fresh process: nothing but the file and the architecture
        model = torchfit.load_model(path, model=Net())
        assert model.compiled, "not compiled"
        assert isinstance(model.optimizer, torch.optim.SGD)
        assert [g["lr"] for g in model.optimizer.param_groups] == [0.05, 0.1]
        assert model.evaluate(X, Y, verbose=0, return_dict=True)["multiclass_accuracy"] >= 0
        train(model, 2)
        torch.save(model.state_dict(), sys.argv[3])
""")


def run(tmp_path, *args):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script), *map(str, args)], env=os.environ.copy(),
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_save_then_load_in_a_fresh_process_continues_bit_identically(tmp_path):
    run(tmp_path, "uninterrupted", tmp_path / "reference.pt")
    run(tmp_path, "first-half", tmp_path / "half.pt")
    run(tmp_path, "second-half", tmp_path / "half.pt", tmp_path / "resumed.pt")
    reference = torch.load(tmp_path / "reference.pt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert reference.keys() == resumed.keys()
    for key, value in reference.items():
        assert torch.equal(resumed[key], value), key


TORCH_LOSSES = [
    nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]), ignore_index=2, label_smoothing=0.2,
                        reduction="sum"),
    nn.NLLLoss(weight=torch.tensor([0.5, 1.0, 1.0]), ignore_index=1),
    nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0]), reduction="sum"),
    nn.HuberLoss(delta=0.3),
    nn.SmoothL1Loss(beta=0.5),
    nn.KLDivLoss(reduction="batchmean", log_target=True),
    nn.MSELoss(reduction="mean"),
]


@pytest.mark.parametrize("loss", TORCH_LOSSES, ids=[type(l).__name__ for l in TORCH_LOSSES])
def test_torch_loss_modules_keep_their_arguments_and_buffers(loss):
    entry = compile_args.serialize_objects(loss, "loss")
    assert entry["__torch__"] == "loss" and entry["class_name"] == type(loss).__name__
    rebuilt = compile_args.deserialize_objects(entry, None)
    assert type(rebuilt) is type(loss) and rebuilt is not loss
    assert rebuilt.reduction == loss.reduction
    for name, value in vars(loss).items():
        if not name.startswith("_") and name != "training":
            assert getattr(rebuilt, name) == value, name
    assert rebuilt.state_dict().keys() == loss.state_dict().keys()
    for name, buffer in loss.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[name], buffer), name


def test_torchmetrics_metrics_keep_their_arguments():
    metric = torchmetrics.classification.MulticlassF1Score(num_classes=4, average="macro", top_k=2,
                                                           ignore_index=0)
    entry = compile_args.serialize_objects([metric], "metric")[0]
    assert entry["__torchmetrics__"].endswith(".MulticlassF1Score")
    rebuilt = compile_args.deserialize_objects(entry, None)
    assert type(rebuilt) is type(metric)
    for name in ("num_classes", "average", "top_k", "ignore_index", "multidim_average"):
        assert getattr(rebuilt, name) == getattr(metric, name), name


def test_torch_optimizer_param_groups_come_back(tmp_path):
    torch.manual_seed(0)
    model = Net()
    optimizer = torch.optim.AdamW([{"params": model.hidden.parameters(), "lr": 1e-3,
                                    "weight_decay": 0.5},
                                   {"params": model.out.parameters()}], lr=1e-2, betas=(0.8, 0.9))
    model.compile(optimizer=optimizer, loss=nn.CrossEntropyLoss())
    model.fit(X, Y, batch_size=6, verbose=0, shuffle=False)
    model.save(tmp_path / "m.pt", include_optimizer=False)  # the groups come from the config
    restored = torchfit.load_model(tmp_path / "m.pt", model=Net())
    assert isinstance(restored.optimizer, torch.optim.AdamW)
    groups = restored.optimizer.param_groups
    assert [g["lr"] for g in groups] == [1e-3, 1e-2]
    assert [g["weight_decay"] for g in groups] == [0.5, 0.01]
    assert [len(g["params"]) for g in groups] == [2, 2]
    assert groups[0]["params"][0] is restored.hidden.weight
    assert groups[1]["betas"] == (0.8, 0.9)


def test_the_readme_quick_start_comes_back_compiled(tmp_path):
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer="adam", loss=nn.CrossEntropyLoss(), metrics=["accuracy"])
    model.fit(X, Y, batch_size=6, verbose=0)
    model.save(tmp_path / "m.pt")
    restored = torchfit.load_model(tmp_path / "m.pt", model=Net())
    assert restored.compiled
    assert restored.evaluate(X, Y, verbose=0) == model.evaluate(X, Y, verbose=0)


class FocalLoss(nn.Module):
    """A user's own loss module with a config."""

    def __init__(self, gamma=2.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, y_pred, y_true):
        logp = torch.log_softmax(y_pred, -1).gather(-1, y_true.long().view(-1, 1)).squeeze(-1)
        return (-(1 - logp.exp()) ** self.gamma * logp).mean()

    def get_config(self):
        return {"gamma": self.gamma}


def test_a_users_loss_class_comes_back_through_custom_objects(tmp_path):
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer="sgd", loss=FocalLoss(gamma=3.0))
    model.fit(X, Y, batch_size=6, verbose=0)
    model.save(tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"custom_objects=\{'FocalLoss': <the custom loss>\}"):
        torchfit.load_model(tmp_path / "m.pt", model=Net())
    restored = torchfit.load_model(tmp_path / "m.pt", model=Net(),
                                   custom_objects={"FocalLoss": FocalLoss})
    assert isinstance(restored.loss, FocalLoss) and restored.loss.gamma == 3.0
    assert restored.evaluate(X, Y, verbose=0) == model.evaluate(X, Y, verbose=0)


class PlainFocalLoss(nn.Module):
    """A user's loss module without get_config: its arguments are its attributes."""

    def __init__(self, gamma=2.0):
        super().__init__()
        self.gamma = gamma

    forward = FocalLoss.forward


class Opaque(nn.Module):
    """Arguments the instance does not keep: the file cannot know them."""

    def __init__(self, scale):
        super().__init__()
        self.factor = scale * 2

    def forward(self, y_pred, y_true):
        return self.factor * nn.functional.cross_entropy(y_pred, y_true.long())


def test_a_users_loss_arguments_are_never_guessed(tmp_path):
    torch.manual_seed(0)
    model = Net()
    model.compile(optimizer="sgd", loss=PlainFocalLoss(gamma=3.0))
    model.save(tmp_path / "a.pt")
    restored = torchfit.load_model(tmp_path / "a.pt", model=Net(),
                                   custom_objects={"PlainFocalLoss": PlainFocalLoss})
    assert restored.loss.gamma == 3.0
    model = Net()
    model.compile(optimizer="sgd", loss=Opaque(0.5))
    model.save(tmp_path / "b.pt")
    with pytest.raises(ValueError, match=r"Pass the instance itself: custom_objects=\{'Opaque'"):
        torchfit.load_model(tmp_path / "b.pt", model=Net(), custom_objects={"Opaque": Opaque})
    instance = Opaque(0.5)
    restored = torchfit.load_model(tmp_path / "b.pt", model=Net(), custom_objects={"Opaque": instance})
    assert restored.loss is instance
