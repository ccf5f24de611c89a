"""Torch loss functions in ``compile(loss=...)`` are called in torch order.

Every loss function of ``torch.nn.functional`` is covered: those of
``(input, target)`` train bit-identically to their ``nn`` module counterpart;
those that need more tensors are refused at ``compile`` with the reason.
"""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torchfit

ROWS, FEATURES, CLASSES = 24, 5, 3


def _x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(ROWS, FEATURES)).astype("float32")


def _binary_float(width=1):
    return np.random.default_rng(1).integers(0, 2, (ROWS, width)).astype("float32")


def _signs():
    return _binary_float() * 2 - 1


def _labels():
    return np.random.default_rng(2).integers(0, CLASSES, ROWS).astype("int64")


def _probabilities():
    raw = np.random.default_rng(3).uniform(0.1, 1.0, (ROWS, CLASSES)).astype("float32")
    return raw / raw.sum(axis=1, keepdims=True)


def _multilabel_indices():
    rows = np.full((ROWS, CLASSES), -1, dtype="int64")
    rows[:, 0] = _labels()
    return rows


def _counts():
    return np.random.default_rng(4).poisson(2.0, (ROWS, 1)).astype("float32")


def _regression():
    return np.random.default_rng(5).normal(size=(ROWS, 1)).astype("float32")


# name -> (nn module class, output width, output activation, targets)
TWO_TENSOR_LOSSES = {
    "binary_cross_entropy": (nn.BCELoss, 1, torch.sigmoid, _binary_float),
    "binary_cross_entropy_with_logits": (nn.BCEWithLogitsLoss, 1, None, _binary_float),
    "cross_entropy": (nn.CrossEntropyLoss, CLASSES, None, _labels),
    "nll_loss": (nn.NLLLoss, CLASSES, lambda t: torch.log_softmax(t, -1), _labels),
    "kl_div": (nn.KLDivLoss, CLASSES, lambda t: torch.log_softmax(t, -1), _probabilities),
    "mse_loss": (nn.MSELoss, 1, None, _regression),
    "l1_loss": (nn.L1Loss, 1, None, _regression),
    "smooth_l1_loss": (nn.SmoothL1Loss, 1, None, _regression),
    "huber_loss": (nn.HuberLoss, 1, None, _regression),
    "poisson_nll_loss": (nn.PoissonNLLLoss, 1, None, _counts),
    "hinge_embedding_loss": (nn.HingeEmbeddingLoss, 1, None, _signs),
    "soft_margin_loss": (nn.SoftMarginLoss, 1, None, _signs),
    "multi_margin_loss": (nn.MultiMarginLoss, CLASSES, None, _labels),
    "multilabel_margin_loss": (nn.MultiLabelMarginLoss, CLASSES, None, _multilabel_indices),
    "multilabel_soft_margin_loss": (nn.MultiLabelSoftMarginLoss, CLASSES, None,
                                    lambda: _binary_float(CLASSES)),
}
# Losses of three or more tensors: no compiled loss can feed them.
MULTI_TENSOR_LOSSES = ("cosine_embedding_loss", "ctc_loss", "gaussian_nll_loss",
                       "linear_cross_entropy", "margin_ranking_loss", "triplet_margin_loss",
                       "triplet_margin_with_distance_loss")


class Head(torchfit.KerasStyleModule, nn.Module):
    def __init__(self, width: int, activation=None) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(FEATURES, width)
        self.activation = activation

    def forward(self, x):
        out = self.linear(x)
        return out if self.activation is None else self.activation(out)


def _train(name: str, loss, sample_weight=None) -> dict:
    _, width, activation, targets = TWO_TENSOR_LOSSES[name]
    model = Head(width, activation)
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.1), loss=loss)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's "mean" reduction note
        history = model.fit(_x(), targets(), batch_size=8, epochs=2, shuffle=False, verbose=0,
                            sample_weight=sample_weight)
    return {"weights": {k: v.clone() for k, v in model.state_dict().items()},
            "loss": history.history["loss"]}


def test_every_functional_loss_is_classified():
    found = {n for n in dir(F) if not n.startswith("_") and ("loss" in n or "entropy" in n
                                                                or n == "kl_div")}
    assert found == set(TWO_TENSOR_LOSSES) | set(MULTI_TENSOR_LOSSES)


