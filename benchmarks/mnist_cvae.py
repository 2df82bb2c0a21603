"""The conditional VAE on MNIST: Sohn et al. (2015)'s quadrant task, and class-conditional samples.

**Quadrants.** Each test digit is cut into four quadrants; given 1, 2 or 3 of them (the
bottom-left; the left half; the left half and the top-right, as in Pyro's CVAE tutorial), predict
the rest. A deterministic network (the given pixels through 500-500 ReLU layers to a Bernoulli
per missing pixel, plain PyTorch, Adam at 1e-3, batch 128, early stopping with patience 3) is the
baseline; the CVAE is ``vaekit.VAE(200, hidden_sizes=(500, 500), condition="covariates",
prior="conditional")`` on the missing pixels with the given ones as its condition, with the
same optimiser, batch and early stopping. Both train on dynamically binarised pixels and are
measured on the test set's missing pixels binarised once (seeded): the baseline's negative
log-likelihood, and the CVAE's conditional -log p(x_missing | x_given) by importance sampling
(K = ``--samples``) and its negative ELBO with 10 draws (what Pyro's table reports). Both
stop early on 10% of the training images (Pyro used the test set). Pyro's figures are beside
them; they score gray-level targets with the Bernoulli cross-entropy, which is not a
normalised density of gray levels, so they are a reference, not the same measure.

**Class-conditional samples.** A CVAE conditioned on the labels (``condition="label"``,
``prior="conditional"``, Burda et al.'s 200-200 tanh networks, 50 latent units) draws 100
digits of every class; a classifier trained on the real training images (scikit-learn's
``MLPClassifier``, its test accuracy printed) labels them, and the script prints the fraction
labelled as the class asked for, per class, and writes a picture of 10 draws of each.

Run: .venv/bin/python benchmarks/mnist_cvae.py --data-dir ../shared/data [--quadrants 1 2 3]
[--samples 1000] [--picture ../docs/cvae_mnist.png]
"""

import argparse
import copy
import os
import time

import numpy as np
import torch
from sklearn.neural_network import MLPClassifier
from torch import nn
from train_speed import matmul_peak_gflops

import vaekit
from vaekit import plots
from vaekit.data import load_dataset

#: Pyro's CVAE tutorial, negative conditional log-likelihood in nats by given quadrants.
PYRO = {1: (100.4, 71.8), 2: (61.9, 51.0), 3: (25.4, 24.2)}


def quadrant_masks(given: int) -> np.ndarray:
    """A (784,) boolean mask of the given pixels: bottom-left, left half, or left + top-right."""
    mask = np.zeros((28, 28), dtype=bool)
    mask[14:, :14] = True
    if given >= 2:
        mask[:, :14] = True
    if given == 3:
        mask[:14, :] = True
    return mask.ravel()


