"""A linear VAE is probabilistic PCA: the trained model against the closed form.

Run: .venv/bin/python benchmarks/linear_ppca.py (about 30 s on one core, no network). Prints the
closed-form maximum-likelihood probabilistic PCA (Tipping & Bishop 1999) next to a VAE with an
affine encoder and decoder and a Gaussian likelihood with one learned sigma, trained on Gaussian
data; how the VAE approaches it during training, with the gap between its ELBO and its exact
log-likelihood; held-out log-likelihoods in nats per example; and the principal angles between a
linear autoencoder's decoder and the PCA subspace. Everything is seeded and runs on one thread,
so the numbers reproduce exactly. The default data and settings are those of
tests/test_linear.py.

--true-w general draws the true W with independent N(0, SCALES_j^2) entries in its column j
instead, so its columns are not orthogonal (and are longer), and leaves out the per-feature-noise
and autoencoder sections. --max-epochs sets the training budget (400 by
default); --true-w general --max-epochs 4000 takes about 3 minutes.
"""

import argparse

import numpy as np
import torch
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

import vaekit
from vaekit.baselines import (
    ProbabilisticPCA,
    factor_analysis,
    linear_vae_parameters,
    principal_angles,
)

D, Q = 10, 3
SCALES = (3.0, 2.0, 1.4)
NOISE = 0.5
N_TRAIN, N_TEST = 4000, 2000
K = 1000  # importance samples for the held-out log-likelihood
TRAINING = dict(
    batch_size=500,
    learning_rate=5e-2,
    learning_rate_schedule="cosine",
    max_epochs=400,
    patience=None,
    validation_fraction=0,
    verbose=False,
)
SEEDS = (0, 1, 2, 3, 4)
TRACE_POINTS = 10  # rows of the training trace


def gaussian_data(n, noise=NOISE, seed=0, true_w="orthogonal"):
    """Rows of x = W z + mu + noise * eps, and W: orthogonal columns of norms SCALES (as the
    tests), or for true_w="general" independent N(0, SCALES_j^2) entries in column j."""
    rng = np.random.default_rng(seed)
    if true_w == "orthogonal":
        basis, _ = np.linalg.qr(rng.standard_normal((D, D)))
        W = basis[:, :Q] * np.array(SCALES)
    else:
        W = rng.standard_normal((D, Q)) * np.array(SCALES)
    mu = rng.normal(0.0, 2.0, D)
    X = rng.standard_normal((n, Q)) @ W.T + noise * rng.standard_normal((n, D)) + mu
    return X, W


def linear_vae(seed, training):
    """The documented linear VAE, not yet fitted."""
    return vaekit.VAE(
        Q,
        architecture="linear",
        likelihood="gaussian",
        sigma="shared",
        n_samples=10,
        random_state=seed,
        **training,
    )


def column_cosines(W):
    """The largest |cosine| between two different columns of W (0 for orthogonal columns)."""
    norms = np.linalg.norm(W, axis=0)
    return np.abs(W.T @ W / np.outer(norms, norms) - np.eye(W.shape[1])).max()


def exact_elbo(vae, X, W, mean, noise_variance):
    """The ELBO of each row in closed form, for the decoder x = W z + mean with noise variance
    sigma^2 and the encoder's q(z|x) = N(m, diag(v)): E_q[log p(x|z)] - KL(q || N(0, I))."""
    m, v = vae.posterior(X)
    squared = ((X - m @ W.T - mean) ** 2).sum(1) + v @ (W**2).sum(0)
    log_px = -0.5 * (X.shape[1] * np.log(2 * np.pi * noise_variance) + squared / noise_variance)
    return log_px - 0.5 * (v + m**2 - 1 - np.log(v)).sum(1)


def rotation_gap(W, noise_variance):
    """The smallest ELBO gap any diagonal Gaussian q(z|x) can have with the decoder W: the KL
    from the nearest diagonal Gaussian to the true posterior N(., sigma^2 M^-1), with
    M = W^T W + sigma^2 I, which is 0.5 (sum_j log M_jj - log det M) nats for every row. It is
    zero exactly when W^T W is diagonal."""
    M = W.T @ W + noise_variance * np.eye(W.shape[1])
    return 0.5 * (np.log(np.diag(M)).sum() - np.linalg.slogdet(M)[1])


