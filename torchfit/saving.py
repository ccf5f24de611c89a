"""Saving and loading models in torch's own format, and ``summary()``.

Two kinds of files, both written atomically (a temporary file in the same
directory, then ``os.replace``) and both readable with
``torch.load(path, weights_only=True)`` (no arbitrary pickles):

* ``save_weights``: the model's plain ``state_dict``. Plain torch can read it
  back: ``model.load_state_dict(torch.load(path, weights_only=True))``.
* ``save_model``: a dict ``{"format": "torchfit.model", "version", "weights",
  "optimizer", "compile_config", "epoch", "step", "iterations"}``. ``"weights"``
  is again a plain ``state_dict``. The compile config holds what can be stored
  without pickling code (names, torchfit loss/metric/optimizer configs,
  numbers); what cannot is listed under ``"compile_config"]["unserialized"]``.

Only ``save_model(..., pickle_model=True)`` stores the module object itself;
reading such a file needs ``load_model(..., weights_only=False)``, given
explicitly, and must only be done for files you trust.

This module also holds the RNG snapshot helpers used by ``BackupAndRestore``.
"""

from __future__ import annotations

import math
import os
import pickle
import random
import tempfile
import warnings
import zipfile
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from .validation import _received

__all__ = [
    "save_weights",
    "load_weights",
    "save_model",
    "load_model",
    "read_checkpoint",
    "atomic_save",
    "summary",
    "get_rng_state",
    "set_rng_state",
]

MODEL_FORMAT = "torchfit.model"
FORMAT_VERSION = 1
_LIST_LIMIT = 10


# --------------------------------------------------------------------------- checks
def _check_model(model: Any, argument: str = "model") -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Argument `{argument}` must be a torch.nn.Module. "
                        f"Received: {_received(model)}.")
    return model


def _check_path(filepath: Any, argument: str = "filepath") -> str:
    if isinstance(filepath, os.PathLike):
        filepath = os.fspath(filepath)
    if not isinstance(filepath, str):
        raise TypeError(f"Argument `{argument}` must be a path (str or os.PathLike). "
                        f"Received: {_received(filepath)}.")
    if not filepath:
        raise ValueError(f"Argument `{argument}` must be a non-empty path. Received: ''.")
    return filepath


def _check_bool(value: Any, argument: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"Argument `{argument}` must be True or False. Received: {_received(value)}.")
    return value


def _check_overwrite(filepath: str, overwrite: Any) -> None:
    _check_bool(overwrite, "overwrite")
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


def _short_list(keys: Sequence[str]) -> str:
    keys = list(keys)
    shown = ", ".join(repr(k) for k in keys[:_LIST_LIMIT])
    if len(keys) > _LIST_LIMIT:
        shown += f", ... and {len(keys) - _LIST_LIMIT} more"
    return f"[{shown}]"


