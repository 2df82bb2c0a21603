"""When the VampPrior's posterior collapses on MNIST: the first epochs, unit by recipe.

Trains Burda et al.'s MNIST VAE (784-200-200-50, Bernoulli, dynamically binarised MNIST, batch
100, Adam with a cosine over 100 epochs) with the VampPrior (K = 500) for ``--epochs`` epochs in
each configuration of hidden units, learning rate and KL warm-up, and prints after every epoch
the training loss, the KL, the largest spread of the posterior means over 1,000 test images
(max over units of Var_x E[z|x]; 0 when the encoder ignores its input) and the smallest
posterior log-variance. A collapsed run shows a KL of 0.00 and a spread of 0.000: so did every
tanh configuration before vaekit started tanh networks with Glorot's weights (BENCHMARKS.md
has both runs).

Run: .venv/bin/python benchmarks/vamp_collapse.py --data-dir ../shared/data [--epochs 3]
"""

import argparse
import contextlib
import os
import warnings

import torch
from mnist_nll import burda_vae

from vaekit.data import load_dataset

#: (hidden units, learning rate, warm-up epochs): the benchmark's recipe first, then its variations.
CONFIGURATIONS = [
    ("tanh", 1e-3, 10),
    ("tanh", 1e-3, 100),
    ("tanh", 5e-4, 10),
    ("tanh", 5e-4, 100),
    ("relu", 1e-3, 10),
]


class EnoughEpochs(Exception):
    """The epochs to watch are done."""


def watch(data, activation: str, learning_rate: float, warmup: int, epochs: int) -> None:
    """Train one configuration for ``epochs`` epochs and print its state after each."""
    vae = burda_vae(
        prior="vamp",
        prior_components=500,
        batch_size=100,
        learning_rate=learning_rate,
        learning_rate_schedule="cosine",
        max_epochs=100,
        warmup_epochs=warmup,
        validation_fraction=0,
        patience=None,
    ).set_params(activation=activation)
    test = torch.as_tensor(data.test[:1000], dtype=torch.float32)

    def report(record: dict) -> None:
        with torch.no_grad():
            q = vae.module_.encode(test)
        print(
            f"| {activation} | {learning_rate:g} | {warmup} | {record['epoch']} | "
            f"{record['loss']:.1f} | {record['kl']:.2f} | {q.mean.var(0).max():.3f} | "
            f"{q.log_var.min():.1f} |",
            flush=True,
        )
        if record["epoch"] >= epochs:
            raise EnoughEpochs

    with warnings.catch_warnings(), contextlib.suppress(EnoughEpochs):
        warnings.simplefilter("ignore")  # the collapse is what this script shows
        vae.fit(data.train, callback=report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("VAEKIT_DATA", "../shared/data"))
    args = parser.parse_args()
    data = load_dataset("mnist", data_dir=args.data_dir, binarize="dynamic")
    print(
        "| units | learning rate | warm-up epochs | epoch | loss | KL | spread of means | "
        "smallest log-variance |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for configuration in CONFIGURATIONS:
        watch(data, *configuration, args.epochs)


if __name__ == "__main__":
    main()
