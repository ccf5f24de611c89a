"""``save_model``/``load_model``: weights, optimizer state, training position
and the ``compile()`` arguments, stored without pickling code."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from .. import state as training_state
from ..compilation import restorable_jit_compile
from ..distributed import strategies
from ..distributed.process_group import is_main_process
from ..optimizers._unwrap import unwrap_loss_scale
from ..validation import _received, check_bool, check_model, check_path
from .compile_args import (Unserializable, deserialize_objects, deserialize_optimizer, is_plain,
                           optimizer_identity, serialize_jit_compile, serialize_objects,
                           serialize_optimizer)
from .optimizer_state import check_optimizer_state
from .lr_schedulers import lr_scheduler_record, restore_lr_scheduler
from .files import FORMAT_VERSION, MODEL_FORMAT, _check_overwrite, atomic_save, read_checkpoint
from .weights import (_state_dict, _weights_from, check_state_dict, load_tagged_state, tag_weights,
                      weights_kind)


# The module layer's ``KerasStyleModule`` and ``keras_style()``, registered by
# torchfit.module when it is imported: load_model wraps a plain module with them
# to compile it, and saving never imports the layers above it.
_KERAS_STYLE: Dict[str, Any] = {}


def register_keras_style(cls: type, wrap: Callable[[nn.Module], nn.Module]) -> None:
    """Tell ``load_model`` how to give a plain module the training API
    (``cls``: the keras-style base class; ``wrap``: makes a module one)."""
    _KERAS_STYLE["class"] = cls
    _KERAS_STYLE["wrap"] = wrap


# ----------------------------------------------------------------- compile config
def compile_config(model: Any) -> Optional[Dict[str, Any]]:
    """What ``compile()`` was given, as far as it can be stored without pickling
    code (see :mod:`.compile_args`); the rest is listed under ``"unserialized"``."""
    found = training_state.of(model)
    if found is None or not found.compiled.compiled:
        return None
    state = found.compiled
    config: Dict[str, Any] = {}
    unserialized: List[str] = []

    def store(name: str, make: Callable[[], Any]) -> None:
        try:
            config[name] = make()
        except Unserializable:
            unserialized.append(name)

    compile_loss = state.compile_loss
    compile_metrics = state.compile_metrics
    # A loss-scale wrapper is stored whole when it can be: its state_dict holds the scaler's.
    store("optimizer", lambda: serialize_optimizer(state.optimizer, model))
    store("loss", lambda: serialize_objects(state.loss, "loss"))
    weights = getattr(compile_loss, "_user_loss_weights", None)
    store("loss_weights", lambda: weights if is_plain(weights) else _raise())
    store("metrics", lambda: serialize_objects(getattr(compile_metrics, "_user_metrics", None),
                                               "metric"))
    store("weighted_metrics", lambda: serialize_objects(
        getattr(compile_metrics, "_user_weighted", None), "metric"))
    config["run_eagerly"] = bool(state.run_eagerly)
    config["steps_per_execution"] = int(state.steps_per_execution)
    config["jit_compile"] = serialize_jit_compile(state.jit_compile)
    config["auto_scale_loss"] = bool(state.auto_scale_loss)
    config["unserialized"] = unserialized
    return config


def _raise() -> Any:
    raise Unserializable()


_COMPILE_KEYS = ("loss", "loss_weights", "metrics", "weighted_metrics", "run_eagerly",
                 "steps_per_execution", "jit_compile", "auto_scale_loss")


def _jit_compile_from_file(value: Any) -> Any:
    """The saved ``jit_compile`` reduced to what a file may set (see
    ``compilation.restorable_jit_compile``), with a warning for what is dropped."""
    kept, dropped = restorable_jit_compile(value)
    if dropped:
        warnings.warn(
            f"The saved jit_compile settings {dropped} were not restored: options that reach "
            "torch.compile's backend are never taken from a file. Call compile(jit_compile=...) "
            "yourself before load_model to use them.", stacklevel=4)
    return kept


def _compile_from_config(model: Any, config: Dict[str, Any], custom_objects: Any) -> bool:
    """``model.compile(**config)``; False (with a warning) when parts are missing."""
    missing = [name for name in config.get("unserialized", []) if name != "optimizer"]
    if missing:
        warnings.warn(
            f"The compile() arguments {missing} of the saved model are Python objects that "
            "the file does not hold, so the model was not compiled; call compile() yourself "
            "(before load_model, to also restore the optimizer state).", stacklevel=3)
        return False
    kwargs = {k: config[k] for k in _COMPILE_KEYS if k in config}
    for name in ("loss", "metrics", "weighted_metrics"):
        kwargs[name] = deserialize_objects(kwargs.get(name), custom_objects)
    if "jit_compile" in kwargs:
        kwargs["jit_compile"] = _jit_compile_from_file(kwargs["jit_compile"])
    optimizer_config = config.get("optimizer")
    if optimizer_config is None:
        warnings.warn("The optimizer of the saved model is not a built-in torch or torchfit "
                      "optimizer, so the model was compiled with the default one; compile() "
                      "it yourself before load_model to restore its state.", stacklevel=3)
        kwargs["optimizer"] = "rmsprop"
    else:
        kwargs["optimizer"] = deserialize_optimizer(optimizer_config, model, custom_objects)
    model.compile(**kwargs)
    return optimizer_config is not None


# ------------------------------------------------------------------------ the model
def _training_position(model: Any) -> Tuple[int, int]:
    history = getattr(model, "history", None) if hasattr(type(model), "history") else None
    epochs = list(getattr(history, "epoch", []) or [])
    return (epochs[-1] + 1 if epochs else 0), 0


def _iterations(optimizer: Any) -> Optional[int]:
    optimizer = unwrap_loss_scale(optimizer)
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
    check_model(model)
    filepath = check_path(filepath)
    _check_overwrite(filepath, overwrite)
    check_bool(include_optimizer, "include_optimizer")
    check_bool(pickle_model, "pickle_model")
    for name, value in (("epoch", epoch), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise TypeError(f"Argument `{name}` must be an integer >= 0 or None. "
                            f"Received: {_received(value)}.")
    archive = _archive(model, _state_dict(model), include_optimizer, epoch, step)
    if pickle_model:
        archive["model"] = model
    atomic_save(archive, filepath)


def _optimizer(model: nn.Module) -> Any:
    state = training_state.of(model)
    return state.compiled.optimizer if state is not None else None


def _archive(model: nn.Module, weights: Dict[str, Any], include_optimizer: bool,
             epoch: Optional[int], step: Optional[int], optimizer_state: Any = None,
             class_name: Optional[str] = None) -> Dict[str, Any]:
    """The dict ``save_model`` writes (``optimizer_state``: None takes the
    optimizer's own ``state_dict()``)."""
    default_epoch, default_step = _training_position(model)
    optimizer = _optimizer(model)
    archive: Dict[str, Any] = {
        "format": MODEL_FORMAT,
        "version": FORMAT_VERSION,
        "class_name": class_name or type(model).__qualname__,
        "weights": weights,
        "optimizer": None,
        "compile_config": compile_config(model),
        "epoch": default_epoch if epoch is None else int(epoch),
        "step": default_step if step is None else int(step),
        "iterations": _iterations(optimizer) if optimizer is not None else None,
    }
    if include_optimizer and optimizer is not None:
        archive["optimizer"] = optimizer.state_dict() if optimizer_state is None else optimizer_state
        archive["optimizer_class"] = optimizer_identity(optimizer)
        archive["lr_scheduler"] = lr_scheduler_record(model)
    return archive


def checkpoint_state(model: nn.Module, weights_only: bool = False, epoch: Optional[int] = None,
                     step: Optional[int] = None) -> Optional[Any]:
    """What a checkpoint of ``model`` holds, for :func:`atomic_save`: the
    ``state_dict`` (``weights_only``) or the dict ``save_model`` writes (with
    the optimizer state, ``epoch`` and ``step``).

    For an FSDP-sharded model over several processes this is a collective
    (call it on every process): the weights and the optimizer state are
    gathered into full CPU tensors that load into the plain, unwrapped model
    and its optimizer; rank 0 gets the result, the other processes None.
    """
    if not strategies._gathers_checkpoints(model):
        if weights_only:
            return _state_dict(model)
        return _archive(model, _state_dict(model), True, epoch, step)
    weights = strategies.full_state_dict(model)
    optimizer = _optimizer(model)
    optimizer_state = None
    if not weights_only and optimizer is not None:
        optimizer_state = strategies._full_optimizer_state_dict(model, optimizer)
    if not is_main_process():
        return None
    if weights_only:
        return tag_weights(model, weights)
    fsdp_module, _ = strategies._fsdp_api()
    plain = next((c for c in type(model).__mro__ if not issubclass(c, fsdp_module)), type(model))
    return _archive(model, weights, True, epoch, step, optimizer_state, plain.__qualname__)


def load_model(filepath: Any, model: Any = None, compile: bool = True,
               weights_only: bool = True, custom_objects: Optional[Dict[str, Any]] = None,
               map_location: Any = "cpu") -> nn.Module:
    """Restore a model saved by ``save_model`` (or weights saved by ``save_weights``).

    A torch file does not describe the architecture, so pass the module to
    fill as ``model=`` (same class and sizes). Its weights are loaded; if
    ``compile`` is true and the model is not compiled yet, it is compiled
    with the saved configuration; the optimizer state is then restored.
    The saved ``epoch``/``step`` are read with ``read_checkpoint(path)``.

    Names in the saved configuration resolve only to torchfit's catalogs, the
    allow-listed ``torch.nn`` losses, ``torch.optim`` optimizers and
    torchmetrics metrics, or the objects given in ``custom_objects`` (by name):
    nothing the file names is imported. A saved ``jit_compile`` comes back as
    ``True``/``False``/``"auto"`` or ``mode``/``fullgraph``/``dynamic`` only.
    An optimizer state written by another optimizer than the model's is
    refused; on any error the model is left as it was.

    Only files written with ``pickle_model=True`` can rebuild the module
    without ``model=``; that needs ``weights_only=False``, which may run
    arbitrary code from the file: use it for files you trust only.
    """
    filepath = check_path(filepath)
    check_bool(compile, "compile")
    check_bool(weights_only, "weights_only")
    if model is not None:
        check_model(model)
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
    previous_state = training_state.snapshot(model)
    try:
        return _fill_model(model, archive, weights, is_model_file, compile, custom_objects,
                           filepath)
    except BaseException:
        with torch.no_grad():
            model.load_state_dict(previous_weights)
        training_state.restore(model, previous_state)
        raise


def _fill_model(model: nn.Module, archive: Any, weights: Dict[str, Any], is_model_file: bool,
                compile: bool, custom_objects: Any, filepath: str) -> nn.Module:
    """The part of ``load_model`` that changes ``model`` (undone on failure)."""
    if not is_model_file:  # weights only: where the file says they belong
        load_tagged_state(model, weights, weights_kind(weights, filepath))
        return model
    with torch.no_grad():
        model.load_state_dict(weights)
    if not compile:
        return model
    config = archive.get("compile_config")
    if not isinstance(model, _KERAS_STYLE["class"]):
        if config is None:
            return model  # nothing to compile: the module stays as it was
        model = _KERAS_STYLE["wrap"](model)
    restore_optimizer = model.compiled
    if not model.compiled and config is not None:
        restore_optimizer = _compile_from_config(model, config, custom_objects)
    optimizer_state = archive.get("optimizer")
    if restore_optimizer and optimizer_state is not None and model.optimizer is not None:
        optimizer = model.optimizer  # a loss-scale wrapper restores its scaler too
        check_optimizer_state(optimizer, optimizer_state, _saved_optimizer_identity(archive),
                              filepath)
        try:
            optimizer.load_state_dict(optimizer_state)
        except (ValueError, KeyError, RuntimeError) as error:
            raise ValueError(
                f"The optimizer state in {filepath} does not fit the model's optimizer "
                f"({type(optimizer).__name__}): {error}"
            ) from None
    if restore_optimizer and optimizer_state is not None:
        restore_lr_scheduler(model, archive.get("lr_scheduler"), custom_objects)
    return model


def _saved_optimizer_identity(archive: Dict[str, Any]) -> Optional[str]:
    """The recorded identity of the optimizer that wrote the state (files from
    before it was recorded: read from the compile config)."""
    identity = archive.get("optimizer_class")
    if isinstance(identity, str):
        return identity
    entry = (archive.get("compile_config") or {}).get("optimizer")
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        return None
    prefix = {"torch": "torch.optim", "torchfit": "torchfit.optimizers"}.get(entry.get("kind"))
    return f"{prefix}.{entry['class_name']}" if prefix else None
