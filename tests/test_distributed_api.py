"""torchfit.distributed on one process: argument checks, sharding plans, no-ops.

No process group is created here (the 2-process tests are in
``test_distributed.py``); on a single process the loop must run exactly its
single-process path.
"""

from __future__ import annotations

import datetime
import itertools

import numpy as np
import pytest
import torch
from torch import nn

import torchfit
from torchfit import distributed
from torchfit.distributed import session
from torchfit.distributed import DataParallel, FSDP, ShardPlan


class Net(torchfit.KerasStyleModule, nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


@pytest.fixture(autouse=True)
def no_distribution():
    distributed.set_distribution(None)
    yield
    distributed.set_distribution(None)


# ----------------------------------------------------------------------------- single process
def test_single_process_helpers():
    assert not distributed.is_initialized()
    assert distributed.world_size() == 1
    assert distributed.rank() == 0
    assert distributed.is_main_process()
    assert not distributed.is_distributed()
    assert distributed.device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    distributed.barrier()  # nothing to wait for
    distributed.shutdown()  # nothing to destroy


def test_initialize_is_a_no_op_on_a_single_process(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.initialize() is False
    assert not distributed.is_initialized()


def test_torchrun_environment_is_detected(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.launched_by_torchrun()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not distributed.launched_by_torchrun()


def test_the_loop_runs_its_single_process_path():
    model = Net()
    model.compile(optimizer="sgd", loss="mse")
    assert type(torchfit.Loop(model).dist) is session.LocalSession
    assert type(session.loop_session(model)) is session.LocalSession
    x, y = np.random.rand(10, 3).astype("float32"), np.random.rand(10, 1).astype("float32")
    keys = list(model.state_dict())
    with FSDP().scope():  # a distribution changes nothing on one process
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
        assert model.predict(x, verbose=0).shape == (10, 1)
    assert not session.ROUTES
    assert list(model.state_dict()) == keys
    assert all(type(v) is torch.Tensor for v in model.state_dict().values())
    assert distributed.metrics_result(model) == model.get_metrics_result()
    assert distributed.full_state_dict(model).keys() == model.state_dict().keys()


def test_call_model_goes_through_a_route_while_one_is_set():
    from torchfit.batch import call_model

    model = Net()
    seen = []

    def route(x):
        seen.append(x)
        return model(x)

    session.ROUTES[id(model)] = route
    try:
        call_model(model, torch.zeros(2, 3))
    finally:
        session.ROUTES.pop(id(model))
    call_model(model, torch.zeros(2, 3))
    assert len(seen) == 1


def test_scale_grad_weights_gradients_only():
    x = torch.ones(3, requires_grad=True)
    y = session._ScaleGrad.apply(x * 2, 0.25)
    torch.testing.assert_close(y, torch.full((3,), 2.0))
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((3,), 0.5))


def test_main_process_only_runs_on_one_process():
    @distributed.main_process_only
    def write(value):
        return value + 1

    assert write(1) == 2


# ----------------------------------------------------------------------------- sharding plans
@pytest.mark.parametrize("size, batch_size, world", list(itertools.product(
    [1, 2, 3, 7, 16, 17, 31, 97, 101], [1, 3, 8], [1, 2, 3, 4])))
def test_plans_cover_every_sample_exactly_once(size, batch_size, world):
    plans = [ShardPlan(size, batch_size, world, r) for r in range(world)]
    assert len({p.steps for p in plans}) == 1  # the same number of steps everywhere
    positions = np.concatenate([p.positions() for p in plans])
    assert sorted(positions.tolist()) == list(range(size))
    for step in range(plans[0].steps):
        pieces = [p.piece(step) for p in plans]
        assert sum(real for _, _, real in pieces) == plans[0].total(step)
        for lo, hi, real in pieces:
            assert 0 <= lo < hi <= size  # placeholders are real samples too
            assert real in (0, hi - lo)
            assert hi - lo <= batch_size or real == 0
        sizes = {real for _, _, real in pieces}
        assert plans[0].marked(step) == (len(sizes) > 1)


def test_plan_of_a_full_step_gives_blocks_in_rank_order():
    plan = [ShardPlan(101, 8, 2, r) for r in range(2)]
    assert [p.piece(0) for p in plan] == [(0, 8, 8), (8, 16, 8)]
    assert [p.piece(6) for p in plan] == [(96, 99, 3), (99, 101, 2)]  # 5 left: 3 + 2
    assert plan[0].steps == 7 and plan[0].any_marked
    assert [p.piece(6) for p in [ShardPlan(97, 8, 2, r) for r in range(2)]] == [(96, 97, 1), (0, 2, 0)]  # placeholder: 2 samples


def test_plan_drop_last_drops_the_short_step():
    plan = ShardPlan(101, 8, 2, 0, drop_last=True)
    assert plan.steps == 6 and not plan.any_marked


def test_epoch_order_is_shared_and_changes_with_the_epoch():
    first = distributed._epoch_order(50, True, seed=7, epoch=0, chunk=8)
    assert torch.equal(first, distributed._epoch_order(50, True, seed=7, epoch=0, chunk=8))
    assert not torch.equal(first, distributed._epoch_order(50, True, seed=7, epoch=1, chunk=8))
    assert sorted(first.tolist()) == list(range(50))
    assert distributed._epoch_order(50, False, seed=7, epoch=0, chunk=8) is None
    chunks = distributed._epoch_order(50, "batch", seed=7, epoch=0, chunk=8)
    assert [sorted(chunks[i:i + 8].tolist()) for i in range(0, 50, 8)] == [
        list(range(i, min(i + 8, 50))) for i in range(0, 50, 8)]


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, error, words", [
    ({"backend": 1}, TypeError, ["`backend`", "gloo", "int"]),
    ({"init_method": 3}, TypeError, ["`init_method`", "env://", "int"]),
    ({"timeout": "soon"}, TypeError, ["`timeout`", "timedelta", "str"]),
    ({"timeout": -1}, ValueError, ["`timeout`", "positive", "-1"]),
    ({"timeout": datetime.timedelta(0)}, ValueError, ["`timeout`", "positive"]),
    ({"rank": True}, TypeError, ["`rank`", "integer", "bool"]),
    ({"rank": -1}, ValueError, ["`rank`", ">= 0", "-1"]),
    ({"world_size": 0}, ValueError, ["`world_size`", ">= 1", "0"]),
    ({"rank": 2, "world_size": 2}, ValueError, ["`rank`", "`world_size`", "2"]),
])
def test_initialize_checks_its_arguments(kwargs, error, words):
    with pytest.raises(error) as info:
        distributed.initialize(**kwargs)
    for word in words:
        assert word in str(info.value)
    assert not distributed.is_initialized()


