"""torchfit: the Keras 3 model-training API on plain PyTorch."""

__version__ = "0.1.0"
