"""``Loop``: the epoch/step engine behind ``fit``, ``evaluate`` and ``predict``.

The loop owns iteration, callbacks, validation cadence and the History; the
model owns the steps (``train_step``/``test_step``/``predict_step``). Batches
are moved to the model's device here (``batch.move_to``). Logs stay tensors on
the device while batches run; they become Python floats once per epoch (or evaluation), and
batch-level callbacks are called once per ``steps_per_execution`` steps.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from . import distributed
from . import state as training_state
# The batch helpers used to live here: the ones the loop does not call stay importable.
from .batch import (batch_size_of, check_output_rows, concat_outputs, describe_inputs,  # noqa: F401
                    is_placed, model_device_and_dtype, move_to, note_forward_error,
                    pack_x_y_sample_weight, raised_in_forward, run_step, unpack_x_y_sample_weight)
from .callbacks import CallbackList, History, ProgbarLogger
from .distributed.session import loop_session
from .logs import LazyLogs, to_python
from .optimizers import evaluation_weights
from .utils.inference import grad_free
from .utils.training_mode import training_mode
from .validation import check_finite_batch
from .data import EpochIterator, get_adapter, get_validation_adapter, split_for_validation
from .data.epoch_iterator import ResumePoint, warn_ran_out_of_data  # noqa: F401 (ResumePoint: public here)


def should_validate(epoch: int, validation_freq: Any) -> bool:
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return (epoch + 1) in validation_freq


def recheck_targets(model: Any, argument: str = "y") -> None:
    """New data may not fit losses built on earlier data: check its first batch
    (``argument`` names the data in messages)."""
    state = training_state.of(model)
    compile_loss = state.compiled.compile_loss if state is not None else None
    if compile_loss is not None and compile_loss.built:
        compile_loss.check_next_targets = argument


def with_lr_scheduler(callbacks: Any, model: Any) -> Any:
    """The ``fit`` callbacks with the model's ``compile(lr_scheduler=...)`` first, so
    that the other callbacks see its ``learning_rate`` log and stepped state."""
    state = training_state.of(model)
    attached = state.compiled.lr_scheduler if state is not None else None
    if attached is None or not (callbacks is None or isinstance(callbacks, (list, tuple))):
        return callbacks  # a CallbackList (or a bad value, reported by it) as given
    return [attached] + [c for c in (callbacks or ()) if c is not attached]


def close_progress_bars(callbacks: CallbackList) -> None:
    """Leave the terminal tidy when a run ends with an error."""
    for callback in callbacks.callbacks:
        if isinstance(callback, ProgbarLogger):
            callback.close()


def _in_a_run(method: Callable[..., Any]) -> Callable[..., Any]:
    """``Loop.fit``/``evaluate``/``predict`` run inside ``Loop._running``."""
    @functools.wraps(method)
    def running(self: "Loop", *args: Any, **kwargs: Any) -> Any:
        with self._running():
            return method(self, *args, **kwargs)
    return running


class Loop:
    """Runs epochs and steps for one model; created per ``fit``/``evaluate``/``predict``."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.device, self.dtype = model_device_and_dtype(model)
        self.dist = loop_session(model)  # on one process: hooks that change nothing
        self.steps_run = 0  # batches run by this loop (an empty input runs none)
        self.state = training_state.of(model)

    @property
    def run(self) -> training_state.RunState:
        """The model's current ``RunState`` (the one :meth:`_running` owns)."""
        return self.state.run

    @contextlib.contextmanager
    def _running(self) -> Iterator[None]:
        """Own the model's ``RunState`` for one fit/evaluate/predict: a new one
        (flags carried over), or the running one when called inside a run."""
        current = self.state.run
        if current.active:  # e.g. evaluate() from a callback of fit(): it joins that run
            yield
            return
        run = self.state.run = current.following()
        run.active = True
        try:
            yield
        finally:
            run.active = False

    # ----------------------------------------------------------------- helpers
    def _callbacks(self, callbacks: Any, verbose: int, epochs: int, steps: Optional[int],
                   add_history: bool = False) -> CallbackList:
        if isinstance(callbacks, CallbackList):
            return callbacks
        callbacks = self.dist.local_callbacks(callbacks)  # file writers: rank 0 only
        return CallbackList(
            callbacks, add_history=add_history, add_progbar=verbose != 0 and distributed.is_main_process(),
            model=self.model, verbose=verbose, epochs=epochs, steps=steps,
        )

    def _run(self, step_fn: Callable[[Any], Any], iterator: EpochIterator,
             hooks: Tuple[Optional[Callable], Optional[Callable]], stop: Callable[[], bool],
             argument: str = "x") -> Any:
        """One pass: batch callbacks once per ``steps_per_execution`` group.

        ``hooks`` are the ``(begin, end)`` batch callbacks, ``None`` where no
        callback has one (see ``CallbackList.batch_hooks``).
        """
        logs: Any = {}
        input_nan_policy = getattr(self.model, "input_nan_policy", None)  # opt-in, host sync
        # One process: both are the identity, not worth a call per step.
        unwrap, batch_logs = ((self.dist.unwrap, self.dist.batch_logs) if self.dist.multi_process
                              else (None, None))
        device, dtype = self.device, self.dtype
        source = iterator.adapter.sliced_from
        placed = source is not None and is_placed(source, device, dtype)  # then so is every batch
        begin, end = hooks
        for first, last, group in iterator:
            if begin is not None:
                begin(first)
            self.steps_run += len(group)
            for index, batch in enumerate(group):
                if unwrap is not None:
                    batch = unwrap(batch)  # a short step's share, for the next step
                if not placed:
                    batch = move_to(batch, device, dtype)
                if input_nan_policy is not None:
                    check_finite_batch(batch, input_nan_policy, first + index)
                logs = run_step(step_fn, pack_x_y_sample_weight(*batch), self.model, argument)
            if batch_logs is not None:
                logs = batch_logs(logs)  # metric states combined across processes
            if end is not None:
                end(last, logs)
            if stop():
                break
        return logs

    def _stop_flag(self, name: str) -> Callable[[], bool]:
        """Reads the model's ``stop_*`` flag (set by callbacks) without a property call per step."""
        return functools.partial(getattr, self.run, name)

    def _check_not_empty(self, x: Any, argument: str) -> None:
        """Inputs of unknown length (iterable datasets) are found empty only here."""
        if self.steps_run == 0 and not self.dist.multi_process:
            raise ValueError(
                f"Argument `{argument}` produced no batches. Expected at least one batch; "
                f"received an empty input of type {type(x).__name__}."
            )

    def _epoch_logs(self, logs: Any, use_results: bool = False) -> Dict[str, Any]:
        """The model's metric results when they match the step's logs (Keras's rule)."""
        results = self.dist.metrics_result()
        if use_results or (isinstance(logs, LazyLogs) and logs.pending):
            return to_python(results)  # the step's logs were these results, never read
        if isinstance(logs, Mapping) and set(logs) == set(results):
            logs = results
        return to_python(dict(logs) if isinstance(logs, Mapping) else {})

    # --------------------------------------------------------------------- fit
    @_in_a_run
    def fit(self, x: Any, y: Any, *, batch_size: Optional[int], epochs: int, verbose: int,
            callbacks: Any, validation_split: float, validation_data: Any, shuffle: Any,
            class_weight: Any, sample_weight: Any, initial_epoch: int,
            steps_per_epoch: Optional[int], validation_steps: Optional[int],
            validation_batch_size: Optional[int], validation_freq: Any) -> History:
        model = self.model
        iterator, val_iterator = self._fit_iterators(
            x, y, sample_weight, batch_size, steps_per_epoch, shuffle, class_weight,
            validation_split, validation_data, validation_batch_size, validation_steps)
        callbacks = self._callbacks(with_lr_scheduler(callbacks, model), verbose, epochs,
                                    iterator.num_batches, add_history=True)
        train_fn = self.dist.step_function(model._step_to_run("train"), "train")
        run = self.run
        run.stop_training = False
        recheck_targets(model)
        run.train_iterator = iterator  # callbacks read the data position (see ResumePoint)
        callbacks.on_train_begin()
        resume, initial_epoch = self._take_resume_point(iterator, initial_epoch)
        training_logs: Dict[str, Any] = {}
        was_training = model.training
        try:
            for epoch in range(initial_epoch, epochs):
                validate = val_iterator is not None and should_validate(epoch, validation_freq)
                if epoch > initial_epoch and (iterator.ran_dry() or (validate and val_iterator.ran_dry())):
                    # A generator used up: stop as Keras does, before an epoch
                    # without logs reaches History or any callback.
                    warn_ran_out_of_data(stacklevel=4)
                    break
                first = epoch == initial_epoch
                epoch_logs = self._fit_epoch(epoch, train_fn, iterator, callbacks,
                                             resume if first else None, first and resume is None,
                                             x, steps_per_epoch)
                if epoch_logs is None:
                    break
                if validate:
                    epoch_logs = self._with_validation(epoch_logs, val_iterator, callbacks)
                callbacks.on_epoch_end(epoch, epoch_logs)
                training_logs = epoch_logs
                model.stop_training = self.dist.agree(model.stop_training)
                if model.stop_training:
                    break
        except KeyboardInterrupt:
            # Ctrl-C stops cleanly: finished epochs stay in History, callbacks
            # get on_train_end (checkpoints, CSV...), bars close; then it propagates.
            model.stop_training = True
            callbacks.on_train_end(training_logs)
            raise
        except BaseException:
            close_progress_bars(callbacks)
            self.dist.publish_error()  # share it, or raise the peer's that caused it
            raise
        finally:
            model.train(was_training)
            run.train_iterator = None
        finalize = getattr(model.optimizer, "finalize_variable_values", None)
        if epochs > 0 and callable(finalize):
            finalize()  # e.g. EMA weights become the model's weights, as in Keras
        callbacks.on_train_end(training_logs)
        return callbacks.history

    def _fit_iterators(self, x: Any, y: Any, sample_weight: Any, batch_size: Optional[int],
                       steps_per_epoch: Optional[int], shuffle: Any, class_weight: Any,
                       validation_split: float, validation_data: Any,
                       validation_batch_size: Optional[int],
                       validation_steps: Optional[int]) -> Tuple[EpochIterator, Optional[EpochIterator]]:
        """The training iterator and the validation one (None without validation data)."""
        spe = self.model.steps_per_execution
        if validation_split and validation_data is None:
            # Split before class weights apply: validation is never class-weighted.
            (x, y, sample_weight), validation_data = split_for_validation(
                x, y, sample_weight, validation_split)
        # Arguments checked by KerasStyleModule.fit: the adapters only check the data.
        adapter = get_adapter(x, y, sample_weight, batch_size, steps_per_epoch, shuffle,
                              class_weight, device=self.device, check_arguments=False)
        iterator = EpochIterator(self.dist.shard(adapter, "train", shuffle), steps_per_epoch, spe)
        if validation_data is None:
            return iterator, None
        val_adapter = get_validation_adapter(validation_data, batch_size, validation_batch_size,
                                             validation_steps, device=self.device,
                                             check_arguments=False)
        return iterator, EpochIterator(self.dist.shard(val_adapter, "test"), validation_steps, spe)

    def _take_resume_point(self, iterator: EpochIterator, initial_epoch: int) -> Tuple[Any, int]:
        """The resume point a callback set in ``on_train_begin`` (taken once) and the
        epoch to start from; the iterator is positioned where the run stopped."""
        run = self.run
        resume, run.resume_point = run.resume_point, None
        if resume is None:
            return None, initial_epoch
        pass_position = resume.step if resume.pass_position is None else resume.pass_position
        iterator.resume_at(pass_position, resume.step, resume.on_positioned)
        return resume, resume.epoch

    def _fit_epoch(self, epoch: int, train_fn: Callable[[Any], Any], iterator: EpochIterator,
                   callbacks: CallbackList, resume: Any, first_fresh: bool, x: Any,
                   steps_per_epoch: Optional[int]) -> Optional[Dict[str, Any]]:
        """Train one epoch; its logs, or None when the input ran dry before it.

        ``resume``: the resume point when this epoch continues a resumed run;
        ``first_fresh``: the first epoch of a run that did not resume."""
        model = self.model
        model.reset_metrics()
        redrawn = resume is not None and resume.pass_epoch is not None
        self.dist.set_epoch(resume.pass_epoch if redrawn else epoch)
        callbacks.on_epoch_begin(epoch)
        model.train()
        steps_before = self.steps_run
        logs = self._run(train_fn, iterator, callbacks.batch_hooks("train"),
                         self._stop_flag("stop_training"))
        if first_fresh:
            self._check_not_empty(x, "x")
        elif self.steps_run == steps_before and resume is None:
            # An input that could not tell ahead (e.g. a DataLoader over a
            # one-shot stream) ran dry: stop too, before on_epoch_end
            # (with steps_per_epoch the iterator has warned already).
            if not steps_per_epoch:
                warn_ran_out_of_data(stacklevel=5)
            return None
        # A resumed epoch whose steps had all run: its metrics were restored.
        restored = resume is not None and self.steps_run == steps_before
        epoch_logs = self._epoch_logs(logs, use_results=restored)
        if restored and resume.logs:
            epoch_logs = dict(sorted(resume.logs.items()))
        return epoch_logs

    def _with_validation(self, epoch_logs: Dict[str, Any], val_iterator: EpochIterator,
                         callbacks: CallbackList) -> Dict[str, Any]:
        """``epoch_logs`` with the validation results added as ``val_*``."""
        val_iterator.reset()
        val_logs = self.evaluate_iterator(val_iterator, callbacks, "validation_data")
        return dict(sorted({**epoch_logs, **{f"val_{k}": v for k, v in val_logs.items()}}.items()))

    # ---------------------------------------------------------------- evaluate
    def evaluate_iterator(self, iterator: EpochIterator, callbacks: CallbackList,
                          argument: Optional[str] = None) -> Dict[str, Any]:
        """One evaluation pass; ``argument`` names the data in messages
        (``validation_data`` inside ``fit``; for ``evaluate``, targets are blamed on
        ``y`` and inputs on ``x``)."""
        model = self.model
        test_fn = self.dist.step_function(model._step_to_run("test"), "test")
        with training_mode(model, False), evaluation_weights(model.optimizer):
            model.stop_evaluating = False
            recheck_targets(model, argument or "y")
            model.reset_metrics()
            callbacks.on_test_begin()
            with grad_free(model, "test"):
                logs = self._run(test_fn, iterator, callbacks.batch_hooks("test"),
                                 self._stop_flag("stop_evaluating"), argument or "x")
        logs = self._epoch_logs(logs)
        callbacks.on_test_end(logs)
        return logs

    @_in_a_run
    def evaluate(self, x: Any, y: Any, *, batch_size: Optional[int], verbose: int,
                 sample_weight: Any, steps: Optional[int], callbacks: Any) -> Dict[str, Any]:
        adapter = get_adapter(x, y, sample_weight, batch_size, steps, False, device=self.device,
                              check_arguments=False)
        adapter = self.dist.shard(adapter, "test")
        iterator = EpochIterator(adapter, steps, self.model.steps_per_execution)
        callbacks = self._callbacks(callbacks, verbose, 1, iterator.num_batches)
        logs = self.evaluate_iterator(iterator, callbacks)
        self._check_not_empty(x, "x")
        return logs

    # ----------------------------------------------------------------- predict
    @_in_a_run
    def predict(self, x: Any, *, batch_size: Optional[int], verbose: int,
                steps: Optional[int], callbacks: Any) -> Any:
        model = self.model
        adapter = get_adapter(x, None, None, batch_size, steps, False, device=self.device,
                              check_arguments=False)
        adapter = self.dist.shard(adapter, "predict")
        iterator = EpochIterator(adapter, steps, model.steps_per_execution)
        callbacks = self._callbacks(callbacks, verbose, 1, iterator.num_batches)
        predict_fn = model._step_to_run("predict")
        outputs: List[Any] = []
        begin, end = callbacks.batch_hooks("predict")

        def collect(last: int, batch_outputs: Any) -> None:
            end(last, {"outputs": batch_outputs})

        def step(batch: Any) -> Any:
            out = predict_fn(batch)
            check_output_rows(out, batch)
            outputs.append(out)
            return out

        with training_mode(model, False), evaluation_weights(model.optimizer):
            model.stop_predicting = False
            callbacks.on_predict_begin()
            with grad_free(model, "predict"):
                self._run(self.dist.step_function(step, "predict"), iterator,
                          (begin, collect if end is not None else None), self._stop_flag("stop_predicting"))
        callbacks.on_predict_end()
        if not outputs:
            raise ValueError(
                "Argument `x` produced no batches to predict on. Expected at least one "
                f"sample; received an empty input of type {type(x).__name__}."
            )
        return self.dist.gather_outputs(outputs, concat_outputs)
