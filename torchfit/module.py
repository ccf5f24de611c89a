"""``KerasStyleModule`` and ``keras_style()``: Keras's training API on an ``nn.Module``.

This file is deliberately thin: it validates arguments, keeps the model's
``TrainingState`` (declared in ``state.py``) and defines the overridable steps. Iteration lives in ``loop.py``,
input handling in ``data/``, loss/metric structure in ``compile_utils.py``.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from . import optimizers as optimizers_module
from . import tree
from . import validation as check
from . import precision
from . import state as training_state
from .state import CompiledState, TrainingState
from . import saving
from .compilation import check_jit_compile, compile_step
from .callbacks.torch_lr_scheduler import TorchLRScheduler, as_torch_lr_scheduler
from .compile_utils import ACCURACY_ALIASES, CROSSENTROPY_ALIASES, CompileLoss, CompileMetrics
from .batch import (ROUTES, batch_size_of, call_model, concat_outputs, model_device_and_dtype,
                    move_to, pack_x_y_sample_weight, run_step, unpack_x_y_sample_weight)
from .data import get_adapter, get_validation_adapter
from .distributed import all_processes_agree
from .data.arrays import ArrayDataAdapter, as_tensors, convert_leaves, is_array_structure, rows_of
from .data.weights import check_class_weight_keys, validate_class_weight
from .optimizers._unwrap import unwrap_loss_scale
from .logs import LazyLogs, to_python
from .utils.inference import grad_free, register_step_owner
from .utils.training_mode import training_mode
from .torch_loss import check_torch_losses
from .loop import Loop
from .saving.model_file import register_keras_style
from .summary import records_shapes_on_first_call, summary as print_summary
from . import losses as losses_module
from . import metrics as metrics_module

__all__ = ["KerasStyleModule", "keras_style"]


def _state_property(part: str, name: str, doc: str) -> property:
    """A model attribute kept in one part of its ``TrainingState`` (see ``state.py``)."""
    def getter(self: Any) -> Any:
        return getattr(getattr(self._torchfit, part), name)

    def setter(self: Any, value: Any) -> None:
        setattr(getattr(self._torchfit, part), name, value)

    return property(getter, setter, doc=doc)


@register_step_owner  # grad_free compares steps with these
class KerasStyleModule:
    """Mixin giving an ``nn.Module`` Keras 3's ``compile``/``fit``/``evaluate``/``predict``.

    Put it first in the bases, before ``nn.Module`` (whose own ``compile`` is
    ``torch.compile`` in place)::

        class Net(torchfit.KerasStyleModule, nn.Module): ...

    For a model that already exists, use :func:`keras_style`.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        mro = cls.__mro__
        if nn.Module in mro and mro.index(nn.Module) < mro.index(KerasStyleModule):
            raise TypeError(
                f"class {cls.__name__}: `KerasStyleModule` must come before "
                "`nn.Module` (and any nn.Module subclass) in the bases, otherwise "
                "nn.Module.compile would silently replace Keras's compile(). Expected "
                f"`class {cls.__name__}(torchfit.KerasStyleModule, ...)`; received bases "
                f"{tuple(b.__name__ for b in cls.__bases__)}."
            )

    # ------------------------------------------------------------------ state
    @property
    def _torchfit(self) -> TrainingState:
        state = self.__dict__.get(training_state.ATTRIBUTE)
        if state is None:
            state = TrainingState()
            self.__dict__[training_state.ATTRIBUTE] = state
        return state

    def __getstate__(self) -> Dict[str, Any]:
        # Copies and pickles carry the module, not its compiled training state.
        state = dict(self.__dict__)
        state.pop(training_state.ATTRIBUTE, None)
        return state

    optimizer = _state_property("compiled", "optimizer", "The torch optimizer set by ``compile``.")
    loss = _state_property("compiled", "loss", "The ``loss`` argument given to ``compile``.")
    compiled = _state_property("compiled", "compiled", "Whether ``compile`` has been called.")
    history = _state_property("settings", "history", "The ``History`` of the last ``fit``.")
    stop_training = _state_property("run", "stop_training", "Set True (e.g. in a callback) to end ``fit``.")
    stop_evaluating = _state_property("run", "stop_evaluating", "Set True to end ``evaluate``.")
    stop_predicting = _state_property("run", "stop_predicting", "Set True to end ``predict``.")
    run_eagerly = _state_property("compiled", "run_eagerly", "Never compile the step functions.")
    jit_compile = _state_property("compiled", "jit_compile", "Compile step functions with torch.compile.")
    steps_per_execution = _state_property("compiled", "steps_per_execution", "Steps per callback batch call.")
    @property
    def dtype_policy(self) -> precision.DTypePolicy:
        """This model's dtype policy (the global one unless set)."""
        return self._torchfit.settings.dtype_policy or precision.global_policy()

    @dtype_policy.setter
    def dtype_policy(self, policy: Any) -> None:
        self._torchfit.settings.dtype_policy = precision.as_policy(policy, "dtype_policy")

    @property
    def nan_policy(self) -> Optional[str]:
        """What a non-finite training loss does: ``None`` (nothing is checked, no
        host sync), ``"raise"`` (``FloatingPointError``), ``"skip"`` (the step is
        not applied) or ``"stop"`` (not applied, and ``fit`` ends after the batch)."""
        return self._torchfit.settings.nan_policy

    @nan_policy.setter
    def nan_policy(self, value: Optional[str]) -> None:
        if value not in NAN_POLICIES:
            raise ValueError(
                f"Argument `nan_policy` must be one of {NAN_POLICIES}. Received: {value!r}."
            )
        self._torchfit.settings.nan_policy = value

    @property
    def input_nan_policy(self) -> Optional[str]:
        """What non-finite values (NaN, inf) in the floating-point inputs do:
        ``None`` (the default: nothing is checked, no host sync), ``"warn"``
        (a ``UserWarning`` naming ``x``/``y``/``sample_weight`` and the batch,
        which is still used) or ``"raise"`` (a ``ValueError`` before the batch
        reaches the model, so no weights change). Checked for every batch of
        ``fit`` (validation included), ``evaluate``, ``predict`` and the
        ``*_on_batch`` methods; it costs one host sync per batch.

        Not a Keras option (Keras has none): set it on the model, e.g.
        ``model.input_nan_policy = "raise"``. It survives ``compile()``."""
        return self._torchfit.settings.input_nan_policy

    @input_nan_policy.setter
    def input_nan_policy(self, value: Optional[str]) -> None:
        if value not in INPUT_NAN_POLICIES:
            raise ValueError(
                f"Argument `input_nan_policy` must be one of {INPUT_NAN_POLICIES}. "
                f"Received: {value!r}."
            )
        self._torchfit.settings.input_nan_policy = value

    def _autocast(self) -> Any:
        policy = self._torchfit.settings.dtype_policy or precision.global_policy()
        if not policy.is_mixed:
            return _NO_AUTOCAST
        device = next(self.parameters(), torch.empty(0)).device
        return precision.autocast(policy, device)

    @property
    def lr_scheduler(self) -> Optional[TorchLRScheduler]:
        """The ``TorchLRScheduler`` set by ``compile(lr_scheduler=...)`` (or None);
        assign any form ``compile`` accepts to replace it."""
        return self._torchfit.compiled.lr_scheduler

    @lr_scheduler.setter
    def lr_scheduler(self, value: Any) -> None:
        self._require_compiled("lr_scheduler")
        optimizer = self._torchfit.compiled.optimizer
        self._torchfit.compiled.lr_scheduler = as_torch_lr_scheduler(
            value, unwrap_loss_scale(optimizer))

    resume_point = _state_property("run", "resume_point", "A ``torchfit.loop.ResumePoint`` for the next ``fit`` (set by callbacks).")

    # --------------------------------------------------------------- compile
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
        lr_scheduler: Any = None,
    ) -> None:
        """Configure the model for training (Keras's ``Model.compile``).

        Args:
            optimizer: a Keras alias (``"adam"``...), a ``torchfit.optimizers``
                instance (bound to this model's parameters here) or a ready
                ``torch.optim.Optimizer``.
            loss: a Keras loss name, a ``torchfit.losses`` object/function
                (``fn(y_true, y_pred)``), a torch loss module (``(input, target)``),
                or a list/dict of these, one per output.
            loss_weights: a float, or a list/dict with one weight per output.
            metrics: metrics computed without sample weights; names, objects or
                functions, per output as a list or dict.
            weighted_metrics: metrics weighted by ``sample_weight``/``class_weight``.
            run_eagerly: never ``torch.compile`` the steps.
            steps_per_execution: steps run between two batch-level callback calls.
            jit_compile: ``"auto"`` (eager), True (``torch.compile``) or False.
            auto_scale_loss: loss scaling under a ``"mixed_float16"`` policy.
            lr_scheduler: not a Keras argument: a ``torch.optim.lr_scheduler``
                scheduler that every ``fit`` steps (per epoch), a
                ``torchfit.callbacks.TorchLRScheduler`` (``interval="step"``...),
                Lightning's dict ``{"scheduler", "interval", "frequency",
                "monitor"}``, or a factory ``fn(optimizer)`` returning one of
                these, for optimizers that ``compile`` builds. Saved with the model.
        """
        _check_compile_arguments(loss, loss_weights, metrics, weighted_metrics, run_eagerly,
                                 steps_per_execution, jit_compile, auto_scale_loss)
        resolved_optimizer = self._bind_optimizer(optimizer)
        if (auto_scale_loss and self.dtype_policy.needs_loss_scaling
                and not isinstance(resolved_optimizer, precision.LossScaleOptimizer)):
            resolved_optimizer = precision.LossScaleOptimizer(resolved_optimizer)
        state = CompiledState()
        state.optimizer = resolved_optimizer
        state.lr_scheduler = as_torch_lr_scheduler(
            lr_scheduler, unwrap_loss_scale(resolved_optimizer))
        state.loss = loss
        state.compile_loss = CompileLoss(loss, loss_weights, model=self) if loss is not None else None
        if metrics is not None or weighted_metrics is not None:
            state.compile_metrics = CompileMetrics(metrics, weighted_metrics, model=self)
        state.loss_tracker = metrics_module.Mean(name="loss")
        state.run_eagerly = run_eagerly
        state.jit_compile = jit_compile
        state.steps_per_execution = int(steps_per_execution)
        state.auto_scale_loss = auto_scale_loss
        state.compiled = True
        self._torchfit.compiled = state  # settings and the run stay

    def _bind_optimizer(self, optimizer: Any) -> torch.optim.Optimizer:
        if optimizer is None:
            raise ValueError(
                'Argument `optimizer` must be an optimizer name (e.g. "adam"), a '
                "torchfit.optimizers instance or a torch.optim.Optimizer. Received: None."
            )
        if isinstance(optimizer, precision.LossScaleOptimizer):
            # Keras's usual ``LossScaleOptimizer(Adam())``: bind the inner one.
            self._bind_optimizer(optimizer.inner_optimizer)
            return optimizer
        resolved = optimizers_module.get(optimizer)
        bindable = (optimizers_module.Optimizer, optimizers_module.MultiOptimizer)
        if isinstance(resolved, bindable) and not resolved.is_bound:
            # No trainable parameter (yet) is allowed, as in Keras: the optimizer is
            # built empty and training steps warn instead of updating.
            params = [p for p in self.parameters() if p.requires_grad]
            resolved.build(self if resolved.binds_module else params)
        check.check_optimizer_owns_parameters(self, resolved)
        return resolved

    def _require_compiled(self, method: str) -> None:
        if not self.compiled:
            raise ValueError(
                f"You must call `compile()` before `{method}()`. Expected a compiled "
                "model; received one on which compile() was never called."
            )

    # ----------------------------------------------------------------- steps
    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None,
                     sample_weight: Any = None, training: bool = True) -> torch.Tensor:
        """The total (weighted) loss of a batch; override for custom losses."""
        del x, training
        compiled = self._torchfit.compiled.compile_loss
        loss = compiled(y, y_pred, sample_weight) if compiled is not None else None
        if loss is None:
            raise ValueError(
                "No loss to compute. Expected a `loss` argument in `compile()`; "
                "received loss=None."
            )
        return loss

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> Dict[str, Any]:
        """Update the compiled metrics and return all metric results (tensors).

        The results come as a mapping computed when first read
        (:class:`torchfit.logs.LazyLogs`): batches whose logs nobody reads
        cost no ``result()`` kernels.
        """
        del x
        compiled = self._torchfit.compiled.compile_metrics
        if compiled is not None:
            compiled.update_state(y, y_pred, sample_weight)
        if torch.compiler.is_compiling():
            return self.get_metrics_result()  # part of the compiled graph
        return LazyLogs(self.get_metrics_result)

    def train_step(self, data: Any) -> Dict[str, Any]:
        """One optimizer step on ``data = (x, y, sample_weight)``; returns logs.

        Everything that can fail on the batch (forward, loss, backward, metric
        updates) happens before ``optimizer.step()``, so an error leaves the
        weights and optimizer state as they were after the last applied step.
        """
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        optimizer = self.optimizer
        optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            y_pred = call_model(self, x)
            loss = self.compute_loss(x, y, y_pred, sample_weight, training=True)
        if self._torchfit.settings.nan_policy is not None and not self._loss_is_finite(loss):
            return LazyLogs(self.get_metrics_result)  # the step is not applied
        self._torchfit.compiled.loss_tracker.update_batch_mean(loss, batch_size_of(x))
        trains = loss.requires_grad or not self._without_trainable_weights()
        if trains:
            scale_loss = getattr(optimizer, "scale_loss", None)
            (scale_loss(loss) if scale_loss is not None else loss).backward()
        with torch.no_grad():
            logs = self.compute_metrics(x, y, tree.map_structure(_detach, y_pred), sample_weight)
        if trains:
            optimizer.step()
        return logs

    def _without_trainable_weights(self) -> bool:
        """Whether the model has no parameter to train; then a step warns and
        updates nothing, as Keras's does (read only when the loss has no graph)."""
        if any(p.requires_grad for p in self.parameters()):
            return False
        warnings.warn("The model does not have any trainable weights.", stacklevel=3)
        return True

    def _loss_is_finite(self, loss: torch.Tensor) -> bool:
        """Apply ``nan_policy`` to a batch loss (a host sync, only when opted in)."""
        finite = bool(torch.isfinite(loss.detach()).all())
        if ROUTES and id(self) in ROUTES:  # a distributed train step: all processes skip alike
            finite = all_processes_agree(finite)
        if finite:
            return True
        policy = self._torchfit.settings.nan_policy
        if policy == "raise":
            raise FloatingPointError(
                f"The training loss is {loss.detach().float().cpu().tolist()} (not finite) and "
                "`nan_policy='raise'`. No weights were changed by this batch."
            )
        if policy == "stop":
            self.stop_training = True
        return False

    def test_step(self, data: Any) -> Dict[str, Any]:
        """Loss and metrics on one batch, without training; returns logs."""
        x, y, sample_weight = unpack_x_y_sample_weight(data)
        with self._autocast():
            y_pred = call_model(self, x)
            loss = self.compute_loss(x, y, y_pred, sample_weight, training=False)
        self._torchfit.compiled.loss_tracker.update_batch_mean(loss, batch_size_of(x))
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def predict_step(self, data: Any) -> Any:
        """The model's outputs for one batch."""
        x, _, _ = unpack_x_y_sample_weight(data)
        with self._autocast():
            return call_model(self, x)

    def _step_function(self, kind: str) -> Any:
        state = self._torchfit.compiled
        fn = state.step_functions.get(kind)
        if fn is None:
            step = getattr(self, f"{kind}_step")
            device = next(self.parameters(), torch.empty(0)).device
            fn = compile_step(step, state.jit_compile, state.run_eagerly, device)
            state.step_functions[kind] = fn
        return fn

    def _step_to_run(self, kind: str) -> Any:
        """``make_{kind}_function()``, recording output shapes for ``summary()`` in
        its first call while none are recorded. Eager steps only: hooks added and
        removed around a torch.compile'd step would be traced into it (module
        hooks are not guarded on)."""
        fn = getattr(self, f"make_{kind}_function")()
        if self._torchfit.settings.output_shapes is None and fn == getattr(self, f"{kind}_step"):
            return records_shapes_on_first_call(self, fn, self._torchfit.settings)
        return fn

    def make_train_function(self) -> Any:
        return self._step_function("train")

    def make_test_function(self) -> Any:
        return self._step_function("test")

    def make_predict_function(self) -> Any:
        return self._step_function("predict")

    # --------------------------------------------------------------- metrics
    @property
    def metrics(self) -> List[Any]:
        """As in Keras: the loss tracker, the compiled metrics (one container
        named ``"compile_metrics"``), then per-output loss trackers."""
        state = self._torchfit.compiled
        found: List[Any] = []
        if state.loss_tracker is not None:
            found.append(state.loss_tracker)
        if state.compile_metrics is not None:
            found.append(state.compile_metrics)
        if state.compile_loss is not None:
            found.extend(state.compile_loss.metrics)
        return found

    @property
    def metrics_names(self) -> List[str]:
        """Log names in the order ``evaluate``/``*_on_batch`` return values."""
        return self._log_order(self.get_metrics_result())

    def _log_order(self, logs: Dict[str, Any]) -> List[str]:
        """Keras's order: metrics whose own name is a log key (loss, single-output
        metrics, per-output losses), then the other keys sorted."""
        order: List[str] = []
        for metric in self.metrics:
            inner = metric.metrics if isinstance(metric, CompileMetrics) else [metric]
            for name in (getattr(m, "name", None) for m in inner):
                if name in logs and name not in order:
                    order.append(name)
        return order + sorted(k for k in logs if k not in order)

    def reset_metrics(self) -> None:
        for metric in self.metrics:
            metric.reset_state()

    def get_metrics_result(self) -> Dict[str, Any]:
        """Current results of all metrics (0-d tensors), keyed by log name;
        dict results (the compiled metrics) are merged in, as in Keras."""
        results: Dict[str, Any] = {}
        for metric in self.metrics:
            if isinstance(metric, CompileMetrics) and not metric.built:
                continue
            value = metric.result()
            if isinstance(value, dict):
                results.update(value)
            else:
                results[metric.name] = value
        return results

    def _flatten_in_order(self, logs: Dict[str, Any]) -> Any:
        values = [logs[name] for name in self._log_order(logs)]
        return values[0] if len(values) == 1 else values

    # -------------------------------------------------------- fit / evaluate
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: Optional[int] = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: Any = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: Any = True,
        class_weight: Optional[Dict[int, float]] = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: Optional[int] = None,
        validation_steps: Optional[int] = None,
        validation_batch_size: Optional[int] = None,
        validation_freq: Any = 1,
    ) -> Any:
        """Train for ``epochs`` epochs (Keras's ``Model.fit``); returns a ``History``.

        Under ``torchrun`` (see ``torchfit.distributed``) ``batch_size`` is the
        per-process batch, as in torch DDP: a step sees ``world_size * batch_size``.
        """
        self._require_compiled("fit")
        check.check_x(x, "fit")
        check.check_int(batch_size, "batch_size", allow_none=True)
        check.check_int(epochs, "epochs", minimum=0)
        verbose = check.check_verbose(verbose)
        check.check_validation_split(validation_split)
        check.check_shuffle(shuffle)
        check.check_int(initial_epoch, "initial_epoch", minimum=0)
        check.check_int(steps_per_epoch, "steps_per_epoch", allow_none=True)
        check.check_int(validation_steps, "validation_steps", allow_none=True)
        check.check_int(validation_batch_size, "validation_batch_size", allow_none=True)
        validation_freq = check.check_validation_freq(validation_freq)
        self._check_validation_targets(validation_data)
        self._check_validation_data_fits(validation_data)
        validate_class_weight(class_weight)
        if class_weight is not None:
            self._check_class_weight_against_outputs(x, class_weight)
        return Loop(self).fit(
            x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
            validation_split=validation_split, validation_data=validation_data,
            shuffle=shuffle, class_weight=class_weight, sample_weight=sample_weight,
            initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps, validation_batch_size=validation_batch_size,
            validation_freq=validation_freq,
        )

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: Optional[int] = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: Optional[int] = None,
        callbacks: Any = None,
        return_dict: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Loss and metrics in test mode: a float, a list like ``metrics_names``, or a dict."""
        check.check_no_kwargs("evaluate", kwargs)
        self._require_compiled("evaluate")
        check.check_x(x, "evaluate")
        check.check_int(batch_size, "batch_size", allow_none=True)
        verbose = check.check_verbose(verbose)
        check.check_int(steps, "steps", allow_none=True)
        check.check_bool(return_dict, "return_dict")
        logs = Loop(self).evaluate(x, y, batch_size=batch_size, verbose=verbose,
                                   sample_weight=sample_weight, steps=steps, callbacks=callbacks)
        return logs if return_dict else self._flatten_in_order(logs)

    def predict(self, x: Any, batch_size: Optional[int] = None, verbose: Any = "auto",
                steps: Optional[int] = None, callbacks: Any = None) -> Any:
        """Outputs for ``x`` as NumPy, batches concatenated, in the outputs' structure."""
        check.check_x(x, "predict")
        check.check_int(batch_size, "batch_size", allow_none=True)
        verbose = check.check_verbose(verbose)
        check.check_int(steps, "steps", allow_none=True)
        return Loop(self).predict(x, batch_size=batch_size, verbose=verbose, steps=steps,
                                  callbacks=callbacks)

    # ------------------------------------------------------------- on_batch
    def _single_batch(self, x: Any, y: Any, sample_weight: Any, class_weight: Any = None,
                      method: str = "train_on_batch") -> Any:
        """``(x, y, sample_weight)`` of array-likes, checked, as one batch on the device."""
        check.check_x(x, method)
        adapter = get_adapter(x, y, sample_weight, class_weight=class_weight)
        if not isinstance(adapter, ArrayDataAdapter):
            raise TypeError(
                "Argument `x` of the *_on_batch methods must be array-like (NumPy "
                "arrays, tensors, or lists/dicts of them). Received: "
                f"{type(x).__name__}."
            )
        device, dtype = model_device_and_dtype(self)
        batch = move_to(adapter.whole_batch(), device, dtype)
        if self._torchfit.settings.input_nan_policy is not None:
            check.check_finite_batch(batch, self._torchfit.settings.input_nan_policy, 0)
        return pack_x_y_sample_weight(*batch)

    def train_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                       class_weight: Optional[Dict[int, float]] = None, return_dict: bool = False) -> Any:
        """One gradient update on one batch; metrics cover this batch only."""
        self._require_compiled("train_on_batch")
        check.check_bool(return_dict, "return_dict")
        batch = self._single_batch(x, y, sample_weight, class_weight)
        self.reset_metrics()
        with training_mode(self, True):
            logs = run_step(self._step_to_run("train"), batch, self)
        logs = to_python(logs)
        return logs if return_dict else self._flatten_in_order(logs)

    def test_on_batch(self, x: Any, y: Any = None, sample_weight: Any = None,
                      return_dict: bool = False) -> Any:
        """Loss and metrics of one batch in test mode."""
        self._require_compiled("test_on_batch")
        check.check_bool(return_dict, "return_dict")
        batch = self._single_batch(x, y, sample_weight, method="test_on_batch")
        self.reset_metrics()
        weights = optimizers_module.evaluation_weights(self.optimizer)
        with training_mode(self, False), grad_free(self, "test"), weights:
            logs = run_step(self._step_to_run("test"), batch, self)
        logs = to_python(logs)
        return logs if return_dict else self._flatten_in_order(logs)

    def predict_on_batch(self, x: Any) -> Any:
        """Outputs for one batch, as NumPy."""
        batch = self._single_batch(x, None, None, method="predict_on_batch")
        weights = optimizers_module.evaluation_weights(self.optimizer)
        with training_mode(self, False), grad_free(self, "predict"), weights:
            outputs = run_step(self._step_to_run("predict"), batch, self)
        return concat_outputs([outputs])

    # ---------------------------------------------------- saving / summary
    def save_weights(self, filepath: Any, overwrite: bool = True) -> None:
        """Write ``state_dict()`` to ``filepath`` (torch format, atomic); see ``torchfit.saving``."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath: Any, skip_mismatch: bool = False) -> None:
        """Load weights written by ``save_weights``/``save`` (or a plain state dict file)."""
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def save(self, filepath: Any, overwrite: bool = True, include_optimizer: bool = True,
             pickle_model: bool = False) -> None:
        """Write weights, optimizer state, compile config, epoch and step; see
        ``torchfit.load_model``."""
        saving.save_model(self, filepath, overwrite=overwrite,
                          include_optimizer=include_optimizer, pickle_model=pickle_model)

    def summary(self, line_length: Optional[int] = None, positions: Any = None, print_fn: Any = None,
                expand_nested: bool = False, show_trainable: bool = False, layer_range: Any = None,
                sample_input: Any = None) -> None:
        """Print a Keras-style table of layers, output shapes (from the first batch
        trained, evaluated or predicted, or from ``sample_input``) and parameter
        counts; see ``torchfit.saving.summary``."""
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                       expand_nested=expand_nested, show_trainable=show_trainable,
                       layer_range=layer_range, sample_input=sample_input)

    def _check_validation_targets(self, validation_data: Any) -> None:
        """Bare validation inputs (no tuple) carry no targets: with the built-in
        ``test_step`` and a compiled loss, that would only fail after an epoch."""
        if (validation_data is None or isinstance(validation_data, (tuple, list))
                or self._torchfit.compiled.compile_loss is None
                or type(self).test_step is not KerasStyleModule.test_step
                or not is_array_structure(validation_data)):
            return
        raise ValueError(
            "Argument `validation_data` must be a tuple (x_val, y_val) or (x_val, y_val, "
            "val_sample_weight) (or a DataLoader/generator yielding such batches) for a "
            "model compiled with a loss. Received a "
            f"{type(validation_data).__name__} of inputs only, without targets."
        )

    def _check_validation_data_fits(self, validation_data: Any) -> None:
        """In-memory ``validation_data`` targets that cannot fit the losses (class
        indices out of range, wrong shapes, complex values) fail before the first
        epoch trains, naming ``validation_data``, not after it."""
        compile_loss = self._torchfit.compiled.compile_loss
        if (compile_loss is None or type(self).test_step is not KerasStyleModule.test_step
                or not isinstance(validation_data, (tuple, list))
                or not all(is_array_structure(part) for part in validation_data[:2])):
            return
        adapter = get_validation_adapter(validation_data, None, None, None, check_arguments=False)
        x_val, y_val, sw_val = adapter.arrays
        try:
            y_pred = self._probe_outputs(x_val)
        except Exception:  # noqa: BLE001 - a model that cannot run a 2-sample probe:
            return  # its first validation batch is still checked, as for other inputs
        rows = adapter.num_samples
        if y_pred is None or not all(isinstance(t, torch.Tensor) and t.ndim and t.shape[0] >= 1
                                     for t in tree.flatten(y_pred)):
            return
        # One row of predictions stands for every sample: the checks read shapes
        # and the targets' values, never the predictions' values.
        y_pred = tree.map_structure(lambda t: t[:1].expand(rows, *t.shape[1:]), y_pred)
        compile_loss.check_data(as_tensors(y_val), y_pred, as_tensors(sw_val), "validation_data")

    def _probe_outputs(self, x: Any) -> Any:
        """The model's outputs for the first two samples of array-like ``x`` (a
        shape probe in eval mode, without gradients), or ``None``."""
        probe = _first_samples(x)
        if probe is None:
            return None
        device, dtype = model_device_and_dtype(self)
        with training_mode(self, False), torch.no_grad():
            return call_model(self, move_to(probe, device, dtype))

    def _check_class_weight_against_outputs(self, x: Any, class_weight: Dict[int, float]) -> None:
        """Reject class indices the output cannot produce, before training starts
        (``class_weight`` itself is checked by ``fit``)."""
        out = self._probe_outputs(x)
        if isinstance(out, torch.Tensor) and out.ndim >= 1:
            check_class_weight_keys(class_weight, int(out.shape[-1]) if out.ndim > 1 else 1)


def _check_compile_arguments(loss: Any, loss_weights: Any, metrics: Any, weighted_metrics: Any,
                             run_eagerly: Any, steps_per_execution: Any, jit_compile: Any,
                             auto_scale_loss: Any) -> None:
    """``compile``'s checks, before anything is built or bound."""
    check.check_bool(run_eagerly, "run_eagerly")
    check.check_int(steps_per_execution, "steps_per_execution")
    check_jit_compile(jit_compile)
    if run_eagerly and (jit_compile is True or isinstance(jit_compile, dict)):
        warnings.warn("`run_eagerly=True` wins over `jit_compile`: the steps run eagerly.",
                      stacklevel=3)
    check.check_bool(auto_scale_loss, "auto_scale_loss")
    check.check_loss_weights(loss_weights)
    check.check_identifiers(loss, "loss", losses_module.get, CROSSENTROPY_ALIASES)
    check_torch_losses(loss)
    metric_aliases = ACCURACY_ALIASES + CROSSENTROPY_ALIASES
    check.check_identifiers(metrics, "metrics", metrics_module.get, metric_aliases)
    check.check_identifiers(weighted_metrics, "weighted_metrics", metrics_module.get, metric_aliases)


