"""Imputation of values missing completely at random: the VAE imputer (MIWAE) against
scikit-learn's imputers.

Half of the entries of each table (``--fraction``) are removed at random, with 3 seeds; every
imputer fills them in and is scored by the root-mean-square error over the removed entries.
The tables: scikit-learn's digits (pixels / 16, in [0, 1]), MNIST intensities (the first
``--mnist-rows`` training images, / 255), and scikit-learn's breast-cancer and wine tables,
whose errors are in units of each feature's standard deviation (the features span orders of
magnitude). The
imputers: ``SimpleImputer`` (means), ``KNNImputer`` (5 neighbours), ``IterativeImputer``
(Bayesian ridge, its default) and ``IterativeImputer`` with extra trees as a missForest
stand-in (10 trees, 5 rounds; left out on MNIST, where its 784 forests a round would take
hours; there the Bayesian-ridge one takes each feature's 50 nearest features and 3 rounds), and
``vaekit.VAEImputer`` (its default VAE, trained with the importance-weighted bound
of K = 20 as MIWAE is and a patience of 50 epochs, imputing with K = 1000), with its features
standardised (the default) and raw; and ``VAEImputer`` around ``vaekit.ArbitraryConditionalVAE``
(VAEAC: its decoder sees the given entries; on the images convolutional, on raw intensities,
batches of 32, ``IMAGE_EPOCHS`` epochs on every row; on the tables its default, standardised,
up to 500 epochs with early stopping), which imputes with K = 100 draws of z from its prior
given the observed entries.

Run: .venv/bin/python benchmarks/imputation.py --data-dir ../shared/data (about 15 minutes on 2
CPU cores; MNIST is skipped when its files are absent).
"""

import argparse
import os
import time

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401 (makes it importable)
from sklearn.impute import IterativeImputer, KNNImputer, SimpleImputer

import vaekit
from vaekit.data import load_dataset
from vaekit.estimators.imputer import default_vae
from vaekit.exceptions import DataError

#: Above this many features the extra-trees imputer (one forest per feature and round) would
#: take hours on 2 cores, so it is left out there, and the Bayesian-ridge one does 3 rounds.
MANY_FEATURES = 100
#: ... and the Bayesian-ridge one regresses each feature on its 50 most correlated ones
#: (``n_nearest_features``), which keeps each round to seconds rather than tens of minutes.
NEAREST = 50
#: Epochs of the arbitrary-conditioning VAE on each image table, all its rows trained on (no
#: validation split, no early stopping: its validation loss, over fresh random splits, is
#: noisy): about 0.4 s an epoch on digits and 5 s on MNIST's 1,000 images, on 2 CPU cores.
IMAGE_EPOCHS = {"digits": 500, "MNIST": 100}


def tables(args) -> dict[str, tuple[np.ndarray, bool, tuple[int, ...] | None]]:
    """Name -> (rows, whether errors are in feature standard deviations, image shape)."""
    out = {"digits": (load_digits().data / 16.0, False, (1, 8, 8))}
    try:
        mnist = load_dataset("mnist", data_dir=args.data_dir, download=False)
        rows = np.asarray(mnist.train[: args.mnist_rows], dtype=np.float64)
        out["MNIST"] = (rows, False, (1, 28, 28))
    except DataError as err:
        print(f"MNIST skipped: {err}")
    out["breast cancer"] = (load_breast_cancer().data, True, None)
    out["wine"] = (load_wine().data, True, None)
    return out


def imputers(name: str, seed: int, n_features: int, image_shape: tuple[int, ...] | None) -> dict:
    many = n_features > MANY_FEATURES
    vae = default_vae().set_params(objective="iwae", n_samples=20, patience=50)
    out = {
        "mean": SimpleImputer(),
        "k-NN": KNNImputer(),
        "iterative": IterativeImputer(
            max_iter=3 if many else 10,
            n_nearest_features=NEAREST if many else None,
            random_state=seed,
        ),
    }
    if not many:
        trees = ExtraTreesRegressor(n_estimators=10, random_state=seed)
        out["iterative, extra trees"] = IterativeImputer(trees, max_iter=5, random_state=seed)
    raw = clone(vae).set_params(standardize=False)
    if image_shape is None:  # a table: its features standardised, multilayer perceptrons
        arbitrary = vaekit.ArbitraryConditionalVAE(standardize=True, verbose=False)
    else:  # an image: raw intensities, convolutions that see the given pixels in place
        arbitrary = vaekit.ArbitraryConditionalVAE(
            architecture="conv",
            image_shape=image_shape,
            standardize=False,
            batch_size=32,
            max_epochs=IMAGE_EPOCHS[name],
            validation_fraction=0.0,
            patience=None,
            verbose=False,
        )
    return out | {
        "VAE (MIWAE)": vaekit.VAEImputer(vae, random_state=seed),
        "VAE (MIWAE), raw features": vaekit.VAEImputer(raw, random_state=seed),
        "VAE, arbitrary conditioning": vaekit.VAEImputer(
            arbitrary, n_importance_samples=100, random_state=seed
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("VAEKIT_DATA", "../shared/data"))
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--mnist-rows", type=int, default=1000)
    parser.add_argument(
        "--imputers", nargs="+", help="run only these imputers (the names the table gives)"
    )
    args = parser.parse_args()
    results = {}
    for name, (X, scaled, image_shape) in tables(args).items():
        scale = X.std(axis=0) if scaled else np.ones(X.shape[1])
        scale = np.where(scale > 0, scale, 1.0)
        print(f"\n{name}: {X.shape[0]} rows x {X.shape[1]} features, {args.fraction:.0%} missing")
        for seed in range(args.seeds):
            mask = np.random.default_rng(seed).random(X.shape) < args.fraction
            holes = np.where(mask, np.nan, X)
            for method, imputer in imputers(name, seed, X.shape[1], image_shape).items():
                if args.imputers and method not in args.imputers:
                    continue
                start = time.perf_counter()
                filled = imputer.fit_transform(holes)
                seconds = time.perf_counter() - start
                error = ((filled - X) / scale)[mask]
                rmse = float(np.sqrt(np.mean(error**2)))
                results.setdefault((name, method), []).append((rmse, seconds))
                print(f"  seed {seed}  {method:<24} RMSE {rmse:.4f}  ({seconds:.0f} s)", flush=True)
    print("\nRMSE of the imputed entries, mean ± standard deviation over the seeds:")
    names = list(dict.fromkeys(name for name, _ in results))
    methods = list(dict.fromkeys(method for _, method in results))
    print("| imputer | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for method in methods:
        cells = []
        for name in names:
            if (name, method) not in results:
                cells.append("not run")
                continue
            runs = np.array(results[(name, method)])
            rmse, seconds = runs[:, 0], runs[:, 1].mean()
            cells.append(f"{rmse.mean():.4f} ± {rmse.std():.4f} ({seconds:.0f} s)")
        print(f"| {method} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