def baseline_nll(X_in, X_out, T_in, T_out, seed: int = 0) -> tuple[float, int]:
    """Train the deterministic network; its mean test NLL over the missing pixels and epochs."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(X_in.shape[1], 500),
        nn.ReLU(),
        nn.Linear(500, 500),
        nn.ReLU(),
        nn.Linear(500, X_out.shape[1]),
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(X_in))
    n_val = len(X_in) // 10
    val, train = order[:n_val], order[n_val:]
    loss = nn.BCEWithLogitsLoss(reduction="sum")
    x_in, x_out = torch.from_numpy(X_in), torch.from_numpy(X_out)
    val_target = torch.bernoulli(x_out[val], generator=torch.Generator().manual_seed(1))
    best, best_state, waited, epochs = np.inf, None, 0, 0
    while waited < 3 and epochs < 101:
        epochs += 1
        for start in range(0, len(train), 128):
            batch = train[start : start + 128]
            target = torch.bernoulli(x_out[batch])
            optimizer.zero_grad()
            (loss(net(x_in[batch]), target) / len(batch)).backward()
            optimizer.step()
        rng.shuffle(train)
        with torch.no_grad():
            value = float(loss(net(x_in[val]), val_target)) / n_val
        if value < best:
            best, best_state, waited = value, copy.deepcopy(net.state_dict()), 0
        else:
            waited += 1
    net.load_state_dict(best_state)
    with torch.no_grad():
        nll = float(loss(net(torch.from_numpy(T_in)), torch.from_numpy(T_out))) / len(T_in)
    return nll, epochs


def cvae(given_pixels: int) -> vaekit.VAE:
    """Sohn et al.'s CVAE shape as in Pyro's tutorial: 200 latent units, 500-500 ReLU networks,
    a prior network p(z | given pixels)."""
    return vaekit.VAE(
        200,
        hidden_sizes=(500, 500),
        condition="covariates",
        prior="conditional",
        likelihood="bernoulli",
        binarize="dynamic",
        batch_size=128,
        learning_rate=1e-3,
        max_epochs=101,
        patience=3,
        validation_fraction=0.1,
        random_state=0,
        verbose=False,
    )


def quadrant_task(data, quadrants, n_samples: int) -> None:
    train, test = np.asarray(data.train, dtype=np.float32), np.asarray(data.test, np.float32)
    rng = np.random.default_rng(0)
    test_binary = (rng.random(test.shape) < test).astype(np.float32)  # one seeded draw
    rows = []
    for given in quadrants:
        mask = quadrant_masks(given)
        X_in, X_out = train[:, mask], train[:, ~mask]
        T_in, T_out = test[:, mask], test_binary[:, ~mask]
        start = time.perf_counter()
        base, base_epochs = baseline_nll(X_in, X_out, T_in, T_out)
        model = cvae(mask.sum()).fit(X_out, X_in)
        seconds = time.perf_counter() - start
        nll = -model.score_samples(T_out, n_samples, y=T_in, precision="fp32").mean()
        neg_elbo = -model.elbo(T_out, 10, y=T_in).mean()
        rows.append((given, base, nll, neg_elbo, base_epochs, model.n_epochs_))
        print(
            f"{given} quadrant(s) given: baseline {base:.1f} nats ({base_epochs} epochs), CVAE "
            f"{nll:.1f} by IS (K={n_samples}), {neg_elbo:.1f} -ELBO ({model.n_epochs_} "
            f"epochs); {seconds:.0f} s of training; Pyro: {PYRO[given]}",
            flush=True,
        )
    print(
        "\n| given quadrants | baseline NLL | CVAE NLL (IS) | CVAE -ELBO | Pyro baseline | "
        "Pyro CVAE |"
    )
    print("|---|---|---|---|---|---|")
    for given, base, nll, neg_elbo, _, _ in rows:
        print(
            f"| {given} | {base:.1f} | {nll:.1f} | {neg_elbo:.1f} | {PYRO[given][0]} | "
            f"{PYRO[given][1]} |"
        )


def class_conditional(data, picture: str | None) -> None:
    train, test = np.asarray(data.train, np.float32), np.asarray(data.test, np.float32)
    start = time.perf_counter()
    classifier = MLPClassifier((256,), max_iter=20, random_state=0).fit(train, data.y_train)
    accuracy = classifier.score(test, data.y_test)
    model = vaekit.VAE(
        50,
        hidden_sizes=(200, 200),
        activation="tanh",
        condition="label",
        prior="conditional",
        likelihood="bernoulli",
        binarize="dynamic",
        batch_size=100,
        max_epochs=50,
        random_state=0,
        verbose=False,
    ).fit(data.train, data.y_train)
    asked = np.repeat(model.classes_, 100)
    samples = model.sample(len(asked), condition=asked, random_state=1)
    labelled = classifier.predict(samples)
    per_class = [(labelled[asked == c] == c).mean() for c in model.classes_]
    print(
        f"\nclass-conditional samples ({model.n_epochs_} epochs, {time.perf_counter() - start:.0f}"
        f" s with the classifier): the classifier (test accuracy {accuracy:.3f}) labels "
        f"{(labelled == asked).mean():.1%} of 1000 samples as the class asked for; per class "
        + ", ".join(f"{c}: {p:.0%}" for c, p in zip(model.classes_, per_class, strict=True)),
        flush=True,
    )
    if picture:
        grid = model.sample(100, condition=np.repeat(model.classes_, 10), random_state=2)
        plots.image_grid(grid, (1, 28, 28), picture, ncols=10)
        print(f"wrote {picture}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quadrants", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--samples", type=int, default=1000, help="K of the conditional NLL")
    parser.add_argument("--picture", default=None, help="where to draw the class samples")
    parser.add_argument("--data-dir", default=os.environ.get("VAEKIT_DATA", "../shared/data"))
    args = parser.parse_args()
    data = load_dataset("mnist", data_dir=args.data_dir)
    peak = matmul_peak_gflops(torch.float32)
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s; {torch.get_num_threads()} threads", flush=True)
    if args.quadrants:
        quadrant_task(data, args.quadrants, args.samples)
    class_conditional(data, args.picture)


if __name__ == "__main__":
    main()
