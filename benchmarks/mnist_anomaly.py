"""Anomaly detection on MNIST: train on nine digits, detect the tenth among the test images.

For each held-out digit d, a VAE (MLP 784-400-16, Bernoulli likelihood on dynamically
binarised intensities) is trained on the MNIST training images of the other nine digits, and
the 10,000 test images (all digits; the ~1,000 of digit d are the positives) are scored by
``vaekit.AnomalyDetector`` with each score type: the importance-sampled log p(x) (K samples),
the ELBO, and minus the squared reconstruction error. Baselines, fitted on the same training
rows: PCA reconstruction error (same number of components) and scikit-learn's IsolationForest.
Prints the AUROC of detecting d (1.0 = perfect, 0.5 = chance) per digit and score, as a
markdown table with the mean row, and the wall time.

Run: .venv/bin/python benchmarks/mnist_anomaly.py [--epochs 20] [--samples 100]
     [--digits 0 1] [--data-dir DIR] [--out results.md|results.csv]
(no network; the MNIST files are looked for in --data-dir, default $VAEKIT_DATA or
/work/shared/data.)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from vaekit.data import load_dataset
from vaekit.estimators.anomaly import AnomalyDetector
from vaekit.estimators.vae import VAE

SCORES = ("log_likelihood", "elbo", "reconstruction")
COLUMNS = (
    "VAE log p(x)",
    "VAE ELBO",
    "VAE reconstruction",
    "PCA reconstruction",
    "IsolationForest",
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20, help="VAE training epochs (default 20)")
    parser.add_argument("--samples", type=int, default=100, help="K for log p(x) (default 100)")
    parser.add_argument("--digits", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--n-components", type=int, default=16)
    parser.add_argument(
        "--data-dir", default=os.environ.get("VAEKIT_DATA", "/work/shared/data"), type=Path
    )
    parser.add_argument("--out", type=Path, help="also write the table (.csv, else markdown)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for torch and BLAS (default 1: on a busy 2-core machine, more threads "
        "spin against each other and run several times slower)",
    )
    return parser.parse_args(argv)


def auroc(is_outlier: np.ndarray, normality: np.ndarray) -> float:
    """AUROC of detecting the outliers when lower normality means more anomalous."""
    return float(roc_auc_score(is_outlier, -normality))


def one_digit(digit: int, data, args) -> tuple[dict[str, float], dict[str, float]]:
    X_train = data.train[data.y_train != digit]
    X_test, is_outlier = data.test, data.y_test == digit
    results, seconds = {}, {}

    start = time.perf_counter()
    vae = VAE(
        args.n_components,
        hidden_sizes=(400,),
        likelihood="bernoulli",
        binarize="dynamic",
        max_epochs=args.epochs,
        validation_fraction=0.0,
        patience=None,
        batch_size=128,
        learning_rate=1e-3,
        random_state=args.seed,
        verbose=False,
    ).fit(X_train)
    seconds["train"] = time.perf_counter() - start
    # offset_ is not needed for AUROC; a small reference set keeps from_fitted cheap.
    reference = X_train[:: max(1, len(X_train) // 1000)]
    for score, column in zip(SCORES, COLUMNS, strict=False):
        start = time.perf_counter()
        detector = AnomalyDetector.from_fitted(
            vae, reference, score_type=score, n_importance_samples=args.samples
        )
        results[column] = auroc(is_outlier, detector.score_samples(X_test))
        seconds[score] = time.perf_counter() - start

    start = time.perf_counter()
    pca = PCA(args.n_components, random_state=args.seed).fit(X_train)
    error = X_test - pca.inverse_transform(pca.transform(X_test))
    results["PCA reconstruction"] = auroc(is_outlier, -np.einsum("ij,ij->i", error, error))
    forest = IsolationForest(random_state=args.seed, n_jobs=1).fit(X_train)
    results["IsolationForest"] = auroc(is_outlier, forest.score_samples(X_test))
    seconds["baselines"] = time.perf_counter() - start
    return results, seconds


def table(rows: dict[int, dict[str, float]]) -> list[list[str]]:
    lines = [["held-out digit", *COLUMNS]]
    for digit, results in rows.items():
        lines.append([str(digit), *(f"{results[c]:.3f}" for c in COLUMNS)])
    if len(rows) > 1:
        means = [np.mean([r[c] for r in rows.values()]) for c in COLUMNS]
        lines.append(["**mean**", *(f"**{m:.3f}**" for m in means)])
    return lines


def markdown(lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(lines[0]) + " |", "|" + " --- |" * len(lines[0])]
    out += ["| " + " | ".join(line) + " |" for line in lines[1:]]
    return "\n".join(out)


def csv(lines: list[list[str]]) -> str:
    return "\n".join(",".join(cell.strip("*") for cell in line) for line in lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        run(args)


def run(args: argparse.Namespace) -> None:
    total = time.perf_counter()
    mnist = load_dataset("mnist", data_dir=args.data_dir)
    print(
        f"MNIST: {len(mnist.train)} training and {len(mnist.test)} test images; VAE 784-400-"
        f"{args.n_components}, Bernoulli, dynamic binarisation, {args.epochs} epochs, "
        f"log p(x) with K={args.samples}; {args.threads} thread(s).",
        flush=True,
    )
    rows = {}
    for digit in args.digits:
        start = time.perf_counter()
        rows[digit], seconds = one_digit(digit, mnist, args)
        timing = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
        aurocs = ", ".join(f"{k} {v:.3f}" for k, v in rows[digit].items())
        print(
            f"digit {digit}: {time.perf_counter() - start:.0f} s ({timing}); AUROC {aurocs}",
            flush=True,
        )
    lines = table(rows)
    print("\n" + markdown(lines))
    minutes = (time.perf_counter() - total) / 60
    print(f"\nwall time: {minutes:.1f} min for {len(rows)} digit(s)")
    if args.out:
        text = csv(lines) if args.out.suffix == ".csv" else markdown(lines)
        args.out.write_text(text + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