# ---------------------------------------------------------------------- atomic I/O
def atomic_save(obj: Any, filepath: Any) -> None:
    """``torch.save(obj, filepath)`` that never leaves a partial file behind.

    The data goes to a temporary file in the same directory, is flushed to
    disk, then renamed over ``filepath`` with ``os.replace`` (atomic on POSIX
    and Windows): readers see the old file or the new one, never a mix.
    """
    filepath = _check_path(filepath)
    directory = os.path.dirname(os.path.abspath(filepath))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(filepath)}.", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
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
    """``torch.load`` with clear errors for missing, truncated and foreign files.

    With ``weights_only=True`` (the default) only tensors and plain Python
    containers are accepted; pass ``weights_only=False`` only for files you
    trust (they may run arbitrary code when read).
    """
    filepath = _check_path(filepath)
    _check_bool(weights_only, "weights_only")
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"Argument `filepath`: no such file: {filepath}")
    if os.path.isdir(filepath):
        raise IsADirectoryError(f"Argument `filepath` must name a file. Received a directory: "
                                f"{filepath}")
    _check_map_location(map_location)
    try:
        return torch.load(filepath, map_location=map_location, weights_only=weights_only)
    except pickle.UnpicklingError as error:
        if weights_only and "weights only" in str(error).lower():
            raise ValueError(
                f"The file {filepath} holds pickled Python objects, which are not loaded "
                "with weights_only=True (they can run arbitrary code). If you trust the "
                "file, pass weights_only=False explicitly. "
                f"Detail: {str(error).splitlines()[0][:200]}"
            ) from None
        raise _unreadable(filepath, error) from None
    except (RuntimeError, EOFError, KeyError, zipfile.BadZipFile, ValueError, OSError) as error:
        if isinstance(error, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise
        raise _unreadable(filepath, error) from None


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


def _unreadable(filepath: str, error: BaseException) -> ValueError:
    size = os.path.getsize(filepath)
    detail = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
    return ValueError(
        f"Could not read a torch checkpoint from {filepath} ({size} bytes): the file is "
        f"truncated, corrupted or not a file written by torch.save. Detail: "
        f"{type(error).__name__}: {detail}"
    )


# --------------------------------------------------------------------------- weights
def save_weights(model: Any, filepath: Any, overwrite: bool = True) -> None:
    """Write ``model.state_dict()`` to ``filepath`` (atomically), in torch's format.

    The file is a plain state dict: ``model.load_state_dict(torch.load(filepath,
    weights_only=True))`` reads it without torchfit.
    """
    _check_model(model)
    filepath = _check_path(filepath)
    _check_overwrite(filepath, overwrite)
    atomic_save(_state_dict(model), filepath)


def _state_dict(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The model's state dict (detached tensors, on their devices)."""
    return model.state_dict()


def _weights_from(archive: Any, filepath: str) -> Dict[str, Any]:
    if isinstance(archive, dict) and archive.get("format") == MODEL_FORMAT:
        archive = archive.get("weights")
    if not isinstance(archive, dict) or not all(isinstance(k, str) for k in archive):
        raise ValueError(
            f"The file {filepath} does not hold model weights. Expected a state dict "
            "(str keys → tensors) or a file written by model.save(); received a "
            f"{type(archive).__name__}."
        )
    return archive


def check_state_dict(model: nn.Module, state: Dict[str, Any], source: str,
                     skip_mismatch: bool = False) -> Dict[str, Any]:
    """Compare ``state`` with the model's state dict; clear errors on any difference.

    Returns the entries to load (all of them, or with ``skip_mismatch`` only
    those whose shape matches).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"The weights in {source} do not belong to this model "
            f"({type(model).__name__}). Missing keys (in the model, not in the file): "
            f"{_short_list(missing)}. Unexpected keys (in the file, not in the model): "
            f"{_short_list(unexpected)}."
        )
    mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = []
    for key, value in own.items():
        loaded = state[key]
        if not isinstance(loaded, torch.Tensor):
            raise ValueError(f"The weights in {source} hold a {type(loaded).__name__} for "
                             f"key {key!r}; expected a tensor.")
        if tuple(loaded.shape) != tuple(value.shape):
            mismatched.append((key, tuple(value.shape), tuple(loaded.shape)))
    if mismatched and not skip_mismatch:
        details = "; ".join(f"{k}: model {m}, file {f}" for k, m, f in mismatched[:_LIST_LIMIT])
        more = f"; ... and {len(mismatched) - _LIST_LIMIT} more" if len(mismatched) > _LIST_LIMIT else ""
        raise ValueError(
            f"The weights in {source} have shapes that do not match this model "
            f"({type(model).__name__}), which was built with other sizes: {details}{more}. "
            "Pass skip_mismatch=True to load only the matching weights."
        )
    if mismatched:
        warnings.warn(f"Skipped {len(mismatched)} weights whose shapes do not match: "
                      f"{_short_list([k for k, _, _ in mismatched])}.", stacklevel=3)
        skipped = {k for k, _, _ in mismatched}
        return {k: v for k, v in state.items() if k not in skipped}
    return state


def load_weights(model: Any, filepath: Any, skip_mismatch: bool = False,
                 map_location: Any = "cpu") -> None:
    """Load weights written by ``save_weights`` or ``save_model`` (or any plain
    ``torch.save(model.state_dict())`` file) into ``model``, in place."""
    _check_model(model)
    filepath = _check_path(filepath)
    _check_bool(skip_mismatch, "skip_mismatch")
    state = _weights_from(read_checkpoint(filepath, map_location=map_location), filepath)
    state = check_state_dict(model, state, filepath, skip_mismatch)
    with torch.no_grad():
        model.load_state_dict(state, strict=not skip_mismatch)


# ----------------------------------------------------------------- compile config
_SCALARS = (str, int, float, bool, type(None))


def _is_plain(value: Any) -> bool:
    if isinstance(value, _SCALARS):
        return not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


class _Unserializable(Exception):
    pass


def _serialize_objects(spec: Any, kind: str) -> Any:
    """Names stay names; torchfit losses/metrics become tagged configs."""
    from . import losses as losses_module
    from . import metrics as metrics_module

    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, (list, tuple)):
        return [_serialize_objects(s, kind) for s in spec]
    if isinstance(spec, dict):
        return {str(k): _serialize_objects(v, kind) for k, v in spec.items()}
    try:
        if kind == "loss":
            config = losses_module.serialize(spec)
        else:
            config = metrics_module.serialize(spec)
    except Exception:
        raise _Unserializable() from None
    if not _is_plain(config):
        raise _Unserializable()
    return {"__torchfit__": kind, **config}


def _deserialize_objects(spec: Any, custom_objects: Any) -> Any:
    from . import losses as losses_module
    from . import metrics as metrics_module

    if isinstance(spec, list):
        return [_deserialize_objects(s, custom_objects) for s in spec]
    if isinstance(spec, dict):
        if "__torchfit__" in spec:
            config = _resolve_function_paths(
                {k: v for k, v in spec.items() if k != "__torchfit__"}, custom_objects)
            if spec["__torchfit__"] == "loss":
                return losses_module.deserialize(config, custom_objects)
            return metrics_module.deserialize(config, custom_objects)
        return {k: _deserialize_objects(v, custom_objects) for k, v in spec.items()}
    return spec


def _resolve_function_paths(config: Dict[str, Any], custom_objects: Any) -> Dict[str, Any]:
    """A file read with ``weights_only=True`` must not make torchfit import and call
    arbitrary code: function paths (``"module:qualname"``, e.g. the ``fn`` of a
    metric wrapping a user function) are only resolved here when they point into
    torchfit, or when ``custom_objects`` holds them (by path, qualified name or
    name); anything else is a ValueError asking for ``custom_objects``."""
    inner = config.get("config")
    fn = inner.get("fn") if isinstance(inner, dict) else None
    if not isinstance(fn, str) or ":" not in fn:
        return config
    module, _, qualname = fn.partition(":")
    if module == "torchfit" or module.startswith("torchfit."):
        return config
    custom = custom_objects or {}
    for key in (fn, qualname, qualname.rsplit(".", 1)[-1]):
        if key in custom:
            return {**config, "config": {**inner, "fn": custom[key]}}
    raise ValueError(
        f"The saved compile() arguments refer to the function {fn!r}, outside torchfit. "
        "Loading does not import code named by a file; pass it as "
        f"custom_objects={{{qualname.rsplit('.', 1)[-1]!r}: <the function>}}, or call "
        "compile() yourself before load_model."
    )


def _serialize_optimizer(optimizer: Any) -> Any:
    from . import optimizers as optimizers_module

    if isinstance(optimizer, optimizers_module.Optimizer):
        config = optimizers_module.serialize(optimizer)
        if _is_plain(config):
            return {"kind": "torchfit", **config}
        raise _Unserializable()
    cls = type(optimizer)
    if cls.__module__.startswith("torch.optim") and getattr(torch.optim, cls.__name__, None) is cls:
        defaults = {k: v for k, v in optimizer.defaults.items()}
        if _is_plain(defaults):
            return {"kind": "torch", "class_name": cls.__name__, "defaults": defaults}
    raise _Unserializable()


def compile_config(model: Any) -> Optional[Dict[str, Any]]:
    """What ``compile()`` was given, as far as it can be stored without pickling code."""
    state = model.__dict__.get("_torchfit")
    if state is None or not state.compiled:
        return None
    config: Dict[str, Any] = {}
    unserialized: List[str] = []

    def store(name: str, make: Callable[[], Any]) -> None:
        try:
            config[name] = make()
        except _Unserializable:
            unserialized.append(name)

    compile_loss = state.compile_loss
    compile_metrics = state.compile_metrics
    store("optimizer", lambda: _serialize_optimizer(getattr(state.optimizer, "inner_optimizer",
                                                            state.optimizer)))
    store("loss", lambda: _serialize_objects(state.loss, "loss"))
    weights = getattr(compile_loss, "_user_loss_weights", None)
    store("loss_weights", lambda: weights if _is_plain(weights) else _raise())
    store("metrics", lambda: _serialize_objects(getattr(compile_metrics, "_user_metrics", None),
                                                "metric"))
    store("weighted_metrics", lambda: _serialize_objects(
        getattr(compile_metrics, "_user_weighted", None), "metric"))
    config["run_eagerly"] = bool(state.run_eagerly)
    config["steps_per_execution"] = int(state.steps_per_execution)
    store("jit_compile", lambda: state.jit_compile if _is_plain(state.jit_compile) else _raise())
    config["auto_scale_loss"] = bool(state.auto_scale_loss)
    config["unserialized"] = unserialized
    return config


def _raise() -> Any:
    raise _Unserializable()


def _compile_from_config(model: Any, config: Dict[str, Any], custom_objects: Any) -> bool:
    """``model.compile(**config)``; False (with a warning) when parts are missing."""
    missing = [name for name in config.get("unserialized", []) if name != "optimizer"]
    if missing:
        warnings.warn(
            f"The compile() arguments {missing} of the saved model are Python objects that "
            "the file does not hold, so the model was not compiled; call compile() yourself "
            "(before load_model, to also restore the optimizer state).", stacklevel=3)
        return False
    kwargs = {k: v for k, v in config.items() if k not in ("unserialized", "optimizer")}
    kwargs["loss"] = _deserialize_objects(kwargs.get("loss"), custom_objects)
    kwargs["metrics"] = _deserialize_objects(kwargs.get("metrics"), custom_objects)
    kwargs["weighted_metrics"] = _deserialize_objects(kwargs.get("weighted_metrics"),
                                                      custom_objects)
    optimizer_config = config.get("optimizer")
    if optimizer_config is None:
        warnings.warn("The optimizer of the saved model is not a built-in torch or torchfit "
                      "optimizer, so the model was compiled with the default one; compile() "
                      "it yourself before load_model to restore its state.", stacklevel=3)
        kwargs["optimizer"] = "rmsprop"
    elif optimizer_config.get("kind") == "torch":
        cls = getattr(torch.optim, str(optimizer_config.get("class_name")), None)
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)
                and cls is not torch.optim.Optimizer):
            raise ValueError(f"The saved optimizer {optimizer_config.get('class_name')!r} is not "
                             "a torch.optim optimizer class; compile() the model yourself "
                             "before load_model.")
        params = [p for p in model.parameters() if p.requires_grad]
        kwargs["optimizer"] = cls(params, **optimizer_config["defaults"])
    else:
        from . import optimizers as optimizers_module

        kwargs["optimizer"] = optimizers_module.deserialize(
            {k: v for k, v in optimizer_config.items() if k != "kind"}, custom_objects)
    model.compile(**kwargs)
    return optimizer_config is not None


# ------------------------------------------------------------------------ the model
def _training_position(model: Any) -> Tuple[int, int]:
    history = getattr(model, "history", None) if hasattr(type(model), "history") else None
    epochs = list(getattr(history, "epoch", []) or [])
    return (epochs[-1] + 1 if epochs else 0), 0


def _iterations(optimizer: Any) -> Optional[int]:
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    value = getattr(optimizer, "iterations", None)
    if value is not None:
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    for state in getattr(optimizer, "state", {}).values():
        step = state.get("step") if isinstance(state, dict) else None
        if step is not None:
            return int(step)
    return None


def save_model(model: Any, filepath: Any, overwrite: bool = True, include_optimizer: bool = True,
               pickle_model: bool = False, epoch: Optional[int] = None,
               step: Optional[int] = None) -> None:
    """Write weights, optimizer state, compile config, epoch and step to ``filepath``.

    Args:
        model: the module (compiled or not).
        filepath: where to write (atomically).
        overwrite: replace an existing file (else ``FileExistsError``).
        include_optimizer: store the optimizer's ``state_dict``.
        pickle_model: also store the module object itself (pickled), so
            ``load_model`` can rebuild it without ``model=``; such a file is
            only readable with ``weights_only=False``.
        epoch: completed epochs (default: from ``model.history``).
        step: batches done in the current epoch (default 0).
    """
    _check_model(model)
    filepath = _check_path(filepath)
    _check_overwrite(filepath, overwrite)
    _check_bool(include_optimizer, "include_optimizer")
    _check_bool(pickle_model, "pickle_model")
    for name, value in (("epoch", epoch), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise TypeError(f"Argument `{name}` must be an integer >= 0 or None. "
                            f"Received: {_received(value)}.")
    default_epoch, default_step = _training_position(model)
    state = model.__dict__.get("_torchfit")
    optimizer = getattr(state, "optimizer", None) if state is not None else None
    archive: Dict[str, Any] = {
        "format": MODEL_FORMAT,
        "version": FORMAT_VERSION,
        "class_name": type(model).__qualname__,
        "weights": _state_dict(model),
        "optimizer": None,
        "compile_config": compile_config(model),
        "epoch": default_epoch if epoch is None else int(epoch),
        "step": default_step if step is None else int(step),
        "iterations": _iterations(optimizer) if optimizer is not None else None,
    }
    if include_optimizer and optimizer is not None:
        archive["optimizer"] = optimizer.state_dict()
    if pickle_model:
        archive["model"] = model
    atomic_save(archive, filepath)


def load_model(filepath: Any, model: Any = None, compile: bool = True,
               weights_only: bool = True, custom_objects: Optional[Dict[str, Any]] = None,
               map_location: Any = "cpu") -> nn.Module:
    """Restore a model saved by ``save_model`` (or weights saved by ``save_weights``).

    A torch file does not describe the architecture, so pass the module to
    fill as ``model=`` (same class and sizes). Its weights are loaded; if
    ``compile`` is true and the model is not compiled yet, it is compiled
    with the saved configuration; the optimizer state is then restored.
    The saved ``epoch``/``step`` are read with ``read_checkpoint(path)``.

    Only files written with ``pickle_model=True`` can rebuild the module
    without ``model=``; that needs ``weights_only=False``, which may run
    arbitrary code from the file: use it for files you trust only.
    """
    filepath = _check_path(filepath)
    _check_bool(compile, "compile")
    _check_bool(weights_only, "weights_only")
    if model is not None:
        _check_model(model)
    if custom_objects is not None and not isinstance(custom_objects, dict):
        raise TypeError(f"Argument `custom_objects` must be a dict or None. "
                        f"Received: {_received(custom_objects)}.")
    if model is None and weights_only:
        raise ValueError(
            "Argument `model` is required: a torch file holds weights, not the model's code. "
            "Expected model=<an instance of the saved architecture>; received None. (Files "
            "written with save(..., pickle_model=True) can be loaded without it by passing "
            "weights_only=False explicitly, for trusted files only.)"
        )
    archive = read_checkpoint(filepath, weights_only=weights_only, map_location=map_location)
    is_model_file = isinstance(archive, dict) and archive.get("format") == MODEL_FORMAT
    if is_model_file and archive.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"The file {filepath} was written by a newer torchfit (format version "
                         f"{archive['version']}; this one reads up to {FORMAT_VERSION}).")
    if model is None:
        model = archive.get("model") if is_model_file else None
        if not isinstance(model, nn.Module):
            raise ValueError(
                f"The file {filepath} does not hold a pickled model (it was not written with "
                "pickle_model=True). Expected model=<an instance of the saved architecture>; "
                "received None."
            )
    weights = _weights_from(archive, filepath)
    weights = check_state_dict(model, weights, filepath)
    # All or nothing: if compiling or the optimizer state fails below, the model
    # gets its own weights and training state back.
    previous_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    previous_state = model.__dict__.get("_torchfit")
    try:
        return _fill_model(model, archive, weights, is_model_file, compile, custom_objects,
                           filepath)
    except BaseException:
        with torch.no_grad():
            model.load_state_dict(previous_weights)
        if previous_state is None:
            model.__dict__.pop("_torchfit", None)
        else:
            model.__dict__["_torchfit"] = previous_state
        raise


def _fill_model(model: nn.Module, archive: Any, weights: Dict[str, Any], is_model_file: bool,
                compile: bool, custom_objects: Any, filepath: str) -> nn.Module:
    """The part of ``load_model`` that changes ``model`` (undone on failure)."""
    with torch.no_grad():
        model.load_state_dict(weights)
    if not is_model_file or not compile:
        return model
    from .module import KerasStyleModule, keras_style

    config = archive.get("compile_config")
    if not isinstance(model, KerasStyleModule):
        if config is None:
            return model  # nothing to compile: the module stays as it was
        model = keras_style(model)
    restore_optimizer = model.compiled
    if not model.compiled and config is not None:
        restore_optimizer = _compile_from_config(model, config, custom_objects)
    optimizer_state = archive.get("optimizer")
    if restore_optimizer and optimizer_state is not None and model.optimizer is not None:
        optimizer = model.optimizer  # a loss-scale wrapper restores its scaler too
        try:
            optimizer.load_state_dict(optimizer_state)
        except (ValueError, KeyError, RuntimeError) as error:
            raise ValueError(
                f"The optimizer state in {filepath} does not fit the model's optimizer "
                f"({type(optimizer).__name__}): {error}"
            ) from None
    return model


# ------------------------------------------------------------------------ RNG state
def get_rng_state() -> Dict[str, Any]:
    """Python, NumPy (global), torch CPU and CUDA generator states, as tensors and
    plain values (storable with ``torch.save`` and loadable with weights_only)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: Dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": None,
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state({
        "bit_generator": np_state["bit_generator"],
        "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": np_state["pos"]},
        "has_gauss": np_state["has_gauss"],
        "gauss": np_state["gauss"],
    })
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            warnings.warn(f"The CUDA RNG state was saved for {len(cuda)} devices and this "
                          f"machine has {torch.cuda.device_count()}; it was not restored.",
                          stacklevel=2)


# -------------------------------------------------------------------------- summary
def _readable_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _shape_text(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_shape_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shape_text(v)}" for k, v in value.items()) + "}"
    return type(value).__name__


