"""Temporal sample weights: per-timestep weights that mask the padding of sequences.

A tagger (embedding, GRU, linear) labels every token of variable-length
sequences padded to a common length. The label of a token says whether it is
smaller than, equal to or greater than the token before it. Padding positions
carry random labels: they must count neither in the loss nor in the metrics.

``sample_weight`` of shape ``(samples, timesteps)`` (1.0 for real tokens, 0.0
for padding) does exactly that, as in Keras: the loss of each timestep is
multiplied by its weight, and metrics passed as ``weighted_metrics`` average over
the weighted timesteps only. The data is generated (no download).

    python examples/sequence_sample_weight.py [--epochs 8] [--quick]
"""

from __future__ import annotations

import argparse
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

import torchfit

VOCABULARY = 12   # token ids 1..11; 0 is padding
TIMESTEPS = 20
CLASSES = 3       # 0: smaller than the previous token, 1: equal, 2: greater


class Tagger(torchfit.KerasStyleModule, nn.Module):
    """Embedding -> GRU -> linear: one set of logits per timestep, ``(N, T, 3)``."""

    def __init__(self, vocabulary: int = VOCABULARY, classes: int = CLASSES) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocabulary, 16, padding_idx=0)
        self.gru = nn.GRU(16, 32, batch_first=True)
        self.out = nn.Linear(32, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        states, _ = self.gru(self.embed(tokens))
        return self.out(states)


def make_sequences(samples: int, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded token ids ``(N, T)`` int64, labels ``(N, T)`` int64, weights ``(N, T)`` float32."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, TIMESTEPS + 1, size=samples)
    real = np.arange(TIMESTEPS)[None, :] < lengths[:, None]
    tokens = np.where(real, rng.integers(1, VOCABULARY, size=(samples, TIMESTEPS)), 0).astype("int64")
    previous = np.concatenate([np.zeros((samples, 1), dtype="int64"), tokens[:, :-1]], axis=1)
    labels = np.sign(tokens - previous) + 1
    noise = rng.integers(0, CLASSES, size=(samples, TIMESTEPS))  # garbage under the padding
    labels = np.where(real, labels, noise).astype("int64")
    return tokens, labels, real.astype("float32")


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="3 epochs on 2000 sequences (smoke test)")
    args = parser.parse_args(argv)
    epochs, samples = (3, 2000) if args.quick else (args.epochs, args.samples)

    torch.manual_seed(0)
    tokens, labels, weights = make_sequences(samples)
    cut = int(0.8 * samples)
    model = Tagger()
    model.compile(
        optimizer=torchfit.optimizers.Adam(learning_rate=5e-3),
        loss=torchfit.losses.SparseCategoricalCrossentropy(from_logits=True),
        weighted_metrics=["accuracy"],  # weighted by sample_weight: padding does not count
    )
    history = model.fit(
        tokens[:cut], labels[:cut], sample_weight=weights[:cut],  # (N, T): temporal weights
        batch_size=64, epochs=epochs, verbose=args.verbose,
        validation_data=(tokens[cut:], labels[cut:], weights[cut:]),
    )
    masked = model.evaluate(tokens[cut:], labels[cut:], sample_weight=weights[cut:],
                            verbose=0, return_dict=True)
    unmasked = model.evaluate(tokens[cut:], labels[cut:], verbose=0, return_dict=True)

    # The same accuracy by hand, over real tokens only.
    predicted = model.predict(tokens[cut:], verbose=0).argmax(-1)
    real = weights[cut:] > 0
    by_hand = float((predicted == labels[cut:])[real].mean())

    print(f"real tokens: {real.mean():.1%} of positions")
    print(f"accuracy on real tokens (weighted): {masked['accuracy']:.4f}  by hand: {by_hand:.4f}")
    print(f"accuracy counting padding too (unweighted): {unmasked['accuracy']:.4f}")
    return {"masked": masked, "unmasked": unmasked, "by_hand": by_hand, "history": history.history}


if __name__ == "__main__":
    main()
