"""The README and the Sphinx docs: structure, runnable snippets, a warning-free build."""

import configparser
import os
import re
import runpy
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import torchfit

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


# ------------------------------------------------- every snippet runs as written
NOT_RUN = "# not run:"  # a block's first line: the docs test skips it, for the reason given
SEEDS = (0, 1, 2, 3, 4)  # the pytest snippets assert learning: each must pass with every seed
DOCUMENTS = ["README.md"] + sorted(f"docs/{p.name}" for p in DOCS.glob("*.rst"))


def rst_python_blocks(text):
    """The bodies of ``.. code-block:: python`` directives, dedented."""
    blocks = []
    for match in re.finditer(r"^( *)\.\. code-block:: python\n((?:\1 +:.*\n)*)\n"
                             r"((?:(?:\1 +\S.*)?\n)+)", text, flags=re.M):
        blocks.append(textwrap.dedent(match.group(3)).strip("\n") + "\n")
    return blocks


def snippets(document):
    """``(index, code)`` of the document's python blocks, skipped ones excluded."""
    text = (ROOT / document).read_text()
    blocks = python_blocks(text) if document.endswith(".md") else rst_python_blocks(text)
    found = []
    for index, code in enumerate(blocks):
        if code.startswith(NOT_RUN):
            reason = code.splitlines()[0][len(NOT_RUN):].strip()
            assert reason, f"{document} block {index}: `{NOT_RUN}` needs a reason"
            continue
        found.append((index, code))
    return found


def is_pytest_snippet(code):
    return re.search(r"^def test_", code, flags=re.M) is not None


RUN_BLOCKS = """
import sys
for name, code in BLOCKS:
    exec(compile(code, name, "exec"), NAMESPACE)
"""


def subprocess_env():
    env = dict(os.environ, MPLBACKEND="Agg", KERAS_BACKEND="torch")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.mark.parametrize("document", DOCUMENTS)
def test_snippets_run_in_order_as_a_reader_would(document, tmp_path):
    """A document's plain snippets run in one namespace, in order (later ones may use
    names from earlier ones), in a fresh process with a scratch working directory."""
    blocks = [(f"{document} block {index}", code) for index, code in snippets(document)
              if not is_pytest_snippet(code)]
    if not blocks:
        pytest.skip(f"{document} has no plain python snippets")
    script = tmp_path / "run_snippets.py"
    script.write_text(f"BLOCKS = {blocks!r}\nNAMESPACE = {{'__name__': '__main__'}}\n" + RUN_BLOCKS)
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run([sys.executable, str(script)], cwd=work, capture_output=True, text=True,
                            env=subprocess_env(), timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]


SEEDED_CONFTEST = f"""
import random
import numpy as np
import pytest
import torch

@pytest.fixture(autouse=True, params={list(SEEDS)!r}, ids=lambda seed: f"seed{{seed}}")
def doc_seed(request):
    random.seed(request.param)
    np.random.seed(request.param)
    torch.manual_seed(request.param)
"""


@pytest.mark.slow
def test_pytest_snippets_pass_with_every_seed(tmp_path):
    """The snippets that are pytest tests run under pytest, with the plugin the
    installed entry point registers, once per seed."""
    expected = 0
    for document in DOCUMENTS:
        for index, code in snippets(document):
            if is_pytest_snippet(code):
                name = re.sub(r"\W", "_", f"{document}_{index}")
                (tmp_path / f"test_{name}.py").write_text(code)
                expected += len(re.findall(r"^def test_", code, flags=re.M)) * len(SEEDS)
    assert expected, "no pytest snippets found"
    (tmp_path / "conftest.py").write_text(SEEDED_CONFTEST)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(),
                            timeout=900)
    assert f"{expected} passed" in result.stdout and result.returncode == 0, result.stdout[-4000:]


def test_no_python_block_escapes_extraction():
    """Python under another fence name (``py``, ``pycon``...) would not be run."""
    other_names = r"(py|python3|pycon|ipython|ipython3|pytb)"
    for document in DOCUMENTS:
        text = (ROOT / document).read_text()
        assert not re.search(rf"^ *```{other_names}\s*$", text, flags=re.M), document
        assert not re.search(rf"^ *\.\. (code-block|code|sourcecode):: *{other_names}\s*$", text,
                             flags=re.M), document


def test_snippet_extraction_finds_the_known_blocks():
    readme = snippets("README.md")
    assert any("model.fit(x, y" in code for _, code in readme)
    assert any(is_pytest_snippet(code) for _, code in readme)
    assert sum(is_pytest_snippet(code) for _, code in snippets("docs/testing.rst")) >= 1
    assert any("class Net" in code for _, code in snippets("docs/index.rst"))


