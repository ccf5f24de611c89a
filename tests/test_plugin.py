"""The pytest plugin ``torchfit.testing``: fixtures, assertion helpers, fast mode.

Plugin behaviour (registration, fixtures, markers, options) is checked by
running pytest inside pytest with ``pytester``; the helpers are also called
directly.
"""

import random
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import testing
from torchfit.testing import (
    FitLimits,
    assert_checkpoint_roundtrip,
    assert_deterministic,
    assert_fits,
    assert_overfits_batch,
    assert_state_dict_unchanged,
    build_tiny_model,
    limit_fit,
    make_classification_data,
    make_regression_data,
    seeded_rng,
)

pytest_plugins = ["pytester"]

# torch.optim's zero_grad imports torch._dynamo on first use. Imported inside an
# inline pytester run, it would be dropped from sys.modules afterwards and
# imported again by the next run, which torch refuses (its operator library
# registers once); imported here, it outlives every run.
import torch._dynamo  # noqa: E402,F401


def run_inner(pytester, source, *args):
    pytester.makepyfile(test_inner=source)
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:benchmark", "-p", "no:hypothesispytest", *args)


# ------------------------------------------------------------------ registration
def test_entry_point_registers_the_plugin():
    found = [ep for ep in entry_points(group="pytest11") if ep.name == "torchfit"]
    assert [ep.value for ep in found] == ["torchfit.testing"]


