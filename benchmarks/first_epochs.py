"""Whether a VAE's posterior collapses in its first MNIST epochs, by model, units and recipe.

Trains Burda et al.'s MNIST VAE (784-200-200-50, Bernoulli, dynamically binarised MNIST, batch
100, Adam with a cosine over 100 epochs) with the VampPrior (K = 500), and Burda's
two-stochastic-layer model (mnist_two_layer.py's recipe), for ``--epochs`` epochs in each
configuration of hidden units, learning rate and KL warm-up, and prints after every epoch the
training loss, the KL, the largest spread of the posterior means over 1,000 test images (max
over units of Var_x E[z|x]; 0 when the encoder ignores its input) and the smallest posterior
log-variance. A collapsed run shows a KL near 0 and a spread of 0.00x: so did every tanh
configuration before vaekit started tanh networks with Glorot's weights (BENCHMARKS.md has both
runs).

Run: .venv/bin/python benchmarks/first_epochs.py --data-dir ../shared/data [--epochs 3]
[--models vamp two_layer]
"""

import argparse
import contextlib
import os
import warnings

import torch
from mnist_nll import burda_vae
from mnist_two_layer import two_layer_vae

import vaekit
from vaekit.data import load_dataset

#: (model, hidden units, learning rate, warm-up epochs): each model's recipe, then variations.
CONFIGURATIONS = [
    ("vamp", "tanh", 1e-3, 10),
    ("vamp", "tanh", 1e-3, 100),
    ("vamp", "tanh", 5e-4, 10),
    ("vamp", "tanh", 5e-4, 100),
    ("vamp", "relu", 1e-3, 10),
    ("two_layer", "tanh", 1e-3, 200),
    ("two_layer", "relu", 1e-3, 200),
]


class EnoughEpochs(Exception):
    """The epochs to watch are done."""


def model(name: str, activation: str, learning_rate: float, warmup: int) -> vaekit.VAE:
    """The VampPrior's or the two-layer model's VAE with this recipe, over 100 or 2000 epochs."""
    if name == "vamp":
        vae = burda_vae(
            prior="vamp",
            prior_components=500,
            batch_size=100,
            learning_rate_schedule="cosine",
            max_epochs=100,
            validation_fraction=0,
            patience=None,
        )
    else:
        vae = two_layer_vae(2000)
    return vae.set_params(activation=activation, learning_rate=learning_rate, warmup_epochs=warmup)


def watch(data, name: str, activation: str, learning_rate: float, warmup: int, epochs: int):
    """Train one configuration for ``epochs`` epochs and print its state after each."""
    vae = model(name, activation, learning_rate, warmup)
    test = torch.as_tensor(data.test[:1000], dtype=torch.float32)

    def report(record: dict) -> None:
        with torch.no_grad():
            q = vae.module_.encode(test)
        print(
            f"| {name} | {activation} | {learning_rate:g} | {warmup} | {record['epoch']} | "
            f"{record['loss']:.1f} | {record['kl']:.2f} | {q.mean.var(0).max():.3f} | "
            f"{q.log_var.min():.1f} |",
            flush=True,
        )
        if record["epoch"] >= epochs:
            raise EnoughEpochs

    with warnings.catch_warnings(), contextlib.suppress(EnoughEpochs):
        warnings.simplefilter("ignore")  # a collapse is what this script looks for
        vae.fit(data.train, callback=report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", nargs="+", choices=["vamp", "two_layer"], default=None)
    parser.add_argument("--data-dir", default=os.environ.get("VAEKIT_DATA", "../shared/data"))
    args = parser.parse_args()
    data = load_dataset("mnist", data_dir=args.data_dir, binarize="dynamic")
    print(
        "| model | units | learning rate | warm-up epochs | epoch | loss | KL | spread of means |"
        " smallest log-variance |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for configuration in CONFIGURATIONS:
        if args.models is None or configuration[0] in args.models:
            watch(data, *configuration, args.epochs)


if __name__ == "__main__":
    main()
