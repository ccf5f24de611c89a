"""Issue 19's leftovers: a MultiOptimizer step that fails in a later
sub-optimizer writes nothing; ScheduleFreeAdamW weights files say which
weights they hold; TensorBoard's write_images and embeddings_freq."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import optimizers as O
from test_catalog_additions import _Net  # encoder = Linear(4, 3), head = Linear(3, 1)

RNG = np.random.default_rng(19)
X = RNG.random((16, 4)).astype("float32")
Y = RNG.random((16, 1)).astype("float32")


# ------------------------------------------------ MultiOptimizer: all or nothing
def _trained_multi(second):
    """A model whose encoder steps with Adam (first sub-optimizer) and head with
    ``second``, after one epoch (so both have state)."""
    torch.manual_seed(0)
    model = _Net()
    model.compile(optimizer=O.MultiOptimizer(O.OptimizerMap(
        second, {"encoder/.*": O.Adam(learning_rate=0.01)})), loss="mse")
    model.fit(X, Y, batch_size=8, epochs=1, verbose=0)
    return model


def _snapshot(model):
    return ([p.detach().clone() for p in model.parameters()],
            copy.deepcopy(model.optimizer.state_dict()))


def _assert_unchanged(model, snapshot):
    weights, state = snapshot
    assert all(torch.equal(a, p) for a, p in zip(weights, model.parameters()))
    now = model.optimizer.state_dict()
    assert now["iterations"] == state["iterations"]
    for before, after in zip(state["optimizers"], now["optimizers"]):
        assert before["state"].keys() == after["state"].keys()
        for key, entries in before["state"].items():
            for name, value in entries.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(after["state"][key][name]))
        assert [g["iterations"] for g in before["param_groups"]] == \
            [g["iterations"] for g in after["param_groups"]]


def _backward(model):
    model.optimizer.zero_grad()
    nn.functional.mse_loss(model(torch.tensor(X)), torch.tensor(Y)).backward()


class _Boom(Exception):
    pass


def _failing_schedule(step):
    raise _Boom("schedule failed")


def test_a_later_sub_optimizer_whose_schedule_fails_leaves_everything_unchanged():
    schedule = {"fail": False}

    def learning_rate(step):
        if schedule["fail"]:
            _failing_schedule(step)
        return 0.1

    model = _trained_multi(O.SGD(learning_rate=learning_rate, momentum=0.9))
    _backward(model)
    before = _snapshot(model)
    schedule["fail"] = True
    assert model.optimizer.optimizers[0].is_bound  # Adam plans (and would write) first
    with pytest.raises(_Boom):
        model.optimizer.step()
    _assert_unchanged(model, before)
    schedule["fail"] = False
    model.optimizer.step()  # and the same step then goes through, for both
    assert all(not torch.equal(a, p) for a, p in zip(before[0], model.parameters()))


def test_a_bad_learning_rate_written_into_a_later_sub_optimizer_leaves_everything_unchanged():
    model = _trained_multi(O.SGD(learning_rate=0.1))
    _backward(model)
    before = _snapshot(model)
    model.optimizer.optimizers[1].param_groups[0]["lr"] = float("nan")  # as a bad scheduler would
    with pytest.raises(ValueError, match="learning rate"):
        model.optimizer.step()
    _assert_unchanged(model, before)


def test_a_later_schedule_free_sub_optimizer_on_evaluation_weights_leaves_everything_unchanged():
    model = _trained_multi(O.ScheduleFreeAdamW(learning_rate=0.01))
    _backward(model)
    schedule_free = model.optimizer.optimizers[1]
    schedule_free.eval()
    before = _snapshot(model)
    with pytest.raises(RuntimeError, match="evaluation weights"):
        model.optimizer.step()
    _assert_unchanged(model, before)
    schedule_free.train()


def test_apply_with_no_gradient_for_a_later_sub_optimizer_leaves_everything_unchanged():
    model = _trained_multi(O.SGD(learning_rate=0.1))
    params = list(model.parameters())
    grads = [torch.ones_like(p) for p in params[:2]] + [None, None]  # the head has none
    before = _snapshot(model)
    with pytest.raises(ValueError, match="No gradients provided"):
        model.optimizer.apply(grads, params)
    _assert_unchanged(model, before)
    model.optimizer.apply([torch.ones_like(p) for p in params], params)
    assert model.optimizer.iterations == before[1]["iterations"] + 1



def test_sub_optimizers_step_through_their_step_hooks_and_lr_schedulers():
    """MultiOptimizer.step plans every sub-optimizer first but writes through each
    one's step(): its step hooks run and a torch LR scheduler sees it step."""
    head, encoder = O.SGD(learning_rate=0.1), O.Adam(learning_rate=0.01)
    model = _Net()
    model.compile(optimizer=O.MultiOptimizer(O.OptimizerMap(head, {"encoder/.*": encoder})),
                  loss="mse")
    calls = []
    for name, optimizer in (("head", head), ("encoder", encoder)):
        optimizer.register_step_pre_hook(lambda opt, a, k, n=name: calls.append(n + ":pre"))
        optimizer.register_step_post_hook(lambda opt, a, k, n=name: calls.append(n + ":post"))
    scheduler = torch.optim.lr_scheduler.StepLR(head, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        for _ in range(2):
            _backward(model)
            model.optimizer.step()
            scheduler.step()
    assert sorted(calls) == sorted(["head:pre", "head:post", "encoder:pre", "encoder:post"] * 2)
    assert head.param_groups[0]["lr"] == pytest.approx(0.025)

# --------------------------------------- ScheduleFreeAdamW: weights files say which
def _schedule_free_model(optimizer=None):
    torch.manual_seed(0)
    model = _Net()
    model.compile(optimizer=optimizer or O.ScheduleFreeAdamW(learning_rate=0.05), loss="mse")
    model.fit(X, Y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    return model


def _kind(path):
    state = torch.load(path, weights_only=True)
    return state._metadata[""].get("torchfit_weights")


def _weights(model):
    return [p.detach().clone() for p in model.parameters()]


def test_weights_files_say_which_weights_they_hold_and_stay_plain_state_dicts(tmp_path):
    model = _schedule_free_model()
    model.save_weights(tmp_path / "train.pt")
    model.optimizer.eval()
    model.save_weights(tmp_path / "eval.pt")
    x = _weights(model)
    model.optimizer.train()
    assert (_kind(tmp_path / "train.pt"), _kind(tmp_path / "eval.pt")) == ("train", "eval")
    plain = _Net()  # torch alone still reads them
    plain.load_state_dict(torch.load(tmp_path / "eval.pt", weights_only=True))
    assert all(torch.equal(a, p) for a, p in zip(x, plain.parameters()))
    checkpoint = torchfit.callbacks.ModelCheckpoint(str(tmp_path / "ckpt.pt"), save_weights_only=True)
    model.fit(X, Y, epochs=1, verbose=0, callbacks=[checkpoint], validation_data=(X, Y))
    assert _kind(tmp_path / "ckpt.pt") == "train"  # validation ran on x, the file holds y
    sgd = _Net()
    sgd.compile(optimizer="sgd", loss="mse")
    sgd.save_weights(tmp_path / "sgd.pt")
    assert _kind(tmp_path / "sgd.pt") is None  # one set of weights: nothing to say


def test_loading_training_weights_while_the_optimizer_holds_evaluation_weights(tmp_path):
    model = _schedule_free_model()
    model.fit(X, Y, epochs=1, verbose=0)
    y = _weights(model)
    model.save_weights(tmp_path / "train.pt")
    other = _schedule_free_model()
    other.optimizer.eval()
    other.load_weights(tmp_path / "train.pt")
    assert other.optimizer.holds_eval_weights  # the optimizer keeps the set it held
    other.optimizer.train()
    assert all(torch.equal(a, p) for a, p in zip(y, other.parameters()))  # not lost on train()


def test_loading_evaluation_weights_puts_them_where_they_belong(tmp_path):
    model = _schedule_free_model()
    model.optimizer.eval()
    x = _weights(model)
    model.save_weights(tmp_path / "eval.pt")
    model.optimizer.train()
    y = _weights(model)
    twin = _schedule_free_model()  # the same training state
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(1.0)  # other weights, same optimizer state
    twin.load_weights(tmp_path / "eval.pt")
    assert not twin.optimizer.holds_eval_weights
    for a, p in zip(y, twin.parameters()):  # y = (1 - beta_1) z + beta_1 x
        torch.testing.assert_close(p, a, rtol=1e-5, atol=1e-6)
    twin.optimizer.eval()  # x again, up to rounding (x -> y -> x)
    for a, p in zip(x, twin.parameters()):
        torch.testing.assert_close(p, a, rtol=1e-5, atol=1e-6)
    twin.optimizer.train()
    again = _schedule_free_model()
    again.optimizer.eval()
    again.load_weights(tmp_path / "eval.pt")  # also while it holds x: x is the file's
    assert again.optimizer.holds_eval_weights
    assert all(torch.equal(a, p) for a, p in zip(x, again.parameters()))
    fresh = _Net()  # no optimizer state: the weights as they are
    fresh.compile(optimizer=O.ScheduleFreeAdamW(), loss="mse")
    torchfit.load_model(str(tmp_path / "eval.pt"), model=fresh)
    assert all(torch.equal(a, p) for a, p in zip(x, fresh.parameters()))


def test_multi_optimizer_with_a_schedule_free_sub_optimizer_tags_and_loads(tmp_path):
    def multi():
        return O.MultiOptimizer(O.OptimizerMap(
            O.SGD(learning_rate=0.1), {"encoder/.*": O.ScheduleFreeAdamW(learning_rate=0.05)}))

    model = _schedule_free_model(multi())
    model.save_weights(tmp_path / "train.pt")
    y = _weights(model)
    other = _schedule_free_model(multi())
    other.optimizer.eval()
    other.save_weights(tmp_path / "eval.pt")
    assert (_kind(tmp_path / "train.pt"), _kind(tmp_path / "eval.pt")) == ("train", "eval")
    other.load_weights(tmp_path / "train.pt")
    other.optimizer.train()
    assert all(torch.equal(a, p) for a, p in zip(y, other.parameters()))


def test_a_file_naming_unknown_weights_is_refused_and_changes_nothing(tmp_path):
    model = _schedule_free_model()
    state = model.state_dict()
    state._metadata[""]["torchfit_weights"] = "average"
    torch.save(state, tmp_path / "odd.pt")
    before = _weights(model)
    with pytest.raises(ValueError, match="'average' weights; expected one of"):
        model.load_weights(tmp_path / "odd.pt")
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))