def test_local_rank_must_be_an_integer(monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "first")
    with pytest.raises(ValueError, match="LOCAL_RANK.*integer.*first"):
        distributed.local_rank()


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: distributed.set_distribution("ddp"), TypeError, "`value`.*Distribution.*str"),
    (lambda: DataParallel(module=nn.Linear(1, 1)), TypeError, "`module`.*DistributedDataParallel.*Linear"),
    (lambda: DataParallel(find_unused=True), TypeError, "find_unused.*find_unused_parameters"),
    (lambda: DataParallel(seed=-1), TypeError, "`seed`.*non-negative.*-1"),
    (lambda: DataParallel(seed=1.5), TypeError, "`seed`.*float"),
    (lambda: DataParallel(reduce_batch_logs="yes"), TypeError, "`reduce_batch_logs`.*True or False.*str"),
    (lambda: DataParallel(predict_outputs="rank0"), ValueError, "`predict_outputs`.*\"all\".*rank0"),
    (lambda: FSDP(modules=3), TypeError, "`modules`.*nn.Module subclass.*int"),
    (lambda: FSDP(modules=(nn.Linear, int)), TypeError, "`modules`"),
    (lambda: FSDP(reshard=True), TypeError, "reshard.*reshard_after_forward"),
    (lambda: distributed.main_process_only(3), TypeError, "`fn`.*callable.*int"),
    (lambda: distributed.metrics_result(object()), TypeError, "`model`.*get_metrics_result.*object"),
    (lambda: distributed.full_state_dict(3), TypeError, "`model`.*nn.Module.*int"),
])
def test_public_entry_points_check_their_input(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_distributions_are_configurable_and_scoped():
    ddp = DataParallel(find_unused_parameters=True, seed=3, reduce_batch_logs=False,
                       predict_outputs="main")
    assert "find_unused_parameters=True" in repr(ddp) and "seed=3" in repr(ddp)
    fsdp = FSDP(modules=nn.Linear, reshard_after_forward=False)
    assert fsdp._selected(nn.Linear(1, 1)) and not fsdp._selected(nn.ReLU())
    assert FSDP(modules=lambda m: isinstance(m, nn.ReLU))._selected(nn.ReLU())
    assert distributed.distribution() is None
    with ddp.scope():
        assert distributed.distribution() is ddp
        with fsdp.scope():
            assert distributed.distribution() is fsdp
        assert distributed.distribution() is ddp
    assert distributed.distribution() is None
    distributed.set_distribution(fsdp)
    assert distributed.distribution() is fsdp