class Trace:
    """A training callback that prints, every ``every`` epochs, how far the VAE's own model is
    from the optimum on the training rows, its ELBO gap log p(x) - ELBO (both in closed form,
    averaged over the rows), and the part of that gap that no diagonal q(z|x) could close."""

    def __init__(self, vae, X, optimum, every):
        self.vae, self.X, self.optimum, self.every = vae, X, optimum, every
        self.best = optimum.score(X)
        print(
            f"{'epoch':>6}{'log p(x)':>11}{'sigma^2':>10}{'sing. val.':>12}{'max |cos|':>11}"
            f"{'ELBO gap':>11}{'rotation':>11}"
        )

    def __call__(self, record):
        if record["epoch"] % self.every:
            return
        p = linear_vae_parameters(self.vae)
        own = ProbabilisticPCA.from_parameters(**p).score_samples(self.X)
        gap = (own - exact_elbo(self.vae, self.X, **p)).mean()
        sv = np.linalg.svd(p["W"], compute_uv=False)
        print(
            f"{record['epoch']:>6}{100 * (own.mean() / self.best - 1):>+10.4f}%"
            f"{rel(p['noise_variance'], self.optimum.noise_variance_):>10}"
            f"{100 * np.abs(sv / self.optimum.loadings_norms_ - 1).max():>11.3f}%"
            f"{column_cosines(p['W']):>11.3f}{gap:>11.5f}"
            f"{rotation_gap(p['W'], p['noise_variance']):>11.5f}"
        )


def sem(values):
    return values.std(ddof=1) / np.sqrt(len(values))


def rel(a, b):
    return f"{100 * (a / b - 1):+.3f}%"


def noise_and_autoencoder(X_train, training) -> None:
    """Factor analysis against probabilistic PCA on per-feature noise, and the autoencoder."""
    X_het, _ = gaussian_data(N_TRAIN + N_TEST, noise=np.linspace(0.2, 1.5, D), seed=1)
    het_train, het_test = X_het[:N_TRAIN], X_het[N_TRAIN:]
    het_ppca = ProbabilisticPCA(Q).fit(het_train).score(het_test)
    het_fa = factor_analysis(Q, random_state=0).fit(het_train).score(het_test)
    print("per-feature noise (sigma 0.2 to 1.5), held-out nats/example")
    print(f"  {'probabilistic PCA':<46}{het_ppca:>10.4f}")
    print(f"  {'factor analysis':<46}{het_fa:>10.4f}")

    ae = (
        vaekit.Autoencoder(
            Q, architecture="linear", likelihood="gaussian", sigma="fixed", **training
        )
        .set_params(random_state=SEEDS[0])
        .fit(X_train)
    )
    W_ae = linear_vae_parameters(ae)["W"]
    top = PCA(Q).fit(X_train).components_.T
    angles = ", ".join(f"{a:.4f}" for a in principal_angles(W_ae, top))
    control = principal_angles(W_ae, np.random.default_rng(0).standard_normal((D, Q))).max()
    print("\nlinear autoencoder (squared error), same training settings")
    print(f"  principal angles to the PCA subspace, degrees  {angles}")
    print(f"  largest angle to a random 3-D subspace         {control:.1f}")
    print(f"  max |cos| between its decoder's columns        {column_cosines(W_ae):.3f}")


