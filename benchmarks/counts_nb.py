"""Count VAEs on synthetic counts from a known latent negative-binomial model.

The true model: a 2-D latent z from a mixture of five Gaussians (one per cluster, centres on a
circle of radius 2.5, standard deviation 0.5); a fixed random two-layer network maps z to
proportions over D genes; each row has the same library size ``l``, and gene g's count is
negative binomial with mean ``l * p_g(z)`` and inverse dispersion theta_g (drawn once from a
Gamma(2, 1), so that genes range from very overdispersed to near-Poisson). Two data sets: a dense
one (l = 500) and a sparse one (l small enough for about 90% zeros), which is given to the
estimators as a scipy CSR matrix and is never densified whole.

The true model's log p(x) is computed by quadrature on a fine grid over z (the z-dependent part
of every row's log-likelihood is two matrix products with the grid's means); the script prints
the difference from a grid of half the resolution, which bounds the quadrature's error. The VAEs
(Poisson, negative binomial, ZINB; 10 latent units) are scored by importance sampling with
K = 1000 on held-out rows; their posterior means, and PCA on log(1 + counts) with as many
components, are compared by the accuracy of a 5-NN classifier of the true clusters (trained on
the training rows' embeddings, tested on the held-out ones), beside the same classifier on the
true model's posterior means E[z|x], a reference from the model that made the data.

Run: .venv/bin/python benchmarks/counts_nb.py [--rows 12000] [--genes 100] (a few minutes on 2
CPU cores; no files are written).
"""

import argparse
import time

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import gammaln, logsumexp
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

import vaekit

CLUSTERS, LATENT, SPREAD, RADIUS = 5, 2, 0.5, 2.5
GRID_HALF_WIDTH = 5.0