_NO_AUTOCAST = contextlib.nullcontext()
NAN_POLICIES = (None, "raise", "skip", "stop")
INPUT_NAN_POLICIES = (None, "warn", "raise")


def _detach(value: Any) -> Any:
    return value.detach() if isinstance(value, torch.Tensor) else value


def _first_samples(x: Any) -> Any:
    """The first two samples of array-like ``x`` (for a shape probe), else None."""
    if not is_array_structure(x):
        return None
    return tree.map_structure(lambda t: None if t is None else rows_of(t, 0, 2), convert_leaves(x, "x"))


# ----------------------------------------------------------------- keras_style()
# An existing instance gets the Keras training API: its class becomes a
# subclass of its own class with ``KerasStyleModule`` first (cached per class,
# named like the original). Pickles and deep copies reduce to the original
# class and are made keras-style again on load.

_KERAS_STYLE_CLASSES: Dict[type, type] = {}


def _rebuild_keras_style(base: type, state: Dict[str, Any]) -> nn.Module:
    """Unpickling target for modules made keras-style by :func:`keras_style`."""
    module = base.__new__(base)
    if hasattr(module, "__setstate__"):
        module.__setstate__(state)
    else:
        module.__dict__.update(state)
    return keras_style(module)


def _reduce_keras_style(self: Any, protocol: int) -> Any:
    base = type(self).__bases__[1]
    return _rebuild_keras_style, (base, self.__getstate__())


def _keras_style_class(base: type) -> type:
    cls = _KERAS_STYLE_CLASSES.get(base)
    if cls is None:
        cls = type(base.__name__, (KerasStyleModule, base), {
            "__module__": base.__module__,
            "__qualname__": base.__qualname__,
            "__doc__": base.__doc__,
            "__reduce_ex__": _reduce_keras_style,
        })
        _KERAS_STYLE_CLASSES[base] = cls
    return cls


def keras_style(module: nn.Module) -> nn.Module:
    """Give an existing module instance the Keras training API, in place.

    Returns the same object. Its class becomes a subclass of its own class
    with :class:`KerasStyleModule` first; ``state_dict()`` keys, parameters,
    ``repr``, ``copy.deepcopy``, pickling and ``torch.save`` are unchanged
    (pickles load back as keras-style modules of the original class).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(
            "Argument `module` must be a torch.nn.Module instance. "
            f"Received: {type(module).__name__}."
        )
    if isinstance(module, KerasStyleModule):
        return module
    module.__class__ = _keras_style_class(type(module))
    return module


register_keras_style(KerasStyleModule, keras_style)  # load_model compiles through it
