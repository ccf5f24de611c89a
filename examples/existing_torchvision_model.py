"""Give an existing torchvision ResNet-18 Keras's training API with ``torchfit.keras_style``.

The model is torchvision's ``resnet18(num_classes=10)``, unchanged: ``keras_style``
adds ``compile``/``fit``/``evaluate``/``predict`` to that instance and nothing else
(same object, same ``state_dict()`` keys). Everything around it stays torch: a
``torch.optim.SGD`` optimizer, an ``nn.CrossEntropyLoss`` loss module, a torch LR
scheduler stepped by a small custom callback. ``torchfit.callbacks.ModelCheckpoint``
keeps the best epoch (weights and optimizer state, in torch's format, written
atomically) and ``torchfit.load_model`` restores it into a fresh model; the file
holds only tensors and plain data, so it loads with ``weights_only=True``.

Data: scikit-learn's bundled 8x8 digits (no download), resized to 32x32 and
repeated to 3 channels, the input a torchvision ResNet expects.

When torchvision cannot be imported (it is not installed, or it was built for
another torch release), the example says so and uses ``ResNet18`` defined below:
the same architecture with the same module names and ``state_dict()`` keys as
torchvision's ``resnet18``.

    python examples/existing_torchvision_model.py [--epochs 4] [--checkpoint-dir DIR] [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import torchfit
from digits import load_digits_split


# --------------------------------------------------------------------- backbone
class BasicBlock(nn.Module):
    """torchvision's ``BasicBlock``: two 3x3 convolutions and a shortcut."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """The fallback: torchvision's ``resnet18`` architecture and module names."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, 2)
        self.layer2 = self._make_layer(128, 2, stride=2)
        self.layer3 = self._make_layer(256, 2, stride=2)
        self.layer4 = self._make_layer(512, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for module in self.modules():  # torchvision's initialisation
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18_constructor() -> Tuple[Callable[..., nn.Module], str]:
    """torchvision's ``resnet18`` when torchvision imports, else the fallback."""
    try:
        from torchvision.models import resnet18
    except Exception as error:  # ImportError, or a torchvision built for another torch
        print(f"torchvision is not usable here ({type(error).__name__}: {str(error)[:80]}); "
              "using the equivalent ResNet18 defined in this example.")
        return ResNet18, "fallback"
    return resnet18, "torchvision"


# ------------------------------------------------------------------------- data
def resize_digits(x: np.ndarray, size: int = 32) -> np.ndarray:
    """(N, 1, 8, 8) digits -> (N, 3, size, size) float32, bilinear, grey repeated."""
    resized = F.interpolate(torch.from_numpy(x), size=(size, size), mode="bilinear", align_corners=False)
    return resized.repeat(1, 3, 1, 1).numpy()


# -------------------------------------------------------------------- callbacks
class TorchLRScheduler(torchfit.Callback):
    """Steps a torch LR scheduler at each epoch end and logs the learning rate."""

    def __init__(self, scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        super().__init__()
        self.scheduler = scheduler

    def on_epoch_end(self, epoch: int, logs: Optional[Dict[str, Any]] = None) -> None:
        if logs is not None:  # History runs after this callback, so it records the value
            logs["learning_rate"] = self.scheduler.get_last_lr()[0]
        self.scheduler.step()


# ------------------------------------------------------------------------- main
def compile_for_digits(model: Any, learning_rate: float = 0.01) -> None:
    model.compile(
        optimizer=torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9,
                                  nesterov=True, weight_decay=5e-4),
        loss=nn.CrossEntropyLoss(label_smoothing=0.05),  # a torch loss module, torch order
        metrics=["accuracy"],
    )


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--checkpoint-dir", default=None, help="default: a temporary directory")
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="2 epochs (smoke test)")
    args = parser.parse_args(argv)
    epochs = 2 if args.quick else args.epochs

    torch.manual_seed(0)
    (x_train, y_train), (x_test, y_test) = load_digits_split()
    x_train, x_test = resize_digits(x_train), resize_digits(x_test)

    resnet18, backbone = resnet18_constructor()
    model = resnet18(num_classes=10)  # an ordinary torch module
    keys_before = list(model.state_dict())
    model = torchfit.keras_style(model)  # the same object, now with compile/fit/...
    assert list(model.state_dict()) == keys_before
    compile_for_digits(model)

    with tempfile.TemporaryDirectory() as scratch:
        directory = args.checkpoint_dir or scratch
        path = os.path.join(directory, "best.pt")
        # Annealing to 0 also lets batch norm's running statistics catch up with the weights.
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(model.optimizer, T_max=epochs)
        callbacks = [
            TorchLRScheduler(scheduler),
            torchfit.callbacks.ModelCheckpoint(path, monitor="val_accuracy", save_best_only=True),
        ]
        history = model.fit(x_train, y_train, batch_size=32, epochs=epochs, validation_split=0.15,
                            callbacks=callbacks, verbose=args.verbose)

        # Restore the best epoch into a fresh model, as another process would: compile it
        # first (a torch loss module is code, not data, so the file does not hold it), then
        # load_model fills in the weights and the optimizer state.
        restored = torchfit.keras_style(resnet18(num_classes=10))
        compile_for_digits(restored)
        torchfit.load_model(path, model=restored)
        best_epoch = torchfit.saving.read_checkpoint(path)["epoch"]  # epochs completed

    results = restored.evaluate(x_test, y_test, verbose=0, return_dict=True)
    last = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    print(f"backbone: {backbone} resnet18; keras_style kept all {len(keys_before)} state_dict keys")
    best_val_accuracy = history.history["val_accuracy"][best_epoch - 1]
    print(f"best val_accuracy {best_val_accuracy:.4f} at epoch {best_epoch}; "
          f"learning rates: {[round(v, 4) for v in history.history['learning_rate']]}")
    print(f"restored best checkpoint -> test loss: {results['loss']:.4f}  "
          f"test accuracy: {results['accuracy']:.4f}")
    return {
        "backbone": backbone,
        "test_accuracy": results["accuracy"],
        "best_val_accuracy": best_val_accuracy,
        "best_epoch": best_epoch,
        "last_epoch_test_accuracy": last["accuracy"],
        "history": history.history,
    }


if __name__ == "__main__":
    main()
