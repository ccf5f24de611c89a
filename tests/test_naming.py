"""torchfit.naming: the one snake_case / default-name rule, as Keras spells it."""

import pytest

from torchfit import naming


@pytest.mark.parametrize("name, expected", [
    ("SparseTopKCategoricalAccuracy", "sparse_top_k_categorical_accuracy"),
    ("F1Score", "f1_score"),
    ("MSELoss", "mse_loss"),
    ("My2DLoss", "my2d_loss"),  # Keras: no break between a digit and a capital
    ("<lambda>", "lambda"),
    ("adam", "adam"),
])
def test_to_snake_case_matches_keras(name, expected):
    assert naming.to_snake_case(name) == expected


def test_object_name_prefers_the_name_attribute():
    class Named:
        name = "given"

    def MyMetric(y_true, y_pred):  # noqa: N802 (a class-like function name)
        return y_pred

    assert naming.object_name(Named()) == "given"
    assert naming.object_name(MyMetric) == "my_metric"
    assert naming.object_name(object()) == "object"


def test_auto_name_counts_per_mapping():
    counts, others = {}, {}
    assert [naming.auto_name("Adam", counts) for _ in range(3)] == ["adam", "adam_1", "adam_2"]
    assert naming.auto_name("Adam", others) == "adam"
    assert counts == {"adam": 3}
