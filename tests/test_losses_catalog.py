"""CTC, Circle and CategoricalGeneralizedCrossEntropy, differential against
Keras 3 (torch backend): every reduction, with and without sample weights,
functions and classes, gradients, configs, ``get()`` and validation."""

import numpy as np
import pytest
import torch

from torchfit import losses as L

keras = pytest.importorskip("keras")

RTOL, ATOL = 1e-5, 1e-5
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", None, "none"]


def _ctc_data(seed, batch=4, time=12, classes=6, max_len=5):
    rng = np.random.default_rng(seed)
    y_true = np.zeros((batch, max_len), dtype="int32")
    for i in range(batch):
        n = rng.integers(1, max_len + 1)
        y_true[i, :n] = rng.integers(1, classes, size=n)
    y_pred = rng.normal(size=(batch, time, classes)).astype("float32")
    return y_true, y_pred


def _circle_data(seed, batch=8, dim=5):
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(batch, dim)).astype("float32")
    emb /= np.linalg.norm(emb, axis=-1, keepdims=True)
    labels = rng.integers(0, 3, size=(batch,))
    labels[-1] = 7  # a label seen once: no positive pair, loss 0, masked out
    return labels.astype("int32"), emb


def _gce_data(seed, shape=(10, 4)):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=shape)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, shape[-1], size=shape[:-1])
    return labels.astype("int32"), probs.astype("float32")


