"""Keras's ``TestCase`` with its serialization check spoken in torchfit terms.

``run_class_serialization_test`` checks the ``get_config``/``from_config``
round trip exactly as Keras does; its second half goes through Keras's
serialization registry, for which torchfit's equivalent is the catalog's
``serialize``/``deserialize`` (names resolve through torchfit's catalog).

``assertLogs``: Keras's ``io_utils.print_msg`` sends a callback's message to
the logging system when interactive logging is off and to stdout otherwise;
torchfit's callbacks always print. With interactive logging off, the lines
printed in the block are recorded as INFO records of the watched logger.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from typing import Any, Iterator, Optional

from keras.src import testing as _testing
from keras.src.testing import test_utils  # noqa: F401 - imported by name
from keras.src.testing.test_case import to_json_with_tuples
from keras.src.utils import io_utils

import torchfit
from torchfit.metrics.base import reset_name_uids
from torchfit.optimizers import _validation as optimizer_validation

from . import module_getattr


def clear_session() -> None:
    """torchfit's part of Keras's ``clear_session``: fresh default names
    (``adam``, ``mean``...) for every test, and none left over after it."""
    reset_name_uids()
    optimizer_validation._NAME_COUNTS.clear()


def _catalog_of(instance: Any) -> Any:
    """The torchfit catalog module whose ``serialize`` handles ``instance``."""
    for module in (torchfit.losses, torchfit.metrics, torchfit.optimizers.schedules,
                   torchfit.optimizers):
        base = getattr(module, "Loss", None) or getattr(module, "Metric", None) \
            or getattr(module, "LearningRateSchedule", None) or getattr(module, "Optimizer", None)
        if isinstance(instance, base) and hasattr(module, "serialize"):
            return module
    return None


class _LinesToLog(io.TextIOBase):
    """A text stream whose complete non-empty lines become INFO records."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger, self._pending = logger, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            if line.strip():
                self._logger.info(line)
        return len(text)


class TestCase(_testing.TestCase):
    @contextlib.contextmanager
    def assertLogs(self, logger: Any = None, level: Any = None) -> Iterator[Any]:  # noqa: N802
        with super().assertLogs(logger, level) as captured:
            if io_utils.is_interactive_logging_enabled():
                yield captured
                return
            target = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
            with contextlib.redirect_stdout(_LinesToLog(target)):
                yield captured

    def setUp(self) -> None:
        super().setUp()  # Keras's clear_session
        clear_session()
        self.addCleanup(clear_session)

    def run_class_serialization_test(self, instance: Any, custom_objects: Optional[dict] = None) -> Any:
        cls = type(instance)
        config_json = to_json_with_tuples(instance.get_config())
        revived = cls.from_config(instance.get_config())
        self.assertEqual(config_json, to_json_with_tuples(revived.get_config()))
        self.assertEqual(set(dir(instance)), set(dir(revived)))
        catalog = _catalog_of(instance)
        if catalog is not None:
            serialized = json.loads(json.dumps(catalog.serialize(instance), default=str))
            revived = catalog.deserialize(serialized, custom_objects=custom_objects)
            self.assertEqual(config_json, to_json_with_tuples(revived.get_config()))
        return revived


__getattr__ = module_getattr("keras.testing", _testing)
