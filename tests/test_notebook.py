"""Progress bars and ``summary()`` in a Jupyter notebook, run headless with nbclient."""

import json

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.slow  # starts a Jupyter kernel

WIDGET = "application/vnd.jupyter.widget-view+json"

CELLS = [
    # 0: a model and data
    """
import numpy as np, torch, torchfit
from torch import nn
torch.manual_seed(0)
x = np.random.RandomState(0).rand(64, 8).astype("float32")
y = x[:, :3].argmax(axis=1)
model = torchfit.keras_style(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)))
model.compile(optimizer="adam", loss=nn.CrossEntropyLoss(), metrics=["accuracy"])
""",
    # 1: verbose=1 in a kernel with ipywidgets: tqdm's notebook bar
    "history = model.fit(x, y, batch_size=16, epochs=2, verbose=1)",
    # 2: summary() after fit
    "model.summary()",
    # 3: no widgets available: tqdm's text bar, on stdout
    """
import tqdm.notebook
tqdm.notebook.IProgress = None
history = model.fit(x, y, batch_size=16, epochs=2, verbose=1)
""",
    # 4: verbose=2: one line an epoch, on stdout
    "history = model.fit(x, y, batch_size=16, epochs=2, verbose=2)",
]


@pytest.fixture(scope="module")
def executed():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c.strip()) for c in CELLS])
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     store_widget_state=True)
    client.execute()
    return notebook


def outputs(notebook, cell, kind):
    return [o for o in notebook.cells[cell].outputs if o.output_type == kind]


def stream(notebook, cell, name):
    return "".join(o.text for o in outputs(notebook, cell, "stream") if o.name == name)


def test_fit_shows_tqdm_notebook_widgets(executed):
    pytest.importorskip("ipywidgets")
    bars = [o for o in outputs(executed, 1, "display_data") if WIDGET in o.data]
    assert len(bars) == 2  # one bar an epoch
    labels = [o.data["text/plain"] for o in bars]
    assert "Epoch 1/2" in labels[0] and "Epoch 2/2" in labels[1]
    assert "Epoch" not in stream(executed, 1, "stdout") + stream(executed, 1, "stderr")
    state = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    texts = json.dumps(state)
    assert "4/4" in texts and "loss=" in texts and "accuracy=" in texts  # the bar's last refresh


def test_summary_prints_the_table_with_recorded_shapes(executed):
    text = stream(executed, 2, "stdout")
    assert text.startswith('Model: "Sequential"')
    assert "Output Shape" in text and "(None, 16)" in text and "(None, 3)" in text
    assert "Total params: 195" in text
    assert not stream(executed, 2, "stderr")


def test_without_widgets_the_text_bar_goes_to_stdout(executed):
    text = stream(executed, 3, "stdout")
    assert "Epoch 1/2" in text and "Epoch 2/2" in text and "4/4" in text and "loss=" in text
    assert "Epoch" not in stream(executed, 3, "stderr")
    assert not [o for o in outputs(executed, 3, "display_data") if WIDGET in o.data]


def test_verbose_2_prints_one_line_an_epoch_to_stdout(executed):
    lines = stream(executed, 4, "stdout").splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2"
    assert lines[1].startswith("4/4 - ") and "loss: " in lines[1] and "accuracy: " in lines[1]
    assert not stream(executed, 4, "stderr")
