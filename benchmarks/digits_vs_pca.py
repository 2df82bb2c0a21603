"""Quality on the raw digits: a 2-D VAE and autoencoder next to probabilistic PCA.

Run: .venv/bin/python benchmarks/digits_vs_pca.py (about 20 s, no network). Prints held-out
log-likelihoods in nats per image and the accuracy of a 5-NN classifier on the embeddings.
"""

import time

from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

import vaekit


def knn_accuracy(model, X_train, y_train, X_test, y_test) -> float:
    knn = KNeighborsClassifier(5).fit(model.transform(X_train), y_train)
    return knn.score(model.transform(X_test), y_test)


def main() -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

    start = time.perf_counter()
    vae = vaekit.VAE(n_components=2, learning_rate=3e-3, random_state=0, verbose=False).fit(X_train)
    vae_seconds = time.perf_counter() - start
    ae = vaekit.Autoencoder(n_components=2, learning_rate=3e-3, random_state=0, verbose=False).fit(
        X_train
    )
    pca = PCA(n_components=2).fit(X_train)

    print(f"\nDigits: {len(X_train)} training and {len(X_test)} test images of 8x8 pixels.")
    print(f"VAE trained {vae.n_epochs_} epochs in {vae_seconds:.1f} s.\n")
    rows = [
        ("VAE", f"{vae.score(X_test):.2f}", f"{vae.elbo(X_test).mean():.2f}", vae),
        ("probabilistic PCA", f"{pca.score(X_test):.2f}", "", pca),
        ("autoencoder", "", "", ae),
    ]
    print(f"{'model (2-D latent)':<20}{'log p(x) nats':>15}{'ELBO nats':>12}{'5-NN acc.':>11}")
    for name, log_px, elbo, model in rows:
        accuracy = knn_accuracy(model, X_train, y_train, X_test, y_test)
        print(f"{name:<20}{log_px:>15}{elbo:>12}{accuracy:>11.3f}")


if __name__ == "__main__":
    main()
