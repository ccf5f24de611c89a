"""torchfit against a hand-written PyTorch loop and against peers, in one process.

Cases (``--case``):

- ``mlp``: a small MLP (64-256-256-10), overhead bound;
- ``cnn``: a small CNN on 3x16x16 images;
- ``inference``: ``evaluate`` and ``predict`` of the MLP on 100k samples.

Every contender trains/infers the same model, data, batch size and optimizer
(Adam with Keras's numbers). Contenders: a hand-written loop, torchfit, and,
when installed, Keras 3 on the torch backend and PyTorch Lightning. Runs are
interleaved ``--repeats`` times; the median time, its ratio to the hand-written
loop and the peak memory (resident set growth on CPU, ``max_memory_allocated``
on CUDA) are printed.

    python bench/peers.py [--case mlp|cnn|inference|all] [--device cpu|cuda] [--jit] [--amp]
        [--steps-per-execution N] [--threads N] [--markdown bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import threading
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn

import torchfit

os.environ.setdefault("KERAS_BACKEND", "torch")


# ----------------------------------------------------------------------------- models
class MLP(torchfit.KerasStyleModule, nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                                 nn.Linear(256, 10))

    def forward(self, x):
        return self.net(x)


class CNN(torchfit.KerasStyleModule, nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 4 * 4, 10))

    def forward(self, x):
        return self.net(x)


def keras_model(case: str):
    import keras

    layers = keras.layers
    if case == "cnn":
        return keras.Sequential([
            keras.Input((3, 16, 16)),
            layers.Conv2D(16, 3, padding="same", activation="relu", data_format="channels_first"),
            layers.MaxPooling2D(2, data_format="channels_first"),
            layers.Conv2D(32, 3, padding="same", activation="relu", data_format="channels_first"),
            layers.MaxPooling2D(2, data_format="channels_first"),
            layers.Flatten(), layers.Dense(10)])
    return keras.Sequential([keras.Input((64,)), layers.Dense(256, activation="relu"),
                             layers.Dense(256, activation="relu"), layers.Dense(10)])


def make_data(case: str, samples: int):
    rng = np.random.default_rng(0)
    shape = (samples, 3, 16, 16) if case == "cnn" else (samples, 64)
    return rng.normal(size=shape).astype("float32"), rng.integers(0, 10, samples).astype("int64")


# ----------------------------------------------------------------------------- memory
class PeakMemory:
    """Peak growth of memory while a block runs: CUDA's allocator peak, or the
    process's resident set sampled every millisecond on CPU."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.peak_bytes = 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> "PeakMemory":
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
            return self
        self._base = self._peak = self._rss()
        self._stop = threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.001):
                self._peak = max(self._peak, self._rss())

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            self.peak_bytes = torch.cuda.max_memory_allocated() - self._base
            return
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self._peak, self._rss()) - self._base


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- training
def torch_model(case: str, device: str) -> nn.Module:
    return (CNN() if case == "cnn" else MLP()).to(device)


def train_hand(case, x, y, args) -> float:
    model = torch_model(case, args.device)
    optimizer = torchfit.optimizers.Adam(model.parameters(), learning_rate=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x).to(args.device), torch.from_numpy(y).to(args.device)
    amp = args.amp and args.device == "cuda"
    scaler = torch.amp.GradScaler(enabled=amp)
    start = time.perf_counter()
    for _ in range(args.epochs):
        perm = torch.randperm(len(xt), device=args.device)
        xs, ys = xt[perm], yt[perm]
        total = torch.zeros((), device=args.device)
        correct = torch.zeros((), device=args.device)
        for i in range(0, len(xs), args.batch_size):
            xb, yb = xs[i:i + args.batch_size], ys[i:i + args.batch_size]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(args.device, dtype=torch.float16, enabled=amp):
                out = model(xb)
                loss = loss_fn(out, yb)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            with torch.no_grad():  # the bookkeeping fit does: mean loss and accuracy
                total += loss.detach() * len(xb)
                correct += (out.argmax(-1) == yb).sum()
        float(total), float(correct)  # epoch-end logs
    sync(args.device)
    return (time.perf_counter() - start) / args.epochs


def torchfit_jit(args):
    """``jit_compile`` for torchfit: False, True, or torch.compile options (``--jit-mode``)."""
    if args.jit_mode:
        return {"mode": args.jit_mode}
    return bool(args.jit)


def compiled_torchfit(case: str, args) -> nn.Module:
    model = torch_model(case, args.device)
    if args.amp:
        model.dtype_policy = "mixed_float16"
    model.compile(optimizer=torchfit.optimizers.Adam(learning_rate=1e-3), loss=nn.CrossEntropyLoss(),
                  metrics=["accuracy"], jit_compile=torchfit_jit(args),
                  steps_per_execution=args.steps_per_execution)
    return model


def train_torchfit(case, x, y, args) -> float:
    model = compiled_torchfit(case, args)
    model.fit(x[:args.batch_size * 4], y[:args.batch_size * 4], batch_size=args.batch_size, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
    sync(args.device)
    return (time.perf_counter() - start) / args.epochs


def keras_compiled(case: str, args):
    try:
        import keras
    except ImportError:
        return None
    if keras.backend.backend() != "torch":
        return None
    model = keras_model(case)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=bool(args.jit))
    return model


def train_keras(case, x, y, args) -> Optional[float]:
    model = keras_compiled(case, args)
    if model is None:
        return None
    model.fit(x[:args.batch_size * 4], y[:args.batch_size * 4], batch_size=args.batch_size, verbose=0)
    start = time.perf_counter()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0)
    return (time.perf_counter() - start) / args.epochs


