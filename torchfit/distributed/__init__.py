"""Several processes (``torchrun``): DDP/FSDP, data sharding, exact cross-rank logs.

The same ``fit``/``evaluate``/``predict`` calls run under ``torchrun`` (or any
launcher that sets up a ``torch.distributed`` process group) and give the
numbers of one process that sees the whole data:

* **Detection.** A process group with more than one process (set up by the
  user, by :func:`initialize`, or found in ``torchrun``'s environment and set
  up on first use) switches the loop to its distributed path. On a single
  process nothing here runs: the loop's code path is the single-process one.
* **The model stays the user's.** ``fit`` calls the model through a
  ``DistributedDataParallel`` wrapper only for the forward inside the train
  step (``call_model`` is routed, so DDP's gradient hooks fire); the wrapper
  is never registered on the model, so ``state_dict()`` keys carry no
  ``module.`` prefix. ``FSDP()`` shards the model in place with
  ``torch.distributed.fsdp.fully_shard`` (same keys; gather a full checkpoint
  with :func:`full_state_dict`).
* **Sharding.** Arrays, tensors, ``Dataset``s and ``DataLoader``s are split
  across processes. ``batch_size`` is the per-process batch, as in torch DDP:
  a step consumes ``world_size * batch_size`` samples (the "global batch"),
  process ``r`` taking the ``r``-th block of it. Every process draws the same
  permutation from a shared seed and ``epoch`` (``set_epoch``). A short last
  global batch is split evenly and the gradient of each process is weighted
  by its share, so training equals one process with the global batch (and a
  mean loss). A ``DataLoader`` that already has a ``DistributedSampler`` is
  used as is for training. ``evaluate`` and ``predict`` count every sample
  exactly once: no padding; a process left without samples in the last step
  runs a placeholder batch whose effects are undone, so collectives still
  line up.
* **Logs.** Losses and metrics are combined by their *states*
  (``metric.variables`` all-reduced with ``metric.state_reduce_ops``), at
  epoch end and at every batch-level callback call, never by averaging
  per-process results. Every process gets the same logs, so callbacks such as
  ``EarlyStopping`` decide the same everywhere. ``predict`` gathers the rows
  of every process and returns them in input order (on every process, or on
  process 0 only with ``predict_outputs="main"``).
* **Output.** The loop adds its progress bar on process 0 only; callbacks
  that write (CSV, TensorBoard, checkpoints) check :func:`is_main_process`
  or use :func:`main_process_only`.

Example (``torchrun --nproc_per_node=2 train.py``)::

    torchfit.distributed.initialize()          # optional: fit() does it under torchrun
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, batch_size=32)             # 32 per process, 64 per step
"""

# The package, by concern: process_group (set-up, detection, ranks), strategies
# (DataParallel/FSDP, the current distribution), sharding (which samples each
# process takes), reduction (metric states, agreement, predicted rows across
# processes), session (the hooks Loop calls) and errors (failures, warnings).

from __future__ import annotations

from .errors import PeerProcessError
from .process_group import (barrier, device, initialize, is_distributed, is_initialized,
                            is_main_process, launched_by_torchrun, local_rank, main_process_only,
                            rank, shutdown, world_size)
from .reduction import all_processes_agree, metrics_result
from .sharding import ShardPlan
from .strategies import DataParallel, Distribution, FSDP, distribution, full_state_dict, set_distribution

# Not in __all__, importable from here as before the split: internals the tests
# use. The loop's session (session.py, which needs callbacks) is not imported by
# this package: it sits in the loop's layer; import it as torchfit.distributed.session.
from .process_group import DEFAULT_TIMEOUT  # noqa: F401
from ..batch import ROUTES  # noqa: F401 (call_model's routes; they live in batch.py)
from .sharding import ShardBatch, _epoch_order  # noqa: F401

__all__ = [
    "DataParallel",
    "Distribution",
    "FSDP",
    "PeerProcessError",
    "ShardPlan",
    "all_processes_agree",
    "barrier",
    "device",
    "distribution",
    "full_state_dict",
    "initialize",
    "is_distributed",
    "is_initialized",
    "is_main_process",
    "launched_by_torchrun",
    "local_rank",
    "main_process_only",
    "metrics_result",
    "rank",
    "set_distribution",
    "shutdown",
    "world_size",
]
