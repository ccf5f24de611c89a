"""The README and the Sphinx docs: structure, runnable snippets, a warning-free build."""

import re
import runpy
import subprocess
import sys
import types
from pathlib import Path

import pytest

import torchfit

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


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


def test_readme_sections():
    titles = re.findall(r"^## (.+)$", README, flags=re.M)
    for expected in ("Install", "Quick start", "Keras → torchfit",
                     "The PyTorch user's view: what stays torch",
                     "Where torchfit differs from Keras, and why", "Performance",
                     "Testing your models", "Examples", "FAQ"):
        assert expected in titles


def test_readme_quick_start_is_ten_lines_and_learns(seeded, capsys):
    quick_start = python_blocks(section(README, "Quick start"))[0]
    assert len(quick_start.strip().splitlines()) == 10
    namespace = {}
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
