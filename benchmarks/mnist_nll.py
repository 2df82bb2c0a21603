"""Test NLL against wall-clock time for the one-stochastic-layer VAE of Burda et al. (2016).

784-200-200-50 with tanh units, a Bernoulli decoder, dynamically binarised MNIST (a fresh draw
of every training batch; the test set binarised once, seeded), trained by ``vaekit.VAE.fit``
with a time budget (``max_time``): the same call any user makes, and the same recipe as
``vaekit train mnist --binarize dynamic ... --max-time 60m`` (README).
Every ``--eval-every`` minutes it records the test NLL (importance sampling with
``--eval-samples`` K on ``--eval-rows`` test images); at the end of the ``--minutes`` budget it
reports the paper protocol's figure, K = 5000 on all 10,000 test images. The paper's VAE
reaches 86.76 nats. Writes the curve as CSV to ``--out``.

The defaults are the recipe of BENCHMARKS.md (86.32 ± 0.22 nats after 60 minutes on 2 cores):
batch 100, Adam at 1e-3 with a cosine over the time budget, the KL weight warmed up over the
first 6 minutes. Run:
    .venv/bin/python benchmarks/mnist_nll.py --data-dir ../shared/data
"""

import argparse
import csv
import math
import os
import time

import numpy as np

import vaekit
from vaekit.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="training time budget")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--schedule",
        choices=["constant", "cosine"],
        default="cosine",
        help="cosine anneals the learning rate to zero over the time budget, at every step",
    )
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        default=6.0,
        help="ramp the KL weight linearly from 0 to 1 over the first minutes of training",
    )
    parser.add_argument("--eval-every", type=float, default=10.0, help="minutes between checks")
    parser.add_argument("--eval-samples", type=int, default=500)
    parser.add_argument("--eval-rows", type=int, default=2000)
    parser.add_argument("--final-samples", type=int, default=5000)
    parser.add_argument("--data-dir", default=os.environ.get("VAEKIT_DATA", "../shared/data"))
    parser.add_argument("--out", default="mnist_nll_curve.csv")
    args = parser.parse_args()

    data = load_dataset("mnist", data_dir=args.data_dir, binarize="dynamic")
    vae = burda_vae(
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        learning_rate_schedule=args.schedule,
        precision=args.precision,
        max_epochs=None,
        max_time=args.minutes * 60,
        warmup_time=args.warmup_minutes * 60 if args.warmup_minutes else None,
        validation_fraction=0,
        patience=None,
    )
    rows, trained, next_check = [], [0.0], args.eval_every * 60

    def check(record: dict) -> None:
        nonlocal next_check
        trained[0] += record["seconds"]
        if trained[0] < next_check:
            return
        nll, sem = test_nll(vae, data.test[: args.eval_rows], args.eval_samples)
        minutes = trained[0] / 60
        rows.append((round(minutes, 2), record["epoch"], record["loss"], nll, sem))
        print(
            f"{minutes:6.1f} min  epoch {record['epoch']:5d}  train -ELBO {record['loss']:.2f}  "
            f"test NLL (K={args.eval_samples}, {args.eval_rows} rows) {nll:.2f} ± {sem:.2f}",
            flush=True,
        )
        next_check += args.eval_every * 60

    vae.fit(data.train, callback=check)
    start = time.perf_counter()
    nll, sem = test_nll(vae, data.test, args.final_samples)
    print(
        f"final: {vae.n_epochs_} epochs in {trained[0] / 60:.1f} min of training; test NLL with "
        f"K={args.final_samples} on {len(data.test)} images: {nll:.2f} ± {sem:.2f} nats "
        f"(evaluated in {time.perf_counter() - start:.0f} s); the paper's VAE: 86.76"
    )
    with open(args.out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["minutes", "epoch", "train_neg_elbo", "test_nll", "test_nll_sem"])
        writer.writerows(rows)
        writer.writerow([round(trained[0] / 60, 2), vae.n_epochs_, math.nan, nll, sem])


def burda_vae(**training) -> vaekit.VAE:
    """Burda et al.'s one-stochastic-layer MNIST VAE (784-200-200-50, tanh, Bernoulli, dynamic
    binarisation, seed 0) with the given training parameters."""
    model = dict(hidden_sizes=(200, 200), activation="tanh", likelihood="bernoulli")
    return vaekit.VAE(50, binarize="dynamic", random_state=0, verbose=False, **model, **training)


def test_nll(
    vae: vaekit.VAE, X: np.ndarray, n_samples: int, precision: str = "fp64"
) -> tuple[float, float]:
    """The mean negative log-likelihood of the rows of X and its standard error, in nats."""
    log_px = vae.score_samples(X, n_samples=n_samples, precision=precision)
    return float(-log_px.mean()), float(log_px.std(ddof=1) / np.sqrt(len(log_px)))


def precision_gap(vae: vaekit.VAE, X: np.ndarray, n_samples: int, precision: str) -> str:
    """How far ``precision``'s log p(x) of the rows of X lies from float64's, in words."""
    gap = vae.score_samples(X, n_samples, precision=precision) - vae.score_samples(X, n_samples)
    return (
        f"{precision} against float64 on {len(X)} images: mean {gap.mean():+.2e} nats, largest "
        f"per row {abs(gap).max():.2e}"
    )


if __name__ == "__main__":
    main()
