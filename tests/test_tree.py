"""The one walker over nested structures (``torchfit.tree``): its rules, checked
against ``keras.tree``, and the callers that walk structures through it."""

import collections
import typing

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torchfit import tree

Pair = collections.namedtuple("Pair", ["b", "a"])


class Typed(typing.NamedTuple):
    first: typing.Any
    second: typing.Any


# ------------------------------------------------------------------ the rules
def test_namedtuples_are_structures_rebuilt_as_their_type():
    value = Pair(b=torch.ones(1), a=[Typed(1, None), 2])
    assert tree.is_nested(value) and tree.is_namedtuple(value)
    assert not tree.is_namedtuple((1, 2))
    assert tree.flatten(value)[1:] == [1, None, 2]
    mapped = tree.map_structure(lambda leaf: "x" if leaf is None else leaf, value)
    assert type(mapped) is Pair and type(mapped.a[0]) is Typed
    assert mapped.a == [Typed(1, "x"), 2]
    packed = tree.pack_sequence_as(value, list(range(4)))
    assert packed == Pair(b=0, a=[Typed(1, 2), 3]) and type(packed.a[0]) is Typed


def test_dicts_flatten_by_sorted_key_and_keep_the_callers_order_and_type():
    value = {"z": 1, "a": 2, "m": {"y": 3, "b": 4}}
    assert tree.flatten(value) == [2, 4, 3, 1]
    mapped = tree.map_structure(lambda leaf: leaf * 10, value)
    assert list(mapped) == ["z", "a", "m"] and list(mapped["m"]) == ["y", "b"]
    assert mapped == {"z": 10, "a": 20, "m": {"y": 30, "b": 40}}
    packed = tree.pack_sequence_as(value, ["A", "B", "Y", "Z"])
    assert list(packed) == ["z", "a", "m"] and packed == {"z": "Z", "a": "A", "m": {"y": "Y", "b": "B"}}
    ordered = collections.OrderedDict([("z", 1), ("a", 2)])
    assert type(tree.map_structure(lambda leaf: leaf, ordered)) is collections.OrderedDict
    assert tree.flatten(ordered) == [2, 1]


def test_none_is_a_leaf_everywhere():
    value = (None, [None, 1], {"k": None})
    assert tree.flatten(value) == [None, None, 1, None]
    seen = []
    assert tree.map_structure(lambda leaf: seen.append(leaf) or leaf, value) == value
    assert seen.count(None) == 3
    assert tree.pack_sequence_as(value, [1, 2, 3, 4]) == (1, [2, 3], {"k": 4})
    assert tree.first_leaf(value) == 1 and tree.first_leaf([None]) is None


def test_several_structures_and_mismatches():
    assert tree.map_structure(lambda a, b: a + b, {"a": (1, 2)}, {"a": [10, 20]}) == {"a": (11, 22)}
    assert tree.map_structure(lambda a, b: (a, b), Pair(1, 2), (3, 4)) == Pair((1, 3), (2, 4))
    with pytest.raises(ValueError, match="sequence of length 2"):
        tree.map_structure(lambda a, b: a, (1, 2), (1,))
    with pytest.raises(ValueError, match="dict with keys"):
        tree.map_structure(lambda a, b: a, {"a": 1}, {"b": 1})
    with pytest.raises(ValueError, match="Cannot pack 1 values into a structure with 2 leaves"):
        tree.pack_sequence_as((1, 2), [1])


def _structures():
    leaves = st.one_of(st.none(), st.integers(0, 9))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.builds(Pair, inner, inner),
        # Keys inserted in sorted order: keras.tree documents sorted keys, but its
        # torch implementation sorts only the outermost dict.
        st.dictionaries(st.sampled_from("abcde"), inner, max_size=3).map(
            lambda d: {k: d[k] for k in sorted(d)}),
    ), max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(_structures())
def test_same_rules_as_keras_tree(structure):
    keras_tree = pytest.importorskip("keras").tree
    assert tree.flatten(structure) == keras_tree.flatten(structure)
    ours = tree.map_structure(lambda leaf: (leaf,), structure)
    theirs = keras_tree.map_structure(lambda leaf: (leaf,), structure)
    assert ours == theirs and tree.flatten(ours) == keras_tree.flatten(theirs)
    flat = list(range(len(tree.flatten(structure))))
    assert tree.pack_sequence_as(structure, flat) == keras_tree.pack_sequence_as(structure, flat)


# ------------------------------------------------------- the callers, through it
def test_batches_with_namedtuples_are_converted_like_tuples():
    from torchfit.batch import move_to
    from torchfit.data.adapter import to_tensors
    from torchfit.data.generator import batch_structure

    batch = (Pair(b=np.ones((2, 3)), a={"z": np.zeros(2, dtype=np.int64), "a": None}), None, None)
    tensors = to_tensors(batch)
    assert type(tensors[0]) is Pair and isinstance(tensors[0].b, torch.Tensor)
    assert list(tensors[0].a) == ["z", "a"] and tensors[0].a["a"] is None
    placed = move_to(batch, torch.device("cpu"), torch.float16)
    assert type(placed[0]) is Pair and placed[0].b.dtype == torch.float16
    assert placed[0].a["z"].dtype == torch.int64  # only floating leaves are cast
    assert batch_structure(batch) == (Pair(b="array", a={"z": "array", "a": None}), None, None)


def test_a_generator_of_namedtuple_inputs_trains_and_a_namedtuple_batch_is_refused():
    import torchfit
    from torch import nn

    class TwoInputs(torchfit.KerasStyleModule, nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(3, 1)

        def forward(self, b, a):  # a tuple x is passed as positional arguments
            return self.dense(a + b)

    model = TwoInputs()
    model.compile("sgd", loss="mse")
    x = Pair(b=np.ones((4, 3), "float32"), a=np.zeros((4, 3), "float32"))
    history = model.fit(((x,) + (np.ones((4, 1), "float32"),) for _ in range(2)),
                        shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 1
    with pytest.raises(ValueError, match="namedtuple is ambiguous"):
        model.fit(iter([Pair(b=x.b, a=np.ones((4, 1), "float32"))]), shuffle=False, verbose=0)


def test_tf_elements_with_nested_namedtuples_become_tensors():
    from torchfit.data.tf_data import _to_torch

    class FakeTensor:
        def __init__(self, array):
            self.array = array

        def numpy(self):
            return self.array

    element = (Pair(b=FakeTensor(np.ones(2)), a=None), {"y": FakeTensor(np.zeros(2))})
    converted = _to_torch(element)
    assert type(converted[0]) is Pair and converted[0].a is None
    assert torch.equal(converted[0].b, torch.ones(2, dtype=torch.float64))
    assert torch.equal(converted[1]["y"], torch.zeros(2, dtype=torch.float64))


def test_testing_snapshots_walk_like_every_other_caller():
    from torchfit.testing.compare import _snapshot

    weights = torch.ones(2)
    snapshot = _snapshot(Pair(b=weights, a={"m": torch.nn.Linear(2, 1), "n": None}), "value")
    assert type(snapshot) is Pair and snapshot.a["n"] is None
    assert snapshot.b is not weights and torch.equal(snapshot.b, weights)
    assert set(snapshot.a["m"]) == {"weight", "bias"}
    with pytest.raises(TypeError, match="Received a value of type object"):
        _snapshot([object()], "value")