def _count(tensors: Any) -> Tuple[int, int]:
    numel = 0
    size = 0
    for tensor in tensors:
        numel += tensor.numel()
        size += tensor.numel() * tensor.element_size()
    return numel, size


def _rows(model: nn.Module, expand_nested: bool) -> List[Tuple[str, int, nn.Module]]:
    """(name, depth, module) for each displayed module, in registration order."""
    rows: List[Tuple[str, int, nn.Module]] = []

    def walk(module: nn.Module, prefix: str, depth: int) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            rows.append((full, depth, child))
            if expand_nested:
                walk(child, f"{full}.", depth + 1)

    walk(model, "", 0)
    return rows


def _fit_text(text: str, width: int) -> List[str]:
    """Wrap ``text`` into lines of at most ``width`` characters."""
    width = max(width, 1)
    return [text[i:i + width] for i in range(0, len(text), width)] or [""]


def summary(model: Any, line_length: Optional[int] = None, positions: Optional[Sequence[float]] = None,
            print_fn: Optional[Callable[[str], Any]] = None, expand_nested: bool = False,
            show_trainable: bool = False, layer_range: Optional[Sequence[str]] = None,
            sample_input: Any = None) -> None:
    """Print a Keras-style table of the model's layers and parameter counts.

    Rows are the direct submodules (all nested ones, indented, with
    ``expand_nested=True``): name and type, output shape and parameter count
    (parameters and floating-point buffers, as Keras counts its weights).
    Output shapes are shown when ``sample_input`` is given: the model is run
    once on it (eval mode, no gradients; the model's mode is restored),
    called like in ``fit`` (a tuple as ``model(*x)``, a dict as
    ``model(**x)``). Totals count trainable parameters, and as non-trainable
    the frozen parameters and floating-point buffers (e.g. BatchNorm
    statistics), with their memory.

    Args:
        line_length: total width of the table (default 80, 98 with trainable column).
        positions: column ends, as fractions of ``line_length`` or absolute widths.
        print_fn: called once with the whole table (default ``print``).
        expand_nested: list nested submodules too.
        show_trainable: add a column saying whether each row is trainable.
        layer_range: ``[first_name, last_name]``: show only the rows between them.
        sample_input: an example batch, to show output shapes.
    """
    _check_model(model)
    if line_length is not None and (isinstance(line_length, bool) or not isinstance(line_length, int)
                                    or line_length < 20):
        raise TypeError(
            f"Argument `line_length` must be an integer >= 20 or None. Received: "
            f"{_received(line_length)}. (To show output shapes, pass the example input as "
            "sample_input=...)")
    if print_fn is not None and not callable(print_fn):
        raise TypeError(f"Argument `print_fn` must be callable or None. Received: "
                        f"{_received(print_fn)}.")
    _check_bool(expand_nested, "expand_nested")
    _check_bool(show_trainable, "show_trainable")
    columns = 4 if show_trainable else 3
    line_length = line_length or (98 if show_trainable else 80)
    if positions is None:
        positions = [0.45, 0.84, 1.0] if not show_trainable else [0.4, 0.72, 0.88, 1.0]
    if (not isinstance(positions, (list, tuple)) or len(positions) != columns
            or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in positions)):
        raise ValueError(f"Argument `positions` must be a list of {columns} numbers (column ends). "
                         f"Received: {_received(positions)}.")
    if all(p <= 1 for p in positions):
        ends = [int(line_length * p) for p in positions]
    else:
        ends = [int(p) for p in positions]
    if any(b <= a for a, b in zip([0] + ends, ends)):
        raise ValueError(f"Argument `positions` must be increasing. Received: {list(positions)}.")

    rows = _rows(model, expand_nested)
    if layer_range is not None:
        if (not isinstance(layer_range, (list, tuple)) or len(layer_range) != 2
                or not all(isinstance(n, str) for n in layer_range)):
            raise ValueError("Argument `layer_range` must be a list of two layer names "
                             f"[first, last]. Received: {_received(layer_range)}.")
        names = [name for name, _, _ in rows]
        for name in layer_range:
            if name not in names:
                raise ValueError(f"Argument `layer_range`: no layer named {name!r}. "
                                 f"Layers: {_short_list(names)}.")
        first, last = names.index(layer_range[0]), names.index(layer_range[1])
        if last < first:
            raise ValueError("Argument `layer_range` must list the first layer before the "
                             f"last one. Received: {list(layer_range)}.")
        rows = rows[first:last + 1]

    shapes: Dict[int, List[str]] = {}
    if sample_input is not None:
        shapes = _output_shapes(model, [m for _, _, m in rows], sample_input)

    direct = [(name, p) for name, p in model.named_parameters(recurse=False)]
    headers = ["Layer (type)", "Output Shape", "Param #"] + (["Trainable"] if show_trainable else [])
    widths = [b - a for a, b in zip([0] + ends, ends)]
    table: List[List[str]] = []
    for name, depth, module in rows:
        params = list(module.parameters())
        trainable = [p.requires_grad for p in params]
        weights = params + [b for b in module.buffers() if b.is_floating_point()]
        cells = [
            "  " * depth + f"{name} ({type(module).__name__})",
            " / ".join(shapes.get(id(module), [])) or ("?" if sample_input is None else "-"),
            f"{sum(w.numel() for w in weights):,}",
        ]
        if show_trainable:
            cells.append("-" if not params else "Y" if all(trainable) else "N" if not any(trainable)
                         else "partial")
        table.append(cells)
    for name, parameter in direct:
        cells = [f"{name} (Parameter)", str(tuple(parameter.shape)), f"{parameter.numel():,}"]
        if show_trainable:
            cells.append("Y" if parameter.requires_grad else "N")
        table.append(cells)

    def line(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * (w - 1) for w in widths) + right

    def row_lines(cells: List[str], sep: str) -> List[str]:
        wrapped = [_fit_text(c, w - 3) for c, w in zip(cells, widths)]
        out = []
        for i in range(max(len(w) for w in wrapped)):
            parts = []
            for j, (lines, w) in enumerate(zip(wrapped, widths)):
                text = lines[i] if i < len(lines) else ""
                numeric = j == 2
                parts.append(" " + (text.rjust(w - 3) if numeric else text.ljust(w - 3)) + " ")
            out.append(sep + sep.join(parts) + sep)
        return out

    all_params = list(model.parameters())
    trainable_count, trainable_size = _count(p for p in all_params if p.requires_grad)
    frozen = [p for p in all_params if not p.requires_grad]
    buffers = [b for _, b in model.named_buffers() if b.is_floating_point()]
    frozen_count, frozen_size = _count(frozen + buffers)
    lines = [f'Model: "{type(model).__name__}"',
             line("┏", "┳", "┓", "━")]
    lines += [s.replace("│", "┃") for s in row_lines(headers, "│")]
    lines.append(line("┡", "╇", "┩", "━"))
    for cells in table:
        lines += row_lines(cells, "│")
    lines.append(line("└", "┴", "┘", "─"))
    total_count = trainable_count + frozen_count
    lines.append(f" Total params: {total_count:,} ({_readable_size(trainable_size + frozen_size)})")
    lines.append(f" Trainable params: {trainable_count:,} ({_readable_size(trainable_size)})")
    lines.append(f" Non-trainable params: {frozen_count:,} ({_readable_size(frozen_size)})")
    state = model.__dict__.get("_torchfit")
    optimizer = getattr(state, "optimizer", None) if state is not None else None
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    if optimizer is not None and getattr(optimizer, "state", None):
        tensors = [v for s in optimizer.state.values() if isinstance(s, dict)
                   for v in s.values() if isinstance(v, torch.Tensor)]
        count, size = _count(tensors)
        if count:
            lines.append(f" Optimizer params: {count:,} ({_readable_size(size)})")
    (print_fn or print)("\n".join(lines))