def main(true_w: str, max_epochs: int) -> None:
    training = TRAINING | {"max_epochs": max_epochs}
    X, W_true = gaussian_data(N_TRAIN + N_TEST, true_w=true_w)
    X_train, X_test = X[:N_TRAIN], X[N_TRAIN:]
    optimum = ProbabilisticPCA(Q, ddof=0).fit(X_train)  # the maximum of the training likelihood
    true_sv = ", ".join(f"{s:.2f}" for s in np.linalg.svd(W_true, compute_uv=False))
    print(
        f"\nGaussian data: D={D}, q={Q}, a true W with singular values ({true_sv}) and "
        f"max |cos| {column_cosines(W_true):.2f} between its columns, noise sigma={NOISE}, "
        f"non-zero mean; {N_TRAIN} training and {N_TEST} test rows."
    )
    settings = ", ".join(f"{k}={v}" for k, v in training.items() if k != "verbose")
    print(f"Linear VAE: n_samples=10, {settings}.")

    print(
        "\ntraining trace on the training rows: relative errors against the closed form; the ELBO"
        " gap and its rotation part in nats/example"
    )
    vae = linear_vae(SEEDS[0], training)
    vae.fit(X_train, callback=Trace(vae, X_train, optimum, max(1, max_epochs // TRACE_POINTS)))
    seconds = sum(record["seconds"] for record in vae.history_)
    learned = linear_vae_parameters(vae)
    W = learned["W"]
    singular_values = np.linalg.svd(W, compute_uv=False)
    print(f"\nTrained {vae.n_epochs_} epochs in {seconds:.1f} s (random_state={SEEDS[0]}).\n")

    print(f"{'parameter':<26}{'closed form':>14}{'linear VAE':>14}{'rel. error':>12}")
    rows = [("sigma^2", optimum.noise_variance_, learned["noise_variance"])]
    rows += [
        (f"singular value {i + 1} of W", s, v)
        for i, (s, v) in enumerate(zip(optimum.loadings_norms_, singular_values, strict=True))
    ]
    for name, exact, got in rows:
        print(f"{name:<26}{exact:>14.5f}{got:>14.5f}{rel(got, exact):>12}")
    angle = principal_angles(W, optimum.components_.T).max()
    print(f"{'largest angle to span, deg':<26}{0.0:>14.3f}{angle:>14.3f}")
    print(f"{'max |cos| between columns':<26}{0.0:>14.3f}{column_cosines(W):>14.3f}")

    exact_rows = ProbabilisticPCA(Q).fit(X_train).score_samples(X_test)
    vae_rows = vae.score_samples(X_test, n_samples=K)
    own_rows = ProbabilisticPCA.from_parameters(**learned).score_samples(X_test)
    elbo_rows = vae.elbo(X_test, n_samples=K)
    fa = factor_analysis(Q, random_state=0).fit(X_train)
    print("\nheld-out log-likelihood, nats/example (mean ± standard error over test rows)")
    lines = [
        ("probabilistic PCA, exact (vaekit.baselines)", exact_rows),
        ("sklearn PCA(3).score_samples", PCA(Q).fit(X_train).score_samples(X_test)),
        (f"linear VAE, importance-sampled, K={K}", vae_rows),
        ("linear VAE's own N(mu, W W^T + s^2 I), exact", own_rows),
        (f"linear VAE ELBO, K={K}", elbo_rows),
        ("factor analysis (sklearn)", fa.score_samples(X_test)),
    ]
    for name, values in lines:
        print(f"  {name:<46}{values.mean():>10.4f} ± {sem(values):.4f}")
    print("paired differences, row by row")
    pairs = [
        ("VAE importance-sampled minus PPCA exact", vae_rows - exact_rows),
        ("VAE's own exact minus VAE importance-sampled", own_rows - vae_rows),
        ("VAE importance-sampled minus VAE ELBO", vae_rows - elbo_rows),
    ]
    for name, values in pairs:
        print(f"  {name:<46}{values.mean():>+10.6f} ± {sem(values):.6f}")

    if true_w == "orthogonal":
        noise_and_autoencoder(X_train, training)

    print(f"\nlinear VAE over random_state {SEEDS}: worst relative errors, angle and cosine")
    print(
        f"{'seed':>6}{'sigma^2':>11}{'sing. values':>14}{'angle deg':>11}{'max |cos|':>11}"
        f"{'log p(x)':>11}"
    )
    exact_score = exact_rows.mean()
    for seed in SEEDS:
        model = vae if seed == SEEDS[0] else linear_vae(seed, training).fit(X_train)
        p = linear_vae_parameters(model)
        sv = np.linalg.svd(p["W"], compute_uv=False)
        e_sigma = abs(p["noise_variance"] / optimum.noise_variance_ - 1)
        e_sv = np.abs(sv / optimum.loadings_norms_ - 1).max()
        a = principal_angles(p["W"], optimum.components_.T).max()
        e_score = abs(model.score(X_test, n_samples=K) / exact_score - 1)
        print(
            f"{seed:>6}{100 * e_sigma:>10.3f}%{100 * e_sv:>13.3f}%{a:>11.3f}"
            f"{column_cosines(p['W']):>11.3f}{100 * e_score:>10.4f}%"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--true-w", choices=("orthogonal", "general"), default="orthogonal")
    parser.add_argument("--max-epochs", type=int, default=TRAINING["max_epochs"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        main(args.true_w, args.max_epochs)
