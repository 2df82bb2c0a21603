"""Classification from few labels: the semi-supervised VAE (M2, and the M1+M2 stack, Kingma et
al. 2014) against scikit-learn's semi-supervised estimators and a classifier of the labelled
rows alone.

The protocol of the paper's table 2: all training rows, of which ``--labels`` keep their label
(the same number per class, drawn by ``vaekit.keep_labels`` with seeds 0, 1, 2), and the test
error on held-out rows. On MNIST the paper reports 11.97% (M2) and 3.33% (M1+M2) with 100
labels. Beside it, on the same draws: logistic regression on the labelled rows, a multilayer
perceptron of M2's classifier's sizes on the labelled rows (what M2 gains from the unlabelled
rows is its distance to this one), and ``LabelSpreading`` (k-NN kernel) and
``SelfTrainingClassifier`` (logistic regression) on all rows. ``--dataset digits``
(scikit-learn's 8x8 digits, pixels / 16, 1,347 training and 450 test rows) runs in minutes;
``--dataset mnist`` (60,000 / 10,000, needs ``--data-dir``) for hours.

M1 learns without labels, so it is fitted once on the training rows (``--m1-epochs``; kept in
``--m1-dir`` when given, and loaded from there by a later run; or ``--m1-pretrained
mnist-vae-50d``, the zoo's MNIST VAE, trained on the training images alone) and shared, frozen
(``sklearn.frozen.FrozenEstimator``), by the draws' M1+M2 stacks. ``--models`` picks the
classifiers to run (M2 on MNIST's pixels sends every unlabelled image ten times through its
networks: hours per draw on a CPU).

Run: .venv/bin/python benchmarks/semi_supervised.py --dataset digits --labels 50 --epochs 100
"""

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

import vaekit
from vaekit.data import load_dataset

PAPER = {"mnist": {"M2": 11.97, "M1+M2": 3.33}}
#: ``--models`` keys and the names printed, in the order of ``fitted``.
MODELS = {
    "logistic": "logistic regression (labelled rows)",
    "mlp": "MLP of M2's classifier (labelled rows)",
    "spreading": "LabelSpreading (knn)",
    "self-training": "SelfTrainingClassifier",
    "m2": "vaekit M2",
    "m1+m2": "vaekit M1+M2",
}


def load(name: str, data_dir: str | None):
    """(X_train, y_train, X_test, y_test) with pixels in [0, 1]."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X / 16, y, test_size=0.25, random_state=0, stratify=y
        )
        return X_train, y_train, X_test, y_test
    data = load_dataset("mnist", data_dir=data_dir)  # intensities in [0, 1] already
    return data.train, data.y_train, data.test, data.y_test


def m2_hidden(args) -> tuple[int, ...]:
    """M2's hidden layers on the pixels (its classifier's too): the paper's one of 500 on MNIST."""
    return (500,) if args.dataset == "mnist" else (256, 128)


def m2(args, seed: int) -> vaekit.SemiSupervisedVAE:
    """M2 on the pixels, dynamically binarised, with the paper's sizes (50 latent units, one
    hidden layer of 500) on MNIST, or ``--m2-latent`` units."""
    hidden = m2_hidden(args)
    latent = args.m2_latent or (50 if args.dataset == "mnist" else 16)
    return vaekit.SemiSupervisedVAE(
        latent,
        hidden_sizes=hidden,
        likelihood="bernoulli",
        binarize="dynamic",
        batch_size=100,
        learning_rate=args.learning_rate,
        classifier_weight=args.classifier_weight,
        max_epochs=args.epochs,
        random_state=seed,
        verbose=False,
    )