@pytest.mark.parametrize("name", sorted(TWO_TENSOR_LOSSES))
def test_functional_loss_trains_like_its_module(name):
    module_class = TWO_TENSOR_LOSSES[name][0]
    with_function = _train(name, getattr(F, name))
    with_module = _train(name, module_class())
    assert with_function["loss"] == with_module["loss"]
    for key, value in with_module["weights"].items():
        assert torch.equal(with_function["weights"][key], value), key


@pytest.mark.parametrize("name", ["binary_cross_entropy_with_logits", "mse_loss", "cross_entropy"])
def test_functional_loss_with_sample_weight_matches_module(name):
    weights = np.linspace(0.5, 2.0, ROWS).astype("float32")
    module_class = TWO_TENSOR_LOSSES[name][0]
    with_function = _train(name, getattr(F, name), sample_weight=weights)
    with_module = _train(name, module_class(), sample_weight=weights)
    assert with_function["loss"] == with_module["loss"]


def test_bce_with_logits_is_not_swapped():
    """The issue's case: Keras order would feed the labels as logits."""
    model = Head(1)
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                  loss=F.binary_cross_entropy_with_logits)
    y = _binary_float()
    result = model.evaluate(_x(), y, verbose=0)
    with torch.no_grad():
        expected = F.binary_cross_entropy_with_logits(model(torch.from_numpy(_x())),
                                                      torch.from_numpy(y))
    assert result == pytest.approx(float(expected), rel=1e-6)


def test_named_input_target_function_is_torch_order():
    calls = []

    def my_loss(input, target):
        calls.append((input.shape, target.dtype))
        return F.cross_entropy(input, target)

    model = Head(CLASSES)
    model.compile(optimizer="sgd", loss=my_loss)
    model.evaluate(_x(), _labels(), verbose=0)
    assert calls[0] == (torch.Size([ROWS, CLASSES]), torch.int64)


def test_keras_order_function_stays_keras_order():
    seen = []

    def keras_loss(y_true, y_pred):
        seen.append(y_true.dtype)
        return ((y_true - y_pred) ** 2).mean()

    model = Head(1)
    model.compile(optimizer="sgd", loss=keras_loss)
    model.evaluate(_x(), _regression(), verbose=0)
    assert seen and seen[0] == torch.float32
    result = model.evaluate(_x(), _regression(), verbose=0)
    with torch.no_grad():
        expected = F.mse_loss(model(torch.from_numpy(_x())), torch.from_numpy(_regression()))
    assert result == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("name", MULTI_TENSOR_LOSSES)
def test_multi_tensor_losses_are_refused_at_compile(name):
    model = Head(1)
    with pytest.raises(ValueError, match=r"Argument `loss`.*" + name):
        model.compile(optimizer="sgd", loss=getattr(F, name))
    assert not model.compiled


def test_multi_tensor_loss_refused_inside_a_dict():
    model = Head(1)
    with pytest.raises(ValueError, match="margin_ranking_loss"):
        model.compile(optimizer="sgd", loss={"out": F.margin_ranking_loss})


def test_sample_weight_with_a_function_without_reduction():
    def plain(input, target):
        return ((input - target) ** 2).mean()

    model = Head(1)
    model.compile(optimizer="sgd", loss=plain)
    with pytest.raises(ValueError, match=r"sample_weight.*reduction"):
        model.fit(_x(), _regression(), sample_weight=np.ones(ROWS, "float32"), verbose=0)


def test_functional_metric_is_torch_order_and_keeps_its_name():
    model = Head(1)
    model.compile(optimizer="sgd", loss="mse",
                  metrics=[F.binary_cross_entropy_with_logits, F.l1_loss])
    y = _binary_float()
    logs = model.evaluate(_x(), y, verbose=0, return_dict=True)
    with torch.no_grad():
        out = model(torch.from_numpy(_x()))
    target = torch.from_numpy(y)
    assert logs["binary_cross_entropy_with_logits"] == pytest.approx(
        float(F.binary_cross_entropy_with_logits(out, target)), rel=1e-6)
    assert logs["l1_loss"] == pytest.approx(float(F.l1_loss(out, target)), rel=1e-6)


def test_partial_of_a_functional_loss_is_torch_order():
    import functools

    smoothed = functools.partial(F.cross_entropy, label_smoothing=0.1)
    with_partial = _train("cross_entropy", smoothed)
    with_module = _train("cross_entropy", nn.CrossEntropyLoss(label_smoothing=0.1))
    assert with_partial["loss"] == with_module["loss"]
