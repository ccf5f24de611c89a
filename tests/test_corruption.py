"""A damaged file is named as corrupted, by every reader, and changes nothing (issue 15, part 2).

torch ignores the CRC-32s its zip files carry; ``read_checkpoint`` checks them,
so a flipped bit in a tensor payload is caught instead of loading silently
wrong weights, and a damaged pickle is never mistaken for a file of "pickled
Python objects" (whose advice would be ``weights_only=False``).
"""

from __future__ import annotations

import os
import struct
import zipfile

import numpy as np
import pytest
import torch
import torch.serialization

import torchfit
from torchfit import callbacks as tcb
from torchfit import saving

from test_hardening_bad_input import assert_unchanged, snapshot
from test_hardening_security import Net, X, Y, trained

CORRUPTED = "is corrupted"


def payload_offset(path, suffix):
    """Where the stored bytes of the zip member ending with ``suffix`` start."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(suffix))
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + name_length + extra_length, info.file_size


def flip(path, offset, mask=0x01):
    data = bytearray(path.read_bytes())
    data[offset] ^= mask
    path.write_bytes(bytes(data))


def damage_pickle(path):
    start, size = payload_offset(path, "data.pkl")
    flip(path, start + size // 2, 0xFF)


def damage_tensor(path):
    start, size = payload_offset(path, "data/0")
    flip(path, start + size // 3, 0x10)  # one bit of one float: torch alone loads it silently


DAMAGES = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: os.path.getsize(p) * 2 // 3]),
    "text": lambda p: p.write_text("epoch,loss\n0,0.5\n"),
    "random-bytes": lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
    "empty": lambda p: p.write_bytes(b""),
    "flipped-pickle-byte": damage_pickle,
    "flipped-tensor-bit": damage_tensor,
}


def saved(tmp_path, kind):
    path = tmp_path / ("latest.pt" if kind == "backup" else "m.pt")
    model = trained()
    if kind == "weights":
        model.save_weights(path)
    elif kind == "model":
        model.save(path)
    else:
        cb = tcb.BackupAndRestore(tmp_path, delete_checkpoint=False)
        model.fit(X, Y, batch_size=4, epochs=1, verbose=0, callbacks=[cb])
    return path


READERS = {
    "read_checkpoint": lambda path, model: saving.read_checkpoint(path),
    "load_weights": lambda path, model: model.load_weights(path),
    "load_model": lambda path, model: torchfit.load_model(path, model=model),
    "BackupAndRestore": lambda path, model: model.fit(
        X, Y, batch_size=4, epochs=2, verbose=0, callbacks=[tcb.BackupAndRestore(path.parent)]),
}


@pytest.mark.parametrize("damage", list(DAMAGES), ids=list(DAMAGES))
@pytest.mark.parametrize("reader", list(READERS), ids=list(READERS))
def test_a_damaged_file_is_named_corrupted_and_changes_nothing(tmp_path, reader, damage):
    kind = {"BackupAndRestore": "backup", "load_weights": "weights"}.get(reader, "model")
    path = saved(tmp_path, kind)
    DAMAGES[damage](path)
    model = trained()
    before = snapshot(model)
    with pytest.raises(ValueError, match=CORRUPTED) as raised:
        READERS[reader](path, model)
    assert "weights_only=False" not in str(raised.value)
    assert_unchanged(model, before)


def test_torch_alone_loads_a_flipped_tensor_bit_silently(tmp_path):
    """Why the CRC check exists: the damaged weights differ and torch says nothing."""
    path = tmp_path / "w.pt"
    model = trained()
    model.save_weights(path)
    damage_tensor(path)
    loaded = torch.load(path, weights_only=True)
    assert not all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match=r"is corrupted: its part '.*data/0' does not match"):
        saving.read_checkpoint(path)


@pytest.mark.parametrize("mask", [0xFF, 0x01, 0x08])
def test_every_single_byte_flip_is_caught_or_harmless(tmp_path, mask):
    """Flip each byte of a small model file in turn: the read either raises the
    corrupted error (never another exception) or returns exactly the original
    (bytes no checksum covers, such as alignment padding, do not matter)."""
    path = tmp_path / "w.pt"
    torch.save({"w": torch.arange(6.0), "step": 3}, path)
    original = path.read_bytes()
    damaged_path = tmp_path / "d.pt"
    for offset in range(len(original)):
        data = bytearray(original)
        data[offset] ^= mask
        damaged_path.write_bytes(bytes(data))
        try:
            result = saving.read_checkpoint(damaged_path)
        except ValueError as error:
            assert CORRUPTED in str(error) and "weights_only=False" not in str(error), (offset, error)
            continue
        except Exception as error:  # noqa: BLE001 - any other exception is the defect
            pytest.fail(f"byte {offset} ^ {mask:#x}: {type(error).__name__}: {error}")
        assert set(result) == {"w", "step"} and result["step"] == 3, offset
        assert torch.equal(result["w"], torch.arange(6.0)), offset


def test_an_intact_file_still_loads(tmp_path):
    model = trained()
    model.save(tmp_path / "m.pt")
    restored = torchfit.load_model(tmp_path / "m.pt", model=Net())
    for key, value in model.state_dict().items():
        assert torch.equal(restored.state_dict()[key], value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_intact_file_from_a_cuda_machine_is_not_called_corrupted(tmp_path, monkeypatch):
    path = tmp_path / "cuda.pt"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(ValueError, match="device this machine does not have.*map_location='cpu'") as raised:
        saving.read_checkpoint(path, map_location=None)
    assert CORRUPTED not in str(raised.value)
    assert torch.equal(saving.read_checkpoint(path)["w"], torch.ones(2))  # the default maps to CPU
