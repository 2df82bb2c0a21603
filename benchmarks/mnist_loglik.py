"""Time and memory of the importance-sampled log-likelihood on the 10,000 MNIST test images.

Trains a small Bernoulli VAE on dynamically binarised MNIST (784-200-200-50, tanh, as in
Burda et al. 2016, for a few epochs: the point is the evaluation, not the model), then
evaluates log p(x) with K importance samples on the fixed-binarised test set, printing the
wall time, the throughput and the peak resident memory.

Run: .venv/bin/python benchmarks/mnist_loglik.py --samples 1000 [--data-dir ../shared/data]
"""

import argparse
import os
import resource
import time

import numpy as np
from mnist_nll import burda_vae

from vaekit.data import load_dataset


def peak_memory_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="K (default: 1000)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    parser.add_argument("--rows", type=int, default=10000, help="test rows (default: all)")
    default_dir = os.environ.get("VAEKIT_DATA", "../shared/data")
    parser.add_argument("--data-dir", default=default_dir, help="MNIST files (../shared/data)")
    args = parser.parse_args()

    data = load_dataset("mnist", data_dir=args.data_dir, binarize="dynamic")
    vae = burda_vae(max_epochs=args.epochs, patience=None)
    start = time.perf_counter()
    vae.fit(data.train)
    print(f"trained {args.epochs} epochs in {time.perf_counter() - start:.1f} s")
    X = data.test[: args.rows]
    memory_before = peak_memory_gib()
    start = time.perf_counter()
    log_px = vae.score_samples(X, n_samples=args.samples)
    seconds = time.perf_counter() - start
    sem = log_px.std(ddof=1) / np.sqrt(len(log_px))
    print(
        f"log p(x) on {len(X)} test images, K={args.samples}: {log_px.mean():.2f} ± {sem:.2f} nats"
    )
    print(f"evaluation: {seconds:.1f} s, {len(X) * args.samples / seconds:,.0f} samples/s")
    print(
        f"peak resident memory: {memory_before:.2f} GiB before, {peak_memory_gib():.2f} GiB after"
    )


if __name__ == "__main__":
    main()