# ------------------------------------------- TensorBoard: images and embeddings
tensorboard = pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from torchfit.callbacks.tensorboard import KERAS_EMBEDDING_TENSOR_NAME, weight_image  # noqa: E402


class _Images(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.dense = nn.Linear(2, 1)

    def forward(self, x):
        return self.dense(self.conv(x).mean(dim=(2, 3)))


def _tags(folder, kind):
    events = EventAccumulator(str(folder), size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    return set(events.Tags()[kind])


def test_weight_images_follow_keras_rules_on_torch_layouts():
    linear = nn.Linear(4, 3)  # Keras's Dense kernel is its (4, 3) transpose
    image = weight_image(linear.weight)
    assert image.shape == (1, 3, 4, 1) and torch.equal(image[0, :, :, 0], linear.weight.detach())
    assert weight_image(nn.Linear(3, 4).weight).shape == (1, 3, 4, 1)  # wider than tall
    assert weight_image(torch.arange(5.0)).shape == (1, 5, 1, 1)  # a bias
    conv = nn.Conv2d(1, 2, 3)  # one image per output channel
    assert torch.equal(weight_image(conv.weight)[..., 0], conv.weight.detach()[:, 0])
    assert weight_image(torch.zeros(2, 2, 3, 5)) is None  # no colour channel: skipped, as Keras
    assert weight_image(torch.zeros(2, 2, 2, 2, 2)) is None


def test_write_images_logs_every_weight_as_images_next_to_its_histogram(tmp_path):
    torch.manual_seed(0)
    model = _Images()
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 1, 5, 5), "float32")
    callback = torchfit.callbacks.TensorBoard(tmp_path, histogram_freq=1, write_images=True)
    model.fit(x, np.ones((4, 1), "float32"), epochs=1, verbose=0, callbacks=[callback])
    names = ["conv.weight", "conv.bias", "dense.weight", "dense.bias"]
    # dense.bias has one value: no image of a scalar, as in Keras.
    assert _tags(tmp_path / "train", "images") == {f"{n}/image" for n in names[:3]}
    assert _tags(tmp_path / "train", "histograms") == {f"{n}/histogram" for n in names}


