"""What Keras's test files import from Keras's repository ``conftest.py``."""

import pytest
from keras.src import backend


def skip_if_backend(given_backend: str, reason: str):
    return pytest.mark.skipif(backend.backend() == given_backend, reason=reason)