def test_plugin_is_active_in_a_fresh_pytest_process(pytester):
    pytester.makepyfile(test_fixtures_exist="""
        def test_it(tiny_model, tiny_classification_data, tiny_regression_data, seeded,
                    tmp_checkpoint_dir, torchfit_fit_limits, request):
            assert request.config.pluginmanager.has_plugin("torchfit")
            assert torchfit_fit_limits is None
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:benchmark")
    result.assert_outcomes(passed=1)


def test_plugin_can_be_disabled(pytester):
    result = run_inner(pytester, "def test_it(tiny_model):\n    pass\n", "-p", "no:torchfit")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'tiny_model' not found*"])


def test_help_lists_option_and_ini_values(pytester):
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines([
        "*--torchfit-fast*",
        "*torchfit_fast_max_epochs*",
        "*torchfit_fast_max_steps_per_epoch*",
    ])


def test_marker_is_registered(pytester):
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.torchfit_fast(max_epochs=1, max_steps_per_epoch=2)*"])


# ---------------------------------------------------------------------- fixtures
def test_data_fixtures(pytester):
    result = run_inner(pytester, """
        import numpy as np

        def test_classification(tiny_classification_data):
            x, y = tiny_classification_data
            assert x.shape == (64, 8) and x.dtype == np.float32
            assert y.shape == (64,) and y.dtype == np.int64
            assert set(np.unique(y)) == {0, 1, 2}
            assert tiny_classification_data.x is x

        def test_regression(tiny_regression_data):
            x, y = tiny_regression_data
            assert x.shape == (64, 8) and x.dtype == np.float32
            assert y.shape == (64, 1) and y.dtype == np.float32
    """)
    result.assert_outcomes(passed=2)


def test_data_is_seeded_and_leaves_global_rng_alone():
    state = np.random.get_state()
    first, second = make_classification_data(), make_classification_data()
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.y, second.y)
    assert not np.array_equal(make_classification_data(seed=1).x, first.x)
    reg = make_regression_data(samples=10, features=3, targets=2)
    assert reg.x.shape == (10, 3) and reg.y.shape == (10, 2)
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_tiny_model_fixture_is_a_factory(pytester):
    result = run_inner(pytester, """
        import torch, torchfit

        def test_factory(tiny_model, tiny_classification_data, tiny_regression_data):
            model = tiny_model()
            assert isinstance(model, torchfit.KerasStyleModule) and model.compiled
            x, y = tiny_classification_data
            assert model.predict(x, verbose=0).shape == (64, 3)
            logs = model.evaluate(x, y, verbose=0, return_dict=True)
            assert set(logs) == {"loss", "accuracy"}
            reg = tiny_model("regression", hidden=4)
            x, y = tiny_regression_data
            assert set(reg.evaluate(x, y, verbose=0, return_dict=True)) == {"loss", "mae"}
            plain = tiny_model(compiled=False, in_features=5, out_features=2)
            assert not plain.compiled and plain.predict(x[:, :5], verbose=0).shape == (64, 2)
    """)
    result.assert_outcomes(passed=1)


def test_tiny_model_is_seeded_without_moving_the_torch_rng():
    state = torch.get_rng_state()
    a, b, c = build_tiny_model(), build_tiny_model(), build_tiny_model(seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.hidden.weight, c.hidden.weight)


def test_tiny_model_compile_overrides():
    model = build_tiny_model(optimizer="sgd", metrics=None)
    x, y = make_classification_data()
    assert set(model.evaluate(x, y, verbose=0, return_dict=True)) == {"loss"}


@pytest.mark.parametrize("kwargs, error, words", [
    ({"task": "ranking"}, ValueError, ["`task`", "classification", "'ranking'"]),
    ({"hidden": 0}, ValueError, ["`hidden`", ">= 1", "0"]),
    ({"in_features": 2.5}, TypeError, ["`in_features`", "integer", "float"]),
    ({"compiled": "yes"}, TypeError, ["`compiled`", "True or False", "'yes'"]),
    ({"compiled": False, "loss": "mse"}, ValueError, ["['loss']", "compiled=True"]),
])
def test_tiny_model_rejects_bad_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        build_tiny_model(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_seeded_fixture_seeds_and_restores(pytester):
    result = run_inner(pytester, """
        import random
        import numpy as np
        import torch

        DRAWS, EXPECTED = [], []

        def draw():
            return (random.random(), float(np.random.rand()), float(torch.rand(())))

        def reseed():
            random.seed(5); np.random.seed(5); torch.manual_seed(5)

        def test_a_before():
            reseed()
            EXPECTED.append(draw())
            reseed()  # leave the streams where EXPECTED was drawn from

        def test_b_first(seeded):
            assert seeded == 0
            DRAWS.append(draw())

        def test_c_second(seeded):
            DRAWS.append(draw())
            assert DRAWS[0] == DRAWS[1]

        def test_d_restored():
            assert draw() == EXPECTED[0]  # the seeded tests left no trace
    """)
    result.assert_outcomes(passed=4)


def test_seeded_rng_restores_every_stream():
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    expected = (random.random(), np.random.rand(), torch.rand(()))
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    with seeded_rng(7) as seed:
        assert seed == 7
        inside = (random.random(), np.random.rand(), torch.rand(()))
    after = (random.random(), np.random.rand(), torch.rand(()))
    assert after[0] == expected[0] and after[1] == expected[1] and torch.equal(after[2], expected[2])
    with seeded_rng(7):
        again = (random.random(), np.random.rand(), torch.rand(()))
    assert inside[0] == again[0] and inside[1] == again[1] and torch.equal(inside[2], again[2])


def test_seeded_rng_rejects_bad_seed():
    with pytest.raises(TypeError, match=r"Argument `seed` of `seeded_rng\(\)` must be an integer >= 0"):
        with seeded_rng("0"):
            pass
    with pytest.raises(ValueError, match="Received: -1"):
        with seeded_rng(-1):
            pass


def test_tmp_checkpoint_dir(pytester):
    result = run_inner(pytester, """
        def test_dir(tmp_checkpoint_dir, tmp_path):
            assert tmp_checkpoint_dir.is_dir() and list(tmp_checkpoint_dir.iterdir()) == []
            assert tmp_checkpoint_dir.parent == tmp_path
    """)
    result.assert_outcomes(passed=1)


# ------------------------------------------------------------------- assert_fits
def test_assert_fits_passes_and_reports():
    x, y = make_classification_data()
    result = assert_fits(build_tiny_model(), x, y, steps=60, loss_drop=0.5)
    assert result.final_loss <= 0.5 * result.initial_loss
    assert len(result.history.epoch) == 60


def test_assert_fits_on_a_dataloader():
    x, y = make_regression_data()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=16)
    assert_fits(build_tiny_model("regression"), loader, steps=50, loss_drop=0.5)


def test_assert_fits_fails_when_nothing_learns():
    model = build_tiny_model(compiled=False)
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.0), loss="sparse_categorical_crossentropy")
    x, y = make_classification_data()
    with pytest.raises(AssertionError, match=r"assert_fits: the loss went from .* in 5 steps; expected a drop of at least 50%"):
        assert_fits(model, x, y, steps=5, loss_drop=0.5)


def test_assert_fits_handles_negative_losses():
    x, y = make_regression_data(targets=3)
    model = build_tiny_model("regression", out_features=3, loss="cosine_similarity", metrics=None)
    result = assert_fits(model, x, y, steps=50, loss_drop=0.1)
    assert result.final_loss < result.initial_loss


@pytest.mark.parametrize("call, error, words", [
    (lambda m, x, y: assert_fits(nn.Linear(8, 3), x, y), TypeError, ["`model`", "keras-style", "Linear"]),
    (lambda m, x, y: assert_fits(build_tiny_model(compiled=False), x, y), ValueError, ["`model`", "compiled"]),
    (lambda m, x, y: assert_fits(m, x, y, steps=0), ValueError, ["`steps`", "assert_fits()", ">= 1", "0"]),
    (lambda m, x, y: assert_fits(m, x, y, steps=True), TypeError, ["`steps`", "integer", "bool"]),
    (lambda m, x, y: assert_fits(m, x, y, loss_drop=1.5), ValueError, ["`loss_drop`", "[0, 1)", "1.5"]),
    (lambda m, x, y: assert_fits(m, x, y, loss_drop="half"), TypeError, ["`loss_drop`", "float", "str"]),
    (lambda m, x, y: assert_fits(m, x, y, batch_size=0), ValueError, ["`batch_size`", ">= 1"]),
    (lambda m, x, y: assert_fits(m, iter([(x, y)])), TypeError, ["`x`", "re-iterable", "iterator"]),
])
def test_assert_fits_validates_arguments(call, error, words):
    x, y = make_classification_data()
    with pytest.raises(error) as info:
        call(build_tiny_model(), x, y)
    for word in words:
        assert word in str(info.value)


# --------------------------------------------------------- assert_overfits_batch
def test_assert_overfits_batch_passes():
    x, y = make_classification_data(samples=16)
    result = assert_overfits_batch(build_tiny_model(), (x, y))
    assert result.final_loss <= 0.1 * result.initial_loss and 1 <= result.steps <= 300


def test_assert_overfits_batch_with_sample_weight():
    x, y = make_regression_data(samples=16)
    weights = np.ones(16, dtype=np.float32)
    assert_overfits_batch(build_tiny_model("regression"), [x, y, weights], loss_drop=0.8)


def test_assert_overfits_batch_fails_for_a_model_that_cannot_learn():
    model = build_tiny_model(compiled=False)
    model.compile(optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                  loss=nn.CrossEntropyLoss())
    x, y = make_classification_data(samples=16)
    with pytest.raises(AssertionError, match=r"did not memorise the batch.*in 20 steps.*max_steps=20"):
        assert_overfits_batch(model, (x, y), max_steps=20)


@pytest.mark.parametrize("batch, kwargs, error, words", [
    ("xy", {}, TypeError, ["`batch`", "(x, y)", "'xy'"]),
    ((1,), {}, ValueError, ["`batch`", "2 or 3", "length 1"]),
    (None, {"max_steps": 0}, ValueError, ["`max_steps`", ">= 1"]),
    (None, {"check_every": "10"}, TypeError, ["`check_every`", "integer", "str"]),
    (None, {"loss_drop": -0.1}, ValueError, ["`loss_drop`", "[0, 1)"]),
])
def test_assert_overfits_batch_validates_arguments(batch, kwargs, error, words):
    x, y = make_classification_data(samples=8)
    with pytest.raises(error) as info:
        assert_overfits_batch(build_tiny_model(), (x, y) if batch is None else batch, **kwargs)
    for word in words:
        assert word in str(info.value)


# ----------------------------------------------------------- assert_deterministic
def test_assert_deterministic_passes_for_seeded_training():
    x, y = make_classification_data()

    def train():
        model = build_tiny_model(seed=random.randrange(100))  # drawn from the seeded stream
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)  # shuffles with the torch RNG
        return model

    model = assert_deterministic(train, runs=3)
    assert isinstance(model, torchfit.KerasStyleModule)


def test_assert_deterministic_accepts_structures():
    assert_deterministic(lambda: {"w": torch.randn(3), "n": [np.random.rand(2), 1.5, None]})


def test_assert_deterministic_names_the_first_difference():
    counter = iter(range(10))

    def unseeded():
        model = build_tiny_model()
        with torch.no_grad():
            model.output.bias.add_(next(counter))
        return model

    with pytest.raises(AssertionError, match=r"run 2 differs from run 1 with seed=0: \['output.bias'\]: "
                                             r"3 of 3 values differ, max abs difference 1"):
        assert_deterministic(unseeded)


def test_assert_deterministic_validates_arguments():
    with pytest.raises(TypeError, match=r"Argument `fn` of `assert_deterministic\(\)` must be a callable"):
        assert_deterministic(42)
    with pytest.raises(ValueError, match=r"Argument `runs` .* >= 2. Received: 1"):
        assert_deterministic(lambda: torch.zeros(1), runs=1)
    with pytest.raises(TypeError, match="returned None"):
        assert_deterministic(lambda: None)
    with pytest.raises(TypeError, match="Received a value of type object"):
        assert_deterministic(lambda: object())


# ---------------------------------------------------- assert_checkpoint_roundtrip
def test_checkpoint_roundtrip_after_training(tmp_path):
    x, y = make_classification_data()
    model = build_tiny_model()
    model.fit(x, y, epochs=2, verbose=0)
    loaded = assert_checkpoint_roundtrip(model, x, directory=tmp_path)
    assert (tmp_path / "checkpoint.pt").exists()
    assert set(loaded) == {"model", "optimizer"} and loaded["optimizer"]["state"]


def test_checkpoint_roundtrip_plain_module_and_torch_optimizer():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(8, 4)).sum().backward()
    optimizer.step()
    loaded = assert_checkpoint_roundtrip(model, np.ones((3, 4), np.float32), optimizer=optimizer)
    assert "1.num_batches_tracked" in loaded["model"]


class Forgetful(nn.Linear):
    """Claims to load but keeps its own weights."""

    def _load_from_state_dict(self, *args, **kwargs):
        pass


def test_checkpoint_roundtrip_catches_a_load_that_loses_weights():
    with pytest.raises(AssertionError, match=r"reloaded copy differs: state_dict\['weight'\]"):
        assert_checkpoint_roundtrip(Forgetful(3, 2))


class Annotated(torch.optim.SGD):
    """Keeps a Python object in its state: not loadable with weights_only=True."""

    def step(self, closure=None):
        super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["note"] = Forgetful(1, 1)


def test_checkpoint_roundtrip_requires_weights_only_loading():
    model = nn.Linear(2, 1)
    optimizer = Annotated(model.parameters(), lr=0.1)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    with pytest.raises(AssertionError, match=r"cannot be loaded with torch.load\(weights_only=True\)"):
        assert_checkpoint_roundtrip(model, optimizer=optimizer)


def test_checkpoint_roundtrip_validates_arguments():
    with pytest.raises(TypeError, match=r"Argument `model` .* torch.nn.Module. Received: 'model'"):
        assert_checkpoint_roundtrip("model")
    with pytest.raises(TypeError, match=r"Argument `optimizer` .* torch.optim.Optimizer or None"):
        assert_checkpoint_roundtrip(nn.Linear(1, 1), optimizer="adam")
    with pytest.raises(TypeError, match=r"Argument `directory` .* path"):
        assert_checkpoint_roundtrip(nn.Linear(1, 1), directory=3)


# ---------------------------------------------------- assert_state_dict_unchanged
def test_state_dict_unchanged_context_manager_and_callable():
    x, y = make_classification_data()
    model = build_tiny_model()
    with assert_state_dict_unchanged(model):
        model.evaluate(x, y, verbose=0)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    predictions = assert_state_dict_unchanged(model, model.predict, x, verbose=0)
    assert predictions.shape == (64, 3)


def test_state_dict_unchanged_detects_changes():
    x, y = make_classification_data()
    model = build_tiny_model()
    with pytest.raises(AssertionError, match=r"state_dict changed: state_dict\['hidden.weight'\]: 128 of 128 values differ"):
        with assert_state_dict_unchanged(model):
            model.fit(x, y, verbose=0)
    with pytest.raises(AssertionError, match=r"keys differ .*only in the second: \['extra'\]"):
        assert_state_dict_unchanged(model, model.register_buffer, "extra", torch.zeros(1))
    bn = nn.BatchNorm1d(8)
    with pytest.raises(AssertionError, match="running_mean"):
        assert_state_dict_unchanged(bn, bn, torch.randn(4, 8))  # train mode updates running stats


def test_state_dict_unchanged_lets_exceptions_through():
    model = build_tiny_model()
    with pytest.raises(KeyError):
        with assert_state_dict_unchanged(model):
            with torch.no_grad():
                model.output.bias.add_(1)
            raise KeyError("boom")


def test_state_dict_unchanged_validates_arguments():
    with pytest.raises(TypeError, match=r"Argument `model` of `assert_state_dict_unchanged\(\)`"):
        assert_state_dict_unchanged([1, 2])
    with pytest.raises(TypeError, match=r"Argument `fn` .* callable or None"):
        assert_state_dict_unchanged(nn.Linear(1, 1), 5)
    with pytest.raises(TypeError, match="without `fn`"):
        assert_state_dict_unchanged(nn.Linear(1, 1), None, 1)


# -------------------------------------------------------------------- fast mode
FAST_TESTS = """
    import warnings
    import pytest
    from torchfit.testing import assert_fits

    def fit_summary(tiny_model, data, **kwargs):
        x, y = data
        history = tiny_model().fit(x, y, verbose=0, **kwargs)
        return len(history.epoch), history.params["steps"]

    def test_plain(tiny_model, tiny_classification_data):
        assert fit_summary(tiny_model, tiny_classification_data, epochs=4, batch_size=16) == (4, 4)

    @pytest.mark.torchfit_fast
    def test_marked(tiny_model, tiny_classification_data, torchfit_fit_limits):
        assert torchfit_fit_limits.max_epochs == 1
        assert fit_summary(tiny_model, tiny_classification_data, epochs=4, batch_size=16) == (1, 2)

    @pytest.mark.torchfit_fast(max_epochs=3, max_steps_per_epoch=1)
    def test_marked_with_limits(tiny_model, tiny_classification_data):
        assert fit_summary(tiny_model, tiny_classification_data, epochs=5, initial_epoch=1,
                           steps_per_epoch=3, batch_size=16) == (3, 1)

    @pytest.mark.torchfit_fast(max_epochs=None, max_steps_per_epoch=None)
    def test_opted_out(tiny_model, tiny_classification_data, torchfit_fit_limits):
        assert torchfit_fit_limits is None
        assert fit_summary(tiny_model, tiny_classification_data, epochs=2, batch_size=16) == (2, 4)

    @pytest.mark.torchfit_fast
    def test_short_data_does_not_warn(tiny_model, tiny_classification_data):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            x, y = tiny_classification_data
            history = tiny_model().fit(x, y, batch_size=64, epochs=3, validation_data=(x, y), verbose=0)
        assert history.epoch == [0] and "val_loss" in history.history

    @pytest.mark.torchfit_fast
    def test_helpers_are_not_capped(tiny_model, tiny_classification_data):
        x, y = tiny_classification_data
        assert len(assert_fits(tiny_model(), x, y, steps=30, loss_drop=0.2).history.epoch) == 30

    @pytest.mark.torchfit_fast
    def test_positional_arguments(tiny_model, tiny_classification_data):
        x, y = tiny_classification_data
        assert len(tiny_model().fit(x, y, 16, 6, 0).epoch) == 1
"""


def test_fast_marker(pytester):
    result = run_inner(pytester, FAST_TESTS)
    result.assert_outcomes(passed=7)


def test_fast_option_caps_every_test(pytester):
    result = run_inner(pytester, FAST_TESTS, "--torchfit-fast", "-rA")
    result.assert_outcomes(passed=6, failed=1)
    result.stdout.fnmatch_lines(["torchfit: fast mode, fit() capped at max_epochs=1, max_steps_per_epoch=2",
                                 "FAILED test_inner.py::test_plain*"])


def test_fast_ini_options(pytester):
    pytester.makeini("[pytest]\ntorchfit_fast_max_epochs = 2\ntorchfit_fast_max_steps_per_epoch = none\n")
    result = run_inner(pytester, """
        def test_it(tiny_model, tiny_classification_data, torchfit_fit_limits):
            x, y = tiny_classification_data
            history = tiny_model().fit(x, y, epochs=9, batch_size=16, verbose=0)
            assert (len(history.epoch), history.params["steps"]) == (2, 4)
            assert torchfit_fit_limits.max_steps_per_epoch is None
    """, "--torchfit-fast")
    result.assert_outcomes(passed=1)


def test_fast_ini_option_must_be_a_positive_integer(pytester):
    pytester.makeini("[pytest]\ntorchfit_fast_max_epochs = zero\n")
    result = run_inner(pytester, "def test_it():\n    pass\n")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option `torchfit_fast_max_epochs` must be an integer >= 1 or 'none'*"])


def test_fast_marker_rejects_bad_arguments(pytester):
    result = run_inner(pytester, """
        import pytest

        @pytest.mark.torchfit_fast(3)
        def test_positional():
            pass

        @pytest.mark.torchfit_fast(epochs=3)
        def test_unknown():
            pass

        @pytest.mark.torchfit_fast(max_epochs=0)
        def test_zero():
            pass
    """)
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines([
        "*TypeError: Marker `torchfit_fast` takes keyword arguments only*",
        "*TypeError: Marker `torchfit_fast` got unknown arguments ?'epochs'?*",
        "*ValueError: Argument `max_epochs` of `FitLimits()` must be an integer >= 1 or None. Received: 0.*",
    ])


def test_limit_fit_restores_fit_and_nests():
    original = torchfit.KerasStyleModule.__dict__["fit"]
    x, y = make_classification_data()
    with limit_fit(max_epochs=3, max_steps_per_epoch=None) as outer:
        assert outer == FitLimits(3, None)
        assert torchfit.KerasStyleModule.__dict__["fit"] is not original
        with limit_fit(max_epochs=5, max_steps_per_epoch=1) as inner:
            assert inner == FitLimits(3, 1)
            history = build_tiny_model().fit(x, y, epochs=10, verbose=0)
            assert (len(history.epoch), history.params["steps"]) == (3, 1)
        history = build_tiny_model().fit(x, y, epochs=10, verbose=0)
        assert (len(history.epoch), history.params["steps"]) == (3, 2)
    assert torchfit.KerasStyleModule.__dict__["fit"] is original
    assert len(build_tiny_model().fit(x, y, epochs=4, verbose=0).epoch) == 4


def test_limit_fit_covers_keras_style_modules_and_leaves_bad_calls_to_fit():
    model = torchfit.keras_style(nn.Linear(8, 3))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x, y = make_classification_data()
    with limit_fit():
        assert len(model.fit(x, y, epochs=7, verbose=0).epoch) == 1
        with pytest.raises(ValueError, match="`epochs`"):
            model.fit(x, y, epochs=-1, verbose=0)
        with pytest.raises(TypeError):
            model.fit(x, y, not_an_argument=1)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"max_epochs": 0}, ValueError, ["`max_epochs`", ">= 1 or None", "0"]),
    ({"max_steps_per_epoch": 1.5}, TypeError, ["`max_steps_per_epoch`", "integer", "float"]),
])
def test_limit_fit_validates_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        with limit_fit(**kwargs):
            pass
    for word in words:
        assert word in str(info.value)
    assert torchfit.KerasStyleModule.__dict__["fit"].__name__ == "fit"
    assert testing._patch_depth == 0


def test_public_objects_have_docstrings():
    from torchfit.testing import pytest_plugin

    for name in testing.__all__:
        assert getattr(testing, name).__doc__, name
    for name in ("tiny_classification_data", "tiny_regression_data", "tiny_model", "seeded",
                 "tmp_checkpoint_dir", "torchfit_fit_limits"):
        assert getattr(pytest_plugin, name).__doc__, name


def test_helpers_import_without_pytest_and_are_reachable_from_torchfit():
    code = ("import sys, torchfit\n"
            "assert 'pytest' not in sys.modules, 'pytest imported'\n"
            "with torchfit.testing.limit_fit(max_epochs=1):\n"
            "    torchfit.testing.assert_fits(torchfit.testing.build_tiny_model(),\n"
            "                                 *torchfit.testing.make_classification_data(), steps=20,\n"
            "                                 loss_drop=0.1)\n"
            "assert 'pytest' not in sys.modules, 'pytest imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_plugin_module_loads_with_autoload_disabled(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_fixture="def test_it(tiny_model, seeded):\n    assert seeded == 0\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "torchfit.testing.pytest_plugin")
    result.assert_outcomes(passed=1)