def m1(args) -> vaekit.VAE:
    """M1 as in the paper: two hidden layers of 600 units (ReLU here, the paper softplus), 50 latent
    units on MNIST (16 on digits), a Bernoulli decoder on dynamically binarised pixels."""
    mnist = args.dataset == "mnist"
    return vaekit.VAE(
        50 if mnist else 16,
        hidden_sizes=(600, 600) if mnist else (256, 128),
        activation="relu",
        likelihood="bernoulli",
        binarize="dynamic",
        batch_size=100,
        learning_rate=1e-3,
        learning_rate_schedule="cosine",
        max_epochs=args.m1_epochs,
        warmup_epochs=max(1, args.m1_epochs // 10),
        validation_fraction=0,
        patience=None,
        random_state=0,
        verbose=False,
    )


def fitted_m1(args, X) -> tuple[vaekit.VAE, float]:
    """M1 fitted on every training row (no labels), or loaded from ``--m1-dir``, or the zoo's
    ``--m1-pretrained`` model (trained on MNIST's training images without their labels)."""
    if args.m1_pretrained:
        return vaekit.load_pretrained(args.m1_pretrained), 0.0
    folder = Path(args.m1_dir) if args.m1_dir else None
    if folder is not None and (folder / "config.json").is_file():
        return vaekit.load(folder), 0.0
    start = time.perf_counter()
    model = m1(args).fit(X)
    seconds = time.perf_counter() - start
    if folder is not None:
        model.save(folder)
    return model, seconds


def m1_m2(args, seed: int, first: vaekit.VAE) -> vaekit.SemiSupervisedVAE:
    """M2 on the codes of a fitted M1: one hidden layer of 500, 50 latent units, a Gaussian
    p(z1|y, z2) with its variance from the decoder, as in the paper."""
    mnist = args.dataset == "mnist"
    return vaekit.SemiSupervisedVAE(
        50 if mnist else 16,
        m1=FrozenEstimator(first),
        hidden_sizes=(500,) if mnist else (128,),
        activation="relu",
        likelihood="gaussian",
        sigma="decoder",
        batch_size=100,
        learning_rate=args.learning_rate,
        classifier_weight=args.classifier_weight,
        max_epochs=args.epochs,
        random_state=seed,
        verbose=False,
    )


def traced(model: vaekit.SemiSupervisedVAE, X, kept, X_test, y_test):
    """``model`` fitted, printing after each epoch its test error on the first 2,000 test rows
    and its ``label`` term: KL(q(y|x) || uniform) summed over the unlabelled rows, over all the
    epoch's rows (the labelled ones' classifier-only copies included)."""

    def report(record: dict) -> None:
        error = 100 * (1 - model.score(X_test[:2000], y_test[:2000]))
        print(
            f"  epoch {record['epoch']}: test error {error:.1f}%, label term "
            f"{record['label']:.2f}, loss {record['loss']:.2f}, {record['seconds']:.0f} s",
            flush=True,
        )

    return model.fit(X, kept, callback=report)


def fitted(args, X, y, kept, seed: int, first: vaekit.VAE | None, test=None):
    """(name, fitted classifier, seconds) of each classifier on one draw of the labels; with
    ``test`` (rows, labels), the VAEs print their test error after each epoch."""
    labelled = kept != -1

    def fit_vae(model):
        return model.fit(X, kept) if test is None else traced(model, X, kept, *test)

    fits = {
        "logistic regression (labelled rows)": lambda: LogisticRegression(max_iter=2000).fit(
            X[labelled], y[labelled]
        ),
        "MLP of M2's classifier (labelled rows)": lambda: MLPClassifier(
            m2_hidden(args), max_iter=2000, random_state=seed
        ).fit(X[labelled], y[labelled]),
        "LabelSpreading (knn)": lambda: LabelSpreading("knn", n_neighbors=7).fit(X, kept),
        "SelfTrainingClassifier": lambda: SelfTrainingClassifier(
            LogisticRegression(max_iter=2000)
        ).fit(X, kept),
        "vaekit M2": lambda: fit_vae(m2(args, seed)),
        "vaekit M1+M2": lambda: fit_vae(m1_m2(args, seed, first)),
    }
    for (key, name), fit in zip(MODELS.items(), fits.values(), strict=True):
        if key not in args.models:
            continue
        start = time.perf_counter()
        model = fit()
        yield name, model, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--draws", type=int, nargs="+", default=[0, 1, 2], help="the label draws' seeds"
    )
    parser.add_argument(
        "--classifier-weight", type=float, default=0.1, help="alpha / N (the paper: 0.1)"
    )
    parser.add_argument(
        "--trace", action="store_true", help="print the VAEs' test error after each epoch"
    )
    parser.add_argument(
        "--m2-latent", type=int, default=None, help="M2's latent units (the paper: 50 on MNIST)"
    )
    parser.add_argument("--m1-epochs", type=int, default=200)
    parser.add_argument("--m1-dir", default=None, help="keep (or reuse) the fitted M1 here")
    parser.add_argument("--m1-pretrained", default=None, help="M1 from the zoo, e.g. mnist-vae-50d")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=list(MODELS),
        default=list(MODELS),
        help="the classifiers to run",
    )
    args = parser.parse_args()
    X, y, X_test, y_test = load(args.dataset, args.data_dir)
    print(f"{args.dataset}: {len(X)} training rows, {args.labels} labels, {len(X_test)} test rows")
    first = None
    if "m1+m2" in args.models:
        first, seconds = fitted_m1(args, X)
        print(f"M1: {first.n_epochs_} epochs, {seconds:.0f} s (no labels; shared by the draws)")
    errors: dict[str, list[float]] = {}
    for seed in args.draws:
        kept = vaekit.keep_labels(y, args.labels, random_state=seed).astype(np.int64)
        test = (X_test, y_test) if args.trace else None
        for name, model, seconds in fitted(args, X, y, kept, seed, first, test):
            error = 100 * (1 - model.score(X_test, y_test))
            errors.setdefault(name, []).append(error)
            print(f"seed {seed}  {name:38s} {error:6.2f}% error  {seconds:7.1f} s", flush=True)
    print(f"\ntest error over {len(args.draws)} label draws (mean ± sd):")
    for name, values in errors.items():
        print(f"  {name:38s} {np.mean(values):6.2f} ± {np.std(values):.2f} %")
    for name, value in PAPER.get(args.dataset, {}).items():
        print(f"  paper {name:32s} {value:6.2f} %")


if __name__ == "__main__":
    main()