def section(text, title):
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_readme_keeps_its_first_two_command_lines():
    assert README.splitlines()[2:6] == [
        "```bash",
        "pip install torch==2.13.0 && pip install -e '.[examples]' && python examples/digits.py",
        "pip install torch==2.13.0 && pip install -e '.[test]' && python -m pytest -q",
        "```",
    ]


def test_readme_states_the_suite_cost_and_a_fast_subset():
    intro = README.split("\n## ", 1)[0]
    assert 'python -m pytest -q -m "not slow"' in intro
    assert "about 4 minutes" in intro and "under a minute" in intro


def test_extras_never_pull_in_torch_and_name_their_packages():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    extras = {name: [re.split(r"[<>=!~\[ ;]", line.strip())[0].lower()
                     for line in value.splitlines() if line.strip() and "%(" not in line]
              for name, value in config["options.extras_require"].items()}
    for name, packages in extras.items():  # pip would replace the user's torch to satisfy them
        assert not {"torch", "torchvision", "torchaudio"} & set(packages), name
    assert extras["plot"] == ["matplotlib"] and "matplotlib" in extras["examples"]
    assert {"matplotlib", "nbclient", "nbformat", "ipykernel"} <= set(extras["test"])
    assert "slow:" in config["tool:pytest"]["markers"]
    assert 'pip install torchvision "torch==$(python -c' in section(README, "Install")


def test_readme_sections():
    titles = re.findall(r"^## (.+)$", README, flags=re.M)
    for expected in ("Install", "Quick start", "Keras → torchfit",
                     "The PyTorch user's view: what stays torch",
                     "Where torchfit differs from Keras, and why", "Performance",
                     "Testing your models", "Notebooks and plots", "Examples", "FAQ"):
        assert expected in titles


@pytest.mark.parametrize("seed", [SEEDS[0]] + [pytest.param(s, marks=pytest.mark.slow) for s in SEEDS[1:3]])
def test_readme_quick_start_is_ten_lines_and_learns(seed, capsys):
    quick_start = python_blocks(section(README, "Quick start"))[0]
    assert len(quick_start.strip().splitlines()) == 10
    namespace = {}
    with torchfit.testing.seeded_rng(seed):
        exec(compile(quick_start, "README.md quick start", "exec"), namespace)
    assert namespace["accuracy"] > 0.6 and namespace["probabilities"].shape == (1000, 3)
    assert set(namespace["history"].history) == {"accuracy", "loss", "val_accuracy", "val_loss"}


def test_readme_mixin_snippet_defines_a_keras_style_class():
    snippet = python_blocks(section(README, "Quick start"))[1]
    namespace = {"torchfit": torchfit, "nn": torch_nn()}
    exec(compile(snippet, "README.md mixin", "exec"), namespace)
    model = namespace["Net"]()
    assert isinstance(model, torchfit.KerasStyleModule)


def torch_nn():
    from torch import nn

    return nn


def test_readme_performance_numbers_name_their_commands():
    performance = section(README, "Performance")
    for command in ("python bench/overhead.py", "python bench/peers.py",
                    "python bench/data.py --threads 1 --clock cpu"):
        assert command in performance


def test_every_example_is_documented():
    examples_page = (DOCS / "examples.rst").read_text()
    for path in sorted((ROOT / "examples").glob("*.py")):
        name = f"examples/{path.name}"
        assert name in README, name
        assert name in examples_page, name


# ------------------------------------------------------------------------ Sphinx
def load_conf():
    return types.SimpleNamespace(**runpy.run_path(str(DOCS / "conf.py")))


def test_api_reference_documents_every_public_object_once():
    pytest.importorskip("sphinx")
    conf = load_conf()
    text = conf.api_reference()
    targets = re.findall(r"^\.\. (?:autoclass|autofunction|autodata|py:data):: (\S+)$", text, flags=re.M)
    assert len(targets) == len(set(targets))
    documented = {}
    for target in targets:
        module_name, _, name = target.rpartition(".")
        documented.setdefault(id(getattr(sys.modules[module_name], name)), []).append(target)
    for module, _ in conf.public_namespaces():
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, types.ModuleType):
                continue
            assert len(documented.get(id(value), [])) == 1, f"{module.__name__}.{name}"
    for name in ("torchfit.KerasStyleModule", "torchfit.keras_style", "torchfit.callbacks.Callback",
                 "torchfit.testing.assert_fits", "torchfit.testing.limit_fit"):
        assert name in targets
    assert "Also exported as ``torchfit.Callback``" in text


def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html",
         str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    api = (tmp_path / "html" / "api.html").read_text()
    assert 'id="torchfit.testing.assert_checkpoint_roundtrip"' in api
    assert 'id="torchfit.KerasStyleModule.fit"' in api