def _output_shapes(model: nn.Module, modules: List[nn.Module], sample_input: Any) -> Dict[int, List[str]]:
    from .loop import model_device_and_dtype, move_to
    from .module import call_model

    shapes: Dict[int, List[str]] = {}

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        text = _shape_text(output)
        seen = shapes.setdefault(id(module), [])
        if text not in seen:
            seen.append(text)

    if isinstance(sample_input, np.ndarray) or (
            isinstance(sample_input, (list, tuple, dict)) and not isinstance(sample_input, str)):
        from .data.arrays import convert_structure, is_array_structure

        if is_array_structure(sample_input):
            sample_input = convert_structure(sample_input, "sample_input")
    if not isinstance(sample_input, (torch.Tensor, list, tuple, dict)):
        raise TypeError("Argument `sample_input` must be a tensor, a NumPy array, or a "
                        "tuple/list/dict of them (one example batch). Received: "
                        f"{_received(sample_input)}.")
    device, dtype = model_device_and_dtype(model)
    batch = move_to(sample_input, device, dtype)
    handles = [m.register_forward_hook(hook) for m in modules]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            call_model(model, batch)
    except Exception as error:
        raise ValueError(
            f"Argument `sample_input` could not be passed through the model "
            f"({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}). "
            "Expected one example batch in the format fit() takes as `x`."
        ) from error
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return shapes