DATA = {
    "CTC": (_ctc_data, [{}]),
    "Circle": (_circle_data, [{}, {"gamma": 30.0, "margin": 0.25}, {"remove_diagonal": False}]),
    "CategoricalGeneralizedCrossEntropy": (_gce_data, [{}, {"q": 0.2}, {"q": 0.9}]),
}
FUNCTIONS = {
    "CTC": "ctc",
    "Circle": "circle",
    "CategoricalGeneralizedCrossEntropy": "categorical_generalized_cross_entropy",
}
CASES = [(name, kwargs) for name, (_, variants) in DATA.items() for kwargs in variants]


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else keras.ops.convert_to_numpy(x)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_class_matches_keras(name, kwargs, reduction, weighted):
    y_true, y_pred = DATA[name][0](seed=len(kwargs))
    sw = None
    if weighted:
        sw = np.random.default_rng(5).uniform(0.0, 2.0, size=(y_true.shape[0],)).astype("float32")
    ours = getattr(L, name)(reduction=reduction, **kwargs)(y_true, y_pred, sample_weight=sw)
    theirs = getattr(keras.losses, name)(reduction=reduction, **kwargs)(y_true, y_pred, sample_weight=sw)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(_np(ours), _np(theirs), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", list(DATA))
def test_function_matches_keras(name):
    y_true, y_pred = DATA[name][0](seed=11)
    kwargs = {"q": 0.3} if name == "CategoricalGeneralizedCrossEntropy" else {}
    fn = FUNCTIONS[name]
    ours = getattr(L, fn)(torch.from_numpy(y_true), torch.from_numpy(y_pred), **kwargs)
    theirs = getattr(keras.losses, fn)(torch.from_numpy(y_true), torch.from_numpy(y_pred), **kwargs)
    np.testing.assert_allclose(_np(ours), _np(theirs), rtol=RTOL, atol=ATOL)


def test_circle_with_reference_set_matches_keras():
    labels, emb = _circle_data(seed=2)
    ref_labels, ref_emb = _circle_data(seed=3, batch=6)
    ours = L.circle(labels, emb, ref_labels=ref_labels, ref_embeddings=ref_emb, remove_diagonal=False)
    theirs = keras.losses.circle(torch.from_numpy(labels), torch.from_numpy(emb),
                                 ref_labels=torch.from_numpy(ref_labels),
                                 ref_embeddings=torch.from_numpy(ref_emb), remove_diagonal=False)
    np.testing.assert_allclose(_np(ours), _np(theirs), rtol=RTOL, atol=ATOL)
    # The zero-loss sample is masked out of the mean, as in Keras.
    assert ours._keras_mask.dtype == torch.bool


def test_gce_labels_with_trailing_axis():
    labels, probs = _gce_data(seed=4)
    flat = L.CategoricalGeneralizedCrossEntropy()(labels, probs)
    column = L.CategoricalGeneralizedCrossEntropy()(labels[:, None], probs)
    torch.testing.assert_close(flat, column)


def test_ctc_keras_data_as_float_labels_and_lists():
    y_true, y_pred = _ctc_data(seed=6)
    expected = keras.losses.CTC()(y_true, y_pred)
    # Loss.__call__ casts y_true to the float compute dtype; labels survive.
    np.testing.assert_allclose(_np(L.CTC()(y_true.astype("float32"), y_pred)), _np(expected), rtol=RTOL)
    np.testing.assert_allclose(_np(L.CTC()(y_true.tolist(), torch.from_numpy(y_pred))), _np(expected), rtol=RTOL)


@pytest.mark.parametrize("name", list(DATA))
def test_gradients_match_keras(name):
    y_true, y_pred = DATA[name][0](seed=9)
    ours_in = torch.tensor(y_pred, requires_grad=True)
    L.get(name)(y_true, ours_in).backward()
    theirs_in = torch.tensor(y_pred, requires_grad=True)
    getattr(keras.losses, name)()(y_true, theirs_in).backward()
    assert torch.isfinite(ours_in.grad).all()
    np.testing.assert_allclose(_np(ours_in.grad), _np(theirs_in.grad), rtol=1e-4, atol=1e-5)


def test_fit_with_ctc_matches_keras():
    import sys

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    import torchfit

    keras.utils.clear_session()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 10, 3)).astype("float32")
    y = np.zeros((16, 4), dtype="int32")
    for i in range(16):
        n = rng.integers(1, 5)
        y[i, :n] = rng.integers(1, 5, size=n)

    class Net(torchfit.KerasStyleModule, torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = torch.nn.Linear(3, 5)

        def forward(self, inputs):
            return self.dense(inputs)

    torch.manual_seed(0)
    tmodel = Net()
    kmodel = keras.Sequential([keras.Input((10, 3)), keras.layers.Dense(5)])
    kmodel.layers[0].set_weights([tmodel.dense.weight.detach().numpy().T.copy(),
                                  tmodel.dense.bias.detach().numpy().copy()])
    tmodel.compile(optimizer=torchfit.optimizers.Adam(learning_rate=0.05), loss=L.CTC())
    kmodel.compile(optimizer=keras.optimizers.Adam(learning_rate=0.05), loss=keras.losses.CTC())
    fit = dict(x=x, y=y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    t_hist, k_hist = tmodel.fit(**fit), kmodel.fit(**fit)
    np.testing.assert_allclose(t_hist.history["loss"], k_hist.history["loss"], rtol=1e-4)
    tmodel.compile(optimizer="sgd", loss="ctc")
    assert isinstance(tmodel.evaluate(x, y, verbose=0), float)


# --------------------------------------------------------------------------
# get(), configs, validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DATA))
def test_get_and_config_match_keras(name):
    ours = L.get(name)
    assert type(ours) is getattr(L, name)
    config = ours.get_config()
    keras_loss = getattr(keras.losses, name)()
    assert config == keras_loss.get_config()
    assert L.deserialize(L.serialize(ours)).get_config() == config
    assert type(L.get(keras.losses.serialize(keras_loss))) is type(ours)
    fn = FUNCTIONS[name]
    assert L.get(fn) is getattr(L, fn)
    if name != "CategoricalGeneralizedCrossEntropy":  # Keras's get() lacks this one
        assert keras.losses.get(fn).__name__ == fn
        assert type(keras.losses.get(name)) is type(keras_loss)


@pytest.mark.parametrize(
    "factory,exc,fragments",
    [
        (lambda: L.CategoricalGeneralizedCrossEntropy(q=1.0), ValueError, ["`q`", "(0.0, 1.0)", "q=1.0"]),
        (lambda: L.CategoricalGeneralizedCrossEntropy(q=0), ValueError, ["`q`", "q=0"]),
        (lambda: L.CategoricalGeneralizedCrossEntropy(q="half"), TypeError, ["`q`", "'half'"]),
        (lambda: L.Circle(gamma="big"), TypeError, ["`gamma`", "'big'"]),
        (lambda: L.Circle(margin=None), TypeError, ["`margin`"]),
        (lambda: L.Circle(remove_diagonal="no"), TypeError, ["`remove_diagonal`", "bool"]),
        (lambda: L.CTC(reduction="avg"), ValueError, ["`reduction`", "'avg'"]),
        (lambda: L.ctc(np.zeros((2, 3, 4)), np.zeros((2, 3, 4))), ValueError, ["y_true", "2-D", "(2, 3, 4)"]),
        (lambda: L.ctc(np.zeros((2, 3)), np.zeros((2, 3))), ValueError, ["y_pred", "3-D", "(2, 3)"]),
        (lambda: L.ctc(np.zeros((3, 3)), np.zeros((2, 5, 4))), ValueError, ["batch size", "(3, 3)"]),
        (lambda: L.circle(np.zeros(4), np.zeros((4, 2, 2))), ValueError, ["y_pred", "2-D", "(4, 2, 2)"]),
    ],
)
def test_validation(factory, exc, fragments):
    with pytest.raises(exc) as info:
        factory()
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))
