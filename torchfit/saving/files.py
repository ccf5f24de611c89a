"""Atomic writes and checked reads of torch checkpoint files.

Files are written atomically (a temporary file in the same directory, then
``os.replace``) and read with ``torch.load(weights_only=True)`` by default,
with clear errors for missing, truncated, foreign and pickled files.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from typing import Any, Callable, List, Optional

import torch

from ..validation import check_bool, check_path

MODEL_FORMAT = "torchfit.model"
FORMAT_VERSION = 1
_DOS_DIRECTORY = 0x10
_TMP_SUFFIX = ".tmp"
_RANDOM_PART = re.compile(r"[a-z0-9_]{8}")  # what tempfile.mkstemp puts between them


# --------------------------------------------------------------------------- checks
def _check_overwrite(filepath: str, overwrite: Any) -> None:
    check_bool(overwrite, "overwrite")
    if os.path.isdir(filepath):
        raise IsADirectoryError(
            f"Argument `filepath` must name a file. Received a path that is an existing "
            f"directory: {filepath}"
        )
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(
            f"Argument `filepath` names a file that already exists and overwrite=False: "
            f"{filepath}. Pass overwrite=True to replace it."
        )


# ---------------------------------------------------------------------- atomic I/O
def atomic_save(obj: Any, filepath: Any) -> None:
    """``torch.save(obj, filepath)`` that never leaves a partial file behind."""
    atomic_write(filepath, lambda f: torch.save(obj, f))


def atomic_write(filepath: Any, write: Callable[[Any], None], argument: str = "filepath") -> None:
    """Call ``write(binary_file)`` and put the result at ``filepath`` atomically.

    The data goes to a temporary file in the same directory, is flushed to
    disk, then renamed over ``filepath`` with ``os.replace`` (atomic on POSIX
    and Windows): readers see the old file or the new one, never a mix, and a
    ``write`` that fails leaves no file behind. Temporary files that
    interrupted writes to the same path left behind (a process killed
    mid-write) are removed once this write succeeds.
    """
    filepath = check_path(filepath, argument)
    directory = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    prefix = f".{os.path.basename(filepath)}."
    leftovers = _temporary_files(directory, prefix)  # of writes killed before their rename
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=_TMP_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, filepath)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)
    for leftover in leftovers:
        try:
            os.remove(leftover)
        except OSError:
            pass  # gone already, or not ours to remove


def _temporary_files(directory: str, prefix: str) -> List[str]:
    """The temporary files ``atomic_save`` names for one target in ``directory``
    (``.<name>.<random>.tmp``): what an interrupted write leaves behind."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [os.path.join(directory, name) for name in names
            if name.startswith(prefix) and name.endswith(_TMP_SUFFIX)
            and _RANDOM_PART.fullmatch(name[len(prefix):-len(_TMP_SUFFIX)])]


def _fsync_directory(directory: str) -> None:
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_checkpoint(filepath: Any, weights_only: bool = True, map_location: Any = "cpu") -> Any:
    """``torch.load`` with clear errors for missing, corrupted and foreign files.

    With ``weights_only=True`` (the default) only tensors and plain Python
    containers are accepted; pass ``weights_only=False`` only for files you
    trust (they may run arbitrary code when read). Before torch reads it, a
    zip-format file's CRC-32 checksums are verified (torch ignores them), so
    a damaged file is a ``ValueError`` saying it is corrupted, whatever part
    of it was hit.
    """
    filepath = check_path(filepath)
    check_bool(weights_only, "weights_only")
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"Argument `filepath`: no such file: {filepath}")
    if os.path.isdir(filepath):
        raise IsADirectoryError(f"Argument `filepath` must name a file. Received a directory: "
                                f"{filepath}")
    _check_map_location(map_location)
    check_integrity(filepath)
    try:
        return torch.load(filepath, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as error:
        refused = _refused_global(error) if weights_only else None
        if refused is not None:
            raise ValueError(
                f"The file {filepath} holds pickled Python objects, which are not loaded "
                "with weights_only=True (they can run arbitrary code). If you trust the "
                f"file, pass weights_only=False explicitly. Detail: {refused}"
            ) from None
        raise _corrupted(filepath, error) from None
    except (FileNotFoundError, IsADirectoryError, PermissionError, MemoryError):
        raise
    except Exception as error:  # whatever torch raises on damaged bytes
        if isinstance(error, RuntimeError) and "map_location" in str(error):
            raise ValueError(  # intact, saved on a device this machine lacks
                f"The file {filepath} holds tensors of a device this machine does not have. "
                f"Pass map_location='cpu'. Detail: {str(error).splitlines()[0][:200]}"
            ) from None
        raise _corrupted(filepath, error) from None


def check_integrity(filepath: str) -> None:
    """Verify the CRC-32 of every part of a zip-format torch file (one extra
    read); ``ValueError`` naming the damaged part. Legacy files have none."""
    try:
        if not zipfile.is_zipfile(filepath):
            return  # not a zip (or its directory is cut off): torch.load decides
        with zipfile.ZipFile(filepath) as archive:
            damaged = archive.testzip()
            # torch's zip reader (miniz) also takes the DOS directory bit of the
            # attributes for "a directory": such a part reads as garbage.
            damaged = damaged or next((info.filename for info in archive.infolist()
                                       if info.external_attr & _DOS_DIRECTORY), None)
    except (FileNotFoundError, PermissionError, MemoryError):
        raise
    except Exception as error:  # a damaged header reads as encrypted, deflated, ...
        raise _corrupted(filepath, error) from None
    if damaged is not None:
        raise ValueError(
            f"The file {filepath} is corrupted: its part {damaged!r} does not match the "
            "checksum and attributes written with it (the file was damaged after it was "
            "written). Restore it from a backup or write it again."
        )


def _refused_global(error: BaseException) -> Optional[str]:
    """torch's reason when its weights-only unpickler refused a Python object
    (a global, a class to call); None when the pickle itself is damaged."""
    lines = [line.strip() for line in str(error).splitlines()]
    reason = next((line.partition("WeightsUnpickler error:")[2].strip() for line in lines
                   if "WeightsUnpickler error:" in line), "")
    damaged = ("Unsupported operand", "stack", "Unexpected end", "EOF", "truncated")
    if not reason or any(word in reason for word in damaged):
        return None
    return reason[:300]


def _check_map_location(map_location: Any) -> None:
    """A device string/``torch.device`` must name a device this machine has
    (else torch's error reads like a corrupted file)."""
    if not isinstance(map_location, (str, torch.device)):
        return  # None, a dict or a callable: torch's own rules
    try:
        device = torch.device(map_location)
    except (RuntimeError, ValueError) as error:
        raise ValueError(f"Argument `map_location` must be a device such as 'cpu' or 'cuda:0'. "
                         f"Received: {map_location!r} ({str(error).splitlines()[0][:120]}).") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Argument `map_location` names a CUDA device, but CUDA is not available "
                         f"on this machine. Expected 'cpu'; received {map_location!r}.")


def _corrupted(filepath: str, error: BaseException) -> ValueError:
    size = os.path.getsize(filepath)
    detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    return ValueError(
        f"The file {filepath} ({size} bytes) is corrupted: it is truncated, corrupted or "
        f"not a file written by torch.save. Detail: "
        f"{type(error).__name__}: {detail}"
    )
