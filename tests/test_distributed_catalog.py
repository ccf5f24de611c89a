"""Muon and MultiOptimizer on 2 CPU processes (gloo), DDP and FSDP (issue 19).

One 2-process job (the harness of ``test_distributed.py``) trains with each
optimizer; the tests compare the trained weights and logs with one process
that sees the same global batches, within that file's tolerances.
"""

from __future__ import annotations

from typing import Any, Callable, Dict

import pytest
import torch

import torchfit
from test_distributed import (BATCH, WORLD, assert_history_close, fsdp_keras_rules_run, init_group,
                              make_data, run_job, save_results)

pytestmark = pytest.mark.slow  # a multi-process job


def muon() -> Any:
    """Newton–Schulz on the two weight matrices, AdamW on the biases."""
    return torchfit.optimizers.Muon(learning_rate=0.02, adam_lr_ratio=0.5, weight_decay=0.01)


def multi() -> Any:
    """The first layer with Adam, everything else with SGD with momentum."""
    return torchfit.optimizers.MultiOptimizer(torchfit.optimizers.OptimizerMap(
        torchfit.optimizers.SGD(learning_rate=0.05, momentum=0.9),
        {"body/0/.*": torchfit.optimizers.Adam(learning_rate=0.01)}))


OPTIMIZERS: Dict[str, Callable[[], Any]] = {"muon": muon, "multi": multi}


def train(optimizer: Callable[[], Any], batch_size: int, fsdp: bool = False) -> Dict[str, Any]:
    """Two epochs on 101 samples (a short last global batch): logs, steps, full weights."""
    x, y = make_data(101)
    return fsdp_keras_rules_run(x, y, batch_size, fsdp=fsdp, optimizer=optimizer)


def scenarios(rank: int, port: int, outdir: str) -> None:
    init_group(rank, port)
    out: Dict[str, Any] = {}
    for name, optimizer in OPTIMIZERS.items():
        out[f"ddp_{name}"] = train(optimizer, BATCH)
        try:
            out[f"fsdp_{name}"] = train(optimizer, BATCH, fsdp=True)
        except Exception as error:  # recorded: the test says what failed
            out[f"fsdp_{name}"] = {"error": f"{type(error).__name__}: {error}"}
    save_results(out, rank, outdir)


@pytest.fixture(scope="module")
def job(tmp_path_factory: Any) -> Dict[int, Dict[str, Any]]:
    return run_job(scenarios, tmp_path_factory.mktemp("distributed_catalog"))


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_two_processes_train_as_one_process_on_the_global_batches(job, strategy, name):
    reference = train(OPTIMIZERS[name], WORLD * BATCH)
    for rank in range(WORLD):
        got = job[rank][f"{strategy}_{name}"]
        assert "error" not in got, got.get("error")
        assert_history_close(got["history"], reference["history"])
        assert got["iterations"] == reference["iterations"] == 2 * -(-101 // (WORLD * BATCH))
    weights = job[0][f"{strategy}_{name}"]["state_dict"]  # FSDP gathers on rank 0
    assert list(weights) == list(reference["state_dict"])
    for key, value in reference["state_dict"].items():
        torch.testing.assert_close(weights[key], value, rtol=1e-5, atol=1e-6, msg=key)
