import os
import tempfile

# Keras is a test-only dependency used for differential tests; it must run on
# the torch backend and never write into the user's home directory.
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="torchfit-keras-home-"))