def train_lightning(case, x, y, args) -> Optional[float]:
    try:
        import lightning.pytorch as pl
    except ImportError:
        try:
            import pytorch_lightning as pl
        except ImportError:
            return None
    network = torch_model(case, "cpu")

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def training_step(self, batch, _):
            out = self.network(batch[0])
            loss = nn.functional.cross_entropy(out, batch[1])
            self.log("acc", (out.argmax(-1) == batch[1]).float().mean(), on_epoch=True)
            return loss

        def configure_optimizers(self):
            return torchfit.optimizers.Adam(self.parameters(), learning_rate=1e-3)

    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=args.batch_size, shuffle=True)
    trainer = pl.Trainer(max_epochs=args.epochs, accelerator=args.device, devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    start = time.perf_counter()
    trainer.fit(Module(), loader)
    return (time.perf_counter() - start) / args.epochs


TRAINING: Dict[str, Callable] = {
    "hand-written loop": train_hand,
    "torchfit fit": train_torchfit,
    "keras 3 fit (torch backend)": train_keras,
    "lightning": train_lightning,
}


# ----------------------------------------------------------------------------- inference
def infer_hand(kind, x, y, args) -> float:
    model = torch_model("mlp", args.device).eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    start = time.perf_counter()
    outputs, total, correct = [], torch.zeros(()), torch.zeros(())
    with torch.inference_mode():
        for i in range(0, len(xt), args.batch_size):
            xb = xt[i:i + args.batch_size].to(args.device)
            out = model(xb)
            if kind == "predict":
                outputs.append(out)
            else:
                yb = yt[i:i + args.batch_size].to(args.device)
                total = total.to(out.device) + loss_fn(out, yb)
                correct = correct.to(out.device) + (out.argmax(-1) == yb).sum()
    if kind == "predict":
        torch.cat(outputs).cpu().numpy()
    else:
        float(total), float(correct)
    return time.perf_counter() - start


def infer_torchfit(kind, x, y, args) -> float:
    model = compiled_torchfit("mlp", args)
    start = time.perf_counter()
    if kind == "predict":
        model.predict(x, batch_size=args.batch_size, verbose=0)
    else:
        model.evaluate(x, y, batch_size=args.batch_size, verbose=0)
    return time.perf_counter() - start


def infer_keras(kind, x, y, args) -> Optional[float]:
    model = keras_compiled("mlp", args)
    if model is None:
        return None
    start = time.perf_counter()
    if kind == "predict":
        model.predict(x, batch_size=args.batch_size, verbose=0)
    else:
        model.evaluate(x, y, batch_size=args.batch_size, verbose=0)
    return time.perf_counter() - start


def inference_contenders(kind: str) -> Dict[str, Callable]:
    return {
        "hand-written loop": lambda c, x, y, a: infer_hand(kind, x, y, a),
        f"torchfit {kind}": lambda c, x, y, a: infer_torchfit(kind, x, y, a),
        f"keras 3 {kind} (torch backend)": lambda c, x, y, a: infer_keras(kind, x, y, a),
    }


# ----------------------------------------------------------------------------- runner
def run_case(title: str, case: str, contenders: Dict[str, Callable], x, y, args) -> List[str]:
    times: Dict[str, list] = {name: [] for name in contenders}
    peaks: Dict[str, list] = {name: [] for name in contenders}
    for _ in range(args.repeats):
        for name, fn in contenders.items():
            torch.manual_seed(0)
            with PeakMemory(args.device) as memory:
                value = fn(case, x, y, args)
            if value is not None:
                times[name].append(value)
                peaks[name].append(memory.peak_bytes)
    base = statistics.median(next(iter(times.values())))
    rows = [f"**{title}**", "", "| contender | ms | ratio to hand-written | peak memory (MiB) |",
            "|---|---|---|---|"]
    for name, values in times.items():
        if not values:
            rows.append(f"| {name} | not installed | - | - |")
            continue
        median = statistics.median(values)
        peak = max(peaks[name]) / 2**20
        rows.append(f"| {name} | {median * 1000:.1f} | {median / base:.3f} | {peak:.1f} |")
    return rows + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", default="all", choices=["mlp", "cnn", "inference", "all"])
    parser.add_argument("--samples", type=int, default=8192, help="training samples")
    parser.add_argument("--inference-samples", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--jit", action="store_true", help="jit_compile=True for torchfit and Keras")
    parser.add_argument("--jit-mode", default=None,
                        help="torchfit only: jit_compile={'mode': MODE}, e.g. reduce-overhead (CUDA graphs)")
    parser.add_argument("--amp", action="store_true", help="mixed_float16 (CUDA)")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--markdown", help="append the results to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # torch imports torch._dynamo (~70 MiB) when the first optimizer is built; a
    # hand-written evaluate builds none, so do it here rather than inside a measurement.
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    cases = ["mlp", "cnn", "inference"] if args.case == "all" else [args.case]
    lines = [f"{time.strftime('%Y-%m-%d')}: device {args.device} "
             f"({platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads), "
             f"torch {torch.__version__}, batch {args.batch_size}, jit={torchfit_jit(args)}, amp={args.amp}, "
             f"steps_per_execution={args.steps_per_execution}, median of {args.repeats} interleaved runs",
             ""]
    for case in cases:
        if case == "inference":
            x, y = make_data("mlp", args.inference_samples)
            for kind in ("evaluate", "predict"):
                lines += run_case(f"{kind}, MLP, {len(x)} samples", "mlp", inference_contenders(kind),
                                  x, y, args)
        else:
            x, y = make_data(case, args.samples)
            lines += run_case(f"fit, {case.upper()}, {len(x)} samples x {args.epochs} epochs "
                              "(ms per epoch)", case, TRAINING, x, y, args)
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        with open(args.markdown, "a") as handle:
            handle.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
