"""TensorFlow's event-file reading, served by the ``tensorboard`` package.

Keras's TensorBoard tests read the event files back with
``tensorflow.python.lib.io.tf_record`` and ``tensorflow.core.util.event_pb2``.
Without TensorFlow, the same records (TFRecord framing, ``Event`` protos) are
read with TensorBoard's own reader and protos, which the callback's writer
(``torch.utils.tensorboard``) needs anyway. Only these two names are served:
``tf.summary`` (writing summaries from a test) stays absent.
"""

from __future__ import annotations

import types
from typing import Iterator

from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2  # noqa: F401  (served by name)


def _tf_record_iterator(path: str) -> Iterator[bytes]:
    """The records of a TFRecord file, as ``tf_record.tf_record_iterator``."""
    return RawEventFileLoader(path).Load()


tf_record = types.SimpleNamespace(tf_record_iterator=_tf_record_iterator)
