"""Large inputs are never copied whole: peak memory of predict/evaluate/fit.

Each case runs in a fresh child process with glibc's ``MALLOC_MMAP_THRESHOLD_``
pinned, so large buffers are mapped and unmapped on their own and the resident
set follows what is alive (heap fragmentation cannot hide a copy). The child
samples its anonymous resident memory (``RssAnon``: a memory-mapped file's
pages are not counted, a copy of them is) at every batch end, and reports the
growth over the level just before the call. A whole copy of the input would
grow it by ``INPUT_MB``; the bounds allow less than half of that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

INPUT_MB = 160  # each input array; a whole copy would add this much
BOUND_MB = 64  # a few bounded groups of rows, the batches and the (small) results

CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    from torch import nn
    import torchfit

    path, rows, columns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)


    def rss_anon_mb():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no RssAnon in /proc/self/status")


    class Peak(torchfit.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.peak = rss_anon_mb()

        def sample(self, *args, **kwargs):
            self.peak = max(self.peak, rss_anon_mb())

        on_predict_batch_end = on_test_batch_end = on_train_batch_end = sample


    def growth(call, x):
        peak = Peak()
        before = rss_anon_mb()
        call(x, peak)
        peak.sample()
        return peak.peak - before


    model = torchfit.keras_style(nn.Sequential(nn.Linear(columns, 1)))
    model.compile(optimizer="sgd", loss="mse")
    y = np.zeros((rows, 1), dtype="float32")
    model.fit(np.ones((8, columns), "float32"), y[:8], verbose=0)  # warm up kernels, allocator

    def predict(x, peak):
        assert model.predict(x, batch_size=1024, verbose=0, callbacks=[peak]).shape == (rows, 1)

    def evaluate(x, peak):
        model.evaluate(x, y, batch_size=1024, verbose=0, callbacks=[peak])

    def fit_shuffled(x, peak):
        model.fit(x, y, batch_size=1024, shuffle=True, verbose=0, callbacks=[peak])

    results = {}
    mapped = np.load(path, mmap_mode="r")
    results["predict-mmap"] = growth(predict, mapped)
    results["evaluate-mmap"] = growth(evaluate, mapped)
    del mapped
    fortran = np.asfortranarray(np.ones((rows, columns), dtype="float32"))
    results["predict-fortran"] = growth(predict, fortran)
    del fortran
    results["fit-shuffled"] = growth(fit_shuffled, np.ones((rows, columns), dtype="float32"))
    print(json.dumps(results))
    """
)
CASES = ["predict-mmap", "evaluate-mmap", "predict-fortran", "fit-shuffled"]


@pytest.fixture(scope="module")
def growth_mb(tmp_path_factory):
    """Resident-memory growth (MB) of each case, measured in one child process."""
    import numpy as np

    columns = 64
    rows = INPUT_MB * 2**20 // (4 * columns)
    path = str(tmp_path_factory.mktemp("memory") / "x.npy")
    array = np.lib.format.open_memmap(path, mode="w+", dtype="float32", shape=(rows, columns))
    array[:] = 1.0
    array.flush()
    del array
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", CHILD, path, str(rows), str(columns)],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                    reason="reads RssAnon from /proc/self/status (Linux)")
@pytest.mark.parametrize("case", CASES)
def test_large_inputs_are_read_in_bounded_groups(case, growth_mb):
    growth = growth_mb[case]
    assert growth < BOUND_MB, (
        f"{case}: resident memory grew by {growth:.0f} MB for a {INPUT_MB} MB input "
        f"(bound {BOUND_MB} MB: no whole copy of the input)")
