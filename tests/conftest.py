import atexit
import os
import shutil
import tempfile

import pytest

# Keras is a test-only dependency used for differential tests; it must run on
# the torch backend and never write into the user's home directory.
os.environ.setdefault("KERAS_BACKEND", "torch")


def _temporary_keras_home() -> None:
    """Point ``KERAS_HOME`` at a fresh folder, removed when this process exits.

    Only a folder made here is removed: a ``KERAS_HOME`` set by the caller (or
    inherited by a subprocess from the process that made it) is left alone.
    """
    if "KERAS_HOME" in os.environ:
        return
    folder = tempfile.mkdtemp(prefix="torchfit-keras-home-")
    os.environ["KERAS_HOME"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)


_temporary_keras_home()


# --------------------------------------------------------------- the slow marker
# The slowest tests, found with `--durations` on a 2-core machine: subprocesses
# (torchrun, SIGKILL, pytest, a Jupyter kernel), Keras differential grids of
# thousands of cases, and long training runs. `python -m pytest -q -m "not slow"`
# skips them for a first check; the full suite (the README's command, CI) runs all.
# A test can also be marked where it is defined: `@pytest.mark.slow`.
SLOW_FILES = {
    "test_backup_sigkill.py",  # kills training processes mid-run
    "test_callbacks_backup.py",  # interrupted and resumed training runs
    "test_data_keras_parity.py",  # Keras fits on every input type
    "test_distributed.py",  # torchrun / multi-process groups
    "test_examples.py",  # every example, end to end
    "test_keras_parity.py",  # Keras fits, name by name
}
SLOW_TESTS = {
    "test_losses.py": {"test_class_matches_keras", "test_class_variants_match_keras",
                       "test_function_matches_keras"},  # about 5,500 Keras comparisons
    "test_metrics.py": {"test_matches_keras"},
    "test_hardening_faults.py": {"test_every_torchfit_optimizer_step_is_all_or_nothing"},
    "test_held_back_updates.py": {"test_fit_logs_equal_step_by_step_metrics"},
    "test_plugin.py": {"test_plugin_is_active_in_a_fresh_pytest_process",
                       "test_plugin_module_loads_with_autoload_disabled",
                       "test_helpers_import_without_pytest_and_are_reachable_from_torchfit"},
    "test_docs.py": {"test_docs_build_without_warnings", "test_snippets_run_in_order_as_a_reader_would"},
    "test_compilation.py": {"test_jit_compile_true_matches_eager_and_keeps_state_dict_keys",
                            "test_jit_compile_with_side_effects_in_forward_matches_eager",
                            "test_import_does_not_load_the_compiler",
                            "test_steps_per_execution_history_equals_one_step_per_call",
                            "test_compiled_steps_run_build_eagerly"},  # torch.compile, subprocesses
    "test_host_sync.py": {"test_syncs_do_not_grow_with_steps"},
    "test_progbar.py": {"test_progress_bar_does_not_sync_every_step"},
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        if name in SLOW_FILES or getattr(item, "originalname", item.name) in SLOW_TESTS.get(name, ()):
            item.add_marker(pytest.mark.slow)