class TrueModel:
    """The generating model: p(z) a Gaussian mixture, x_g | z ~ NB(l p_g(z), theta_g)."""

    def __init__(self, n_genes: int, library: float, seed: int):
        rng = np.random.default_rng(seed)
        angles = 2 * np.pi * np.arange(CLUSTERS) / CLUSTERS
        self.centres = RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        self.w1 = rng.normal(0, 1.0, (LATENT, 64))
        self.b1 = rng.normal(0, 0.5, 64)
        self.w2 = rng.normal(0, 1.5 / np.sqrt(64), (64, n_genes))
        self.theta = rng.gamma(2.0, 1.0, n_genes)
        self.library = library

    def proportions(self, z: np.ndarray) -> np.ndarray:
        logits = np.tanh(z @ self.w1 + self.b1) @ self.w2
        return np.exp(logits - logsumexp(logits, axis=1, keepdims=True))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, CLUSTERS, n)
        z = self.centres[labels] + SPREAD * rng.normal(size=(n, LATENT))
        mu = self.library * self.proportions(z)
        counts = rng.negative_binomial(self.theta, self.theta / (self.theta + mu))
        return counts.astype(np.float32), labels

    def log_prior(self, z: np.ndarray) -> np.ndarray:
        sq = ((z[:, None, :] - self.centres[None]) ** 2).sum(-1) / SPREAD**2
        log_components = -0.5 * sq - LATENT * np.log(SPREAD) - np.log(2 * np.pi)
        return logsumexp(log_components, axis=1) - np.log(CLUSTERS)

    def log_likelihood(self, X: np.ndarray, points: int, chunk: int = 256) -> np.ndarray:
        """log p(x) of each row by the midpoint rule on a ``points`` x ``points`` grid over
        [-5, 5]^2, where the prior has all but e^-20 of its mass."""
        return self.quadrature(X, points, chunk)[0]

    def posterior_means(self, X: np.ndarray, points: int = 200) -> np.ndarray:
        """E[z|x] of each row under the true model: the best 2-D embedding there is."""
        return self.quadrature(X, points)[1]

    def quadrature(self, X: np.ndarray, points: int, chunk: int = 256):
        """(log p(x), E[z|x]) of each row on the grid."""
        edges = np.linspace(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, points + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        grid = np.stack(np.meshgrid(centres, centres), axis=-1).reshape(-1, LATENT)
        log_area = 2 * np.log(edges[1] - edges[0])
        mu = self.library * self.proportions(grid)  # (G, D)
        theta = self.theta
        log_mu = torch.from_numpy(np.log(mu).T)  # (D, G)
        log_sum = np.log(theta[:, None] + mu.T)
        grid_terms = torch.from_numpy(self.log_prior(grid) - (theta[:, None] * log_sum).sum(0))
        log_sum = torch.from_numpy(log_sum)
        out, means = [], []
        grid_t = torch.from_numpy(grid)
        for start in range(0, len(X), chunk):
            x = X[start : start + chunk].astype(np.float64)
            constant = (
                gammaln(x + theta) - gammaln(theta) - gammaln(x + 1) + theta * np.log(theta)
            ).sum(1)
            xt = torch.from_numpy(x)
            log_joint = xt @ log_mu - xt @ log_sum + grid_terms  # (rows, G)
            out.append(torch.logsumexp(log_joint, dim=1).numpy() + constant + log_area)
            means.append((torch.softmax(log_joint, dim=1) @ grid_t).numpy())
        return np.concatenate(out), np.concatenate(means)


def knn_accuracy(train_codes, y_train, test_codes, y_test) -> float:
    return KNeighborsClassifier(5).fit(train_codes, y_train).score(test_codes, y_test)


def count_vae(likelihood: str, epochs: int) -> vaekit.VAE:
    return vaekit.VAE(
        10,
        likelihood=likelihood,
        hidden_sizes=(128, 128),
        batch_size=128,
        learning_rate=1e-3,
        max_epochs=epochs,
        patience=20,
        random_state=0,
        verbose=False,
    )


def run(name: str, model: TrueModel, n_rows: int, sparse: bool, epochs: int) -> None:
    rng = np.random.default_rng(1)
    X, labels = model.sample(n_rows, rng)
    n_test = n_rows // 6
    X_train, X_test = X[n_test:], X[:n_test]
    y_train, y_test = labels[n_test:], labels[:n_test]
    zeros = float((X == 0).mean())
    print(
        f"\n{name}: {n_rows - n_test} training and {n_test} held-out rows of {X.shape[1]} genes, "
        f"library size {model.library:g}, {zeros:.1%} zeros, mean count {X.mean():.2f}"
        + (" (given as CSR)" if sparse else "")
    )
    start = time.perf_counter()
    true_fine = model.log_likelihood(X_test, 400)
    true_coarse = model.log_likelihood(X_test, 200)
    print(
        f"  true model: log p(x) {true_fine.mean():.2f} nats/row by quadrature (400^2 grid; a "
        f"200^2 grid differs by {np.abs(true_fine - true_coarse).max():.1e} at most; "
        f"{time.perf_counter() - start:.0f} s)"
    )
    train_input = sp.csr_matrix(X_train) if sparse else X_train
    test_input = sp.csr_matrix(X_test) if sparse else X_test
    pca = PCA(10, random_state=0).fit(np.log1p(X_train))
    pca_knn = knn_accuracy(
        pca.transform(np.log1p(X_train)), y_train, pca.transform(np.log1p(X_test)), y_test
    )
    truth = true_fine.mean()
    true_knn = knn_accuracy(
        model.posterior_means(X_train), y_train, model.posterior_means(X_test), y_test
    )
    header = f"{'model':<22} {'log p(x)':>9} {'to true':>8} {'5-NN acc.':>10} {'epochs':>7}"
    print(f"  {header} {'s':>5}")
    print(f"  {'true model, E[z|x]':<22} {truth:9.2f} {0:8.2f} {true_knn:10.3f}")
    for likelihood in ("poisson", "negative_binomial", "zinb"):
        start = time.perf_counter()
        vae = count_vae(likelihood, epochs).fit(train_input)
        seconds = time.perf_counter() - start
        log_px = vae.score_samples(test_input)
        codes = vae.transform(train_input), vae.transform(test_input)
        accuracy = knn_accuracy(codes[0], y_train, codes[1], y_test)
        mean, sem = log_px.mean(), log_px.std(ddof=1) / np.sqrt(len(log_px))
        print(
            f"  {likelihood + ' VAE':<22} {mean:9.2f} {mean - truth:8.2f} {accuracy:10.3f} "
            f"{vae.n_epochs_:7d} {seconds:5.0f}   (log p(x) ± {sem:.2f})"
        )
    print(f"  {'PCA, log(1+x)':<22} {'':>9} {'':>8} {pca_knn:10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=12000)
    parser.add_argument("--genes", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--sparse-library", type=float, default=12.0)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    dense = TrueModel(args.genes, 500.0, seed=0)
    run("Dense counts", dense, args.rows, sparse=False, epochs=args.epochs)
    sparse = TrueModel(args.genes, args.sparse_library, seed=0)
    run("Sparse counts", sparse, args.rows, sparse=True, epochs=args.epochs)


if __name__ == "__main__":
    main()