def test_non_finite_weights_do_not_stop_fit_and_still_get_histograms(tmp_path):
    model = _Images()
    model.compile(optimizer="sgd", loss="mse")
    with torch.no_grad():  # frozen, so that they stay as set here
        model.dense.weight.requires_grad_(False).fill_(float("nan"))
        model.conv.weight.requires_grad_(False)[0, 0, 0, 0] = float("inf")
    callback = torchfit.callbacks.TensorBoard(tmp_path, histogram_freq=1, write_images=True)
    model.fit(np.ones((4, 1, 5, 5), "float32"), np.ones((4, 1), "float32"), epochs=1, verbose=0,
              callbacks=[callback])
    events = EventAccumulator(str(tmp_path / "train"), size_guidance={"histograms": 0})
    events.Reload()
    assert events.Histograms("conv.weight/histogram")[0].histogram_value.num == 2 * 9 - 1
    assert events.Histograms("dense.weight/histogram")[0].histogram_value.num == 2


class _Tokens(torchfit.KerasStyleModule, nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.ModuleDict({"tokens": nn.Embedding(10, 4)})
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(self.encoder["tokens"](x.long()).mean(dim=1))


def test_embeddings_freq_writes_keras_projector_config_and_the_weights_each_epoch(tmp_path):
    torch.manual_seed(0)
    model = _Tokens()
    model.compile(optimizer="adam", loss="mse")
    callback = torchfit.callbacks.TensorBoard(tmp_path, embeddings_freq=2,
                                              embeddings_metadata={"tokens": "words.tsv"})
    x = RNG.integers(0, 10, (8, 5)).astype("int64")
    model.fit(x, np.ones((8, 1), "float32"), epochs=3, verbose=0, callbacks=[callback])
    config = (tmp_path / "projector_config.pbtxt").read_text().splitlines()
    assert config == ["embeddings {", f'  tensor_name: "{KERAS_EMBEDDING_TENSOR_NAME}"',
                      '  metadata_path: "words.tsv"', "}"]
    saved = sorted(p.name for p in (tmp_path / "train").glob("keras_embedding.ckpt-*"))
    assert saved == ["keras_embedding.ckpt-0.weights.pt", "keras_embedding.ckpt-2.weights.pt"]
    last = torch.load(tmp_path / "train" / saved[-1], weights_only=True)
    assert torch.equal(last["encoder.tokens.weight"], model.encoder["tokens"].weight.detach())
    every = torchfit.callbacks.TensorBoard(tmp_path / "all", embeddings_freq=1,
                                           embeddings_metadata="words.tsv")
    model.fit(x, np.ones((8, 1), "float32"), epochs=1, verbose=0, callbacks=[every])
    assert 'metadata_path: "words.tsv"' in (tmp_path / "all" / "projector_config.pbtxt").read_text()


def test_batch_steps_per_second_is_written_with_batch_logs(tmp_path):
    model = _Images()
    model.compile(optimizer="sgd", loss="mse")
    callback = torchfit.callbacks.TensorBoard(tmp_path, update_freq=2, write_steps_per_second=True)
    model.fit(np.ones((8, 1, 5, 5), "float32"), np.ones((8, 1), "float32"), batch_size=2,
              epochs=1, verbose=0, callbacks=[callback])
    events = EventAccumulator(str(tmp_path / "train"))
    events.Reload()
    assert [e.step for e in events.Scalars("batch_steps_per_second")] == [2, 4]
    assert all(e.value > 0 for e in events.Scalars("batch_steps_per_second"))
    assert "epoch_steps_per_second" in events.Tags()["scalars"]
