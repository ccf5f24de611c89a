"""BackupAndRestore against a real crash: the training process is killed with SIGKILL
(no exception handlers, no ``finally``, no atexit) mid-epoch or in the middle of
writing a backup; re-running the same script ends with weights and optimizer
state bit-identical to an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

SCRIPT = textwrap.dedent('''
    import os, random, signal, sys
    import numpy as np, torch
    from torch import nn
    import torchfit
    from torchfit import callbacks as tcb

    backup_dir, out, kill_at, steps_per_epoch = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    steps_per_epoch = int(steps_per_epoch) or None

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    if kill_at.startswith("write"):  # SIGKILL half-way through the n-th backup write
        import torchfit.saving.files as files
        real_save, writes = files.torch.save, [0]

        def partial_save(obj, f, *args, **kwargs):
            writes[0] += 1
            if writes[0] == int(kill_at[len("write"):]):
                f.write(b"PK\\x03\\x04 half a checkpoint")
                f.flush()
                die()
            return real_save(obj, f, *args, **kwargs)

        files.torch.save = partial_save

    class KillAt(tcb.Callback):
        def __init__(self, n):
            super().__init__()
            self.n, self.calls = n, 0

        def on_train_batch_end(self, batch, logs=None):
            self.calls += 1
            if self.calls == self.n:
                die()

    class Net(torchfit.KerasStyleModule, nn.Module):
        def __init__(self):
            super().__init__()
            self.l1, self.drop, self.l2 = nn.Linear(6, 16), nn.Dropout(0.3), nn.Linear(16, 3)

        def forward(self, x):
            if self.training:  # noise from NumPy's and Python's global RNGs too
                x = x + torch.from_numpy(np.random.normal(size=x.shape).astype("float32")) * 0.01
                x = x * (1.0 + random.random() * 0.01)
            return self.l2(self.drop(torch.relu(self.l1(x))))

    torch.manual_seed(0); np.random.seed(0); random.seed(0)
    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, 6)).astype("float32")
    y = rng.integers(0, 3, size=60)
    model = Net()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    callbacks = [tcb.EarlyStopping(monitor="loss", patience=20),
                 tcb.BackupAndRestore(backup_dir, save_freq=2)]
    if kill_at.startswith("batch"):
        callbacks.append(KillAt(int(kill_at[len("batch"):])))
    trained = []
    callbacks.append(tcb.LambdaCallback(on_train_batch_begin=lambda batch, logs: trained.append(batch)))
    model.fit(x, y, batch_size=8, epochs=3, shuffle=True, verbose=0, callbacks=callbacks,
              steps_per_epoch=steps_per_epoch)
    torch.save({"weights": model.state_dict(), "optimizer": model.optimizer.state_dict(),
                "trained": len(trained)}, out)
''')


def run(tmp_path, name, kill_at="none", steps_per_epoch=0):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{name}.pt"
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / f"backup-{name.split('-')[0]}"), str(out),
         kill_at, str(steps_per_epoch)],
        capture_output=True, text=True, env=env, timeout=240)
    return result, out


def assert_same_state(a_path, b_path):
    a, b = (torch.load(p, weights_only=True) for p in (a_path, b_path))
    assert list(a["weights"]) == list(b["weights"])
    for key in a["weights"]:
        assert torch.equal(a["weights"][key], b["weights"][key]), key
    for index, state in a["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value),
                               torch.as_tensor(b["optimizer"]["state"][index][name])), (index, name)


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Uninterrupted runs, one per steps_per_epoch."""
    cache = {}

    def get(steps_per_epoch):
        if steps_per_epoch not in cache:
            result, out = run(tmp_path_factory.mktemp("ref"), "ref", steps_per_epoch=steps_per_epoch)
            assert result.returncode == 0, result.stderr[-3000:]
            cache[steps_per_epoch] = out
        return cache[steps_per_epoch]

    return get


@pytest.mark.parametrize("kill_at, steps_per_epoch", [
    ("batch5", 0),    # mid-epoch 0 (8 batches an epoch), after the backup at step 4
    ("batch11", 0),   # mid-epoch 1
    ("write3", 0),    # during the third backup write: the second one must be used
    ("batch7", 3),    # steps_per_epoch=3 < 8 batches: a pass that began an epoch earlier
], ids=["mid-epoch-0", "mid-epoch-1", "during-a-backup-write", "pass-spanning-epochs"])
def test_sigkilled_run_resumes_bit_identically(tmp_path, references, kill_at, steps_per_epoch):
    ref_out = references(steps_per_epoch)
    killed, _ = run(tmp_path, "run-killed", kill_at, steps_per_epoch)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    backup_dir = tmp_path / "backup-run"
    assert (backup_dir / "latest.pt").exists()
    if kill_at.startswith("write"):
        assert any(name.endswith(".tmp") for name in os.listdir(backup_dir))  # the torn write
    resumed, out = run(tmp_path, "run-resumed", "none", steps_per_epoch)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_state(ref_out, out)
    done, total = (torch.load(p, weights_only=True)["trained"] for p in (out, ref_out))
    assert 0 < done < total  # it continued: the batches already applied were not trained again
    assert not (backup_dir / "latest.pt").exists()  # deleted once the fit completed
