"""tests/conftest.py's ``KERAS_HOME``: a folder it made is removed at exit, a
folder the caller chose is not (issue 19: /tmp filled with leaked folders)."""

from __future__ import annotations

import os
import subprocess
import sys

TESTS = os.path.dirname(os.path.abspath(__file__))
IMPORT_CONFTEST = ("import os, sys; sys.path.insert(0, sys.argv[1]); import conftest; "
                   "print(os.environ['KERAS_HOME']); assert os.path.isdir(os.environ['KERAS_HOME'])")


def import_conftest(env):
    result = subprocess.run([sys.executable, "-c", IMPORT_CONFTEST, TESTS], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def test_a_keras_home_made_by_conftest_is_removed_at_exit():
    env = {k: v for k, v in os.environ.items() if k != "KERAS_HOME"}
    folder = import_conftest(env)
    assert os.path.basename(folder).startswith("torchfit-keras-home-")
    assert not os.path.exists(folder)


def test_a_keras_home_set_by_the_caller_is_kept(tmp_path):
    chosen = tmp_path / "keras-home"
    chosen.mkdir()
    (chosen / "keep.txt").write_text("mine")
    folder = import_conftest({**os.environ, "KERAS_HOME": str(chosen)})
    assert folder == str(chosen)
    assert (chosen / "keep.txt").read_text() == "mine"
