"""Interrupted atomic writes do not pile up temporary files (issue 15, part 2).

A process killed while ``atomic_save`` writes leaves its ``.<name>.<random>.tmp``
beside the target; the next successful write to that path removes them, and
nothing else in the directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from torchfit import saving

KILLED_WRITE = textwrap.dedent("""
    import os, signal, sys
    import torch
    from torchfit import saving

    def save_then_die(obj, f, *args, **kwargs):
        f.write(b"PK partial")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # preempted mid-write

    torch.save = save_then_die
    saving.atomic_save({"w": torch.zeros(3)}, sys.argv[1])
""")


def killed_write(path):
    result = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(path)], env=os.environ.copy(),
                            capture_output=True)
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]


def temporaries(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
def test_the_next_successful_write_removes_the_leftovers_of_killed_ones(tmp_path):
    path = tmp_path / "ckpt.pt"
    saving.atomic_save({"w": torch.ones(3)}, path)
    for _ in range(3):
        killed_write(path)
    leftovers = temporaries(tmp_path)
    assert len(leftovers) == 3 and all(name.startswith(".ckpt.pt.") for name in leftovers)
    assert torch.equal(saving.read_checkpoint(path)["w"], torch.ones(3))  # the old file is intact
    saving.atomic_save({"w": torch.full((3,), 2.0)}, path)
    assert temporaries(tmp_path) == []
    assert torch.equal(saving.read_checkpoint(path)["w"], torch.full((3,), 2.0))


def test_only_the_temporaries_of_that_path_are_removed(tmp_path):
    others = [".other.pt.abcd1234.tmp",      # another target's leftover
              ".ckpt.pt.bkp.abcd1234.tmp",   # a target whose name extends this one's
              "notes.tmp", ".ckpt.pt.not-random-part.tmp", "ckpt.pt.abcd1234.tmp"]
    for name in others:
        (tmp_path / name).write_bytes(b"keep")
    (tmp_path / ".ckpt.pt.k3_9zq0a.tmp").write_bytes(b"leftover")
    saving.atomic_save({"w": torch.ones(1)}, tmp_path / "ckpt.pt")
    assert temporaries(tmp_path) == sorted(others)
