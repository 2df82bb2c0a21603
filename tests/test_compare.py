"""vaekit.compare: four models, one latent size, held-out numbers that can be checked."""

import numpy as np
import pytest
from sklearn.decomposition import PCA, FactorAnalysis

from vaekit.compare import compare, default_models, to_markdown, write_csv
from vaekit.plots import comparison_bars

FAST = dict(max_epochs=5, learning_rate=3e-3)


@pytest.fixture(scope="module")
def rows(digits):
    X, y = digits
    X = X / 16 + np.random.default_rng(0).normal(0, 0.05, X.shape)  # no constant pixel
    models = default_models(2, random_state=0, **FAST)
    return compare(X[:1200], X[1200:], y[:1200], y[1200:], models=models, n_samples=50), X


def test_compare_reports_each_models_numbers(rows):
    rows, X = rows
    by_name = {r["model"]: r for r in rows}
    assert list(by_name) == ["VAE", "Autoencoder", "PCA", "FactorAnalysis"]
    pca = PCA(2, random_state=0).fit(X[:1200])
    assert by_name["PCA"]["log_likelihood"] == pytest.approx(pca.score(X[1200:]))
    recon = pca.inverse_transform(pca.transform(X[1200:]))
    assert by_name["PCA"]["squared_error"] == pytest.approx(((recon - X[1200:]) ** 2).sum(1).mean())
    fa = FactorAnalysis(2, random_state=0).fit(X[:1200])
    assert by_name["FactorAnalysis"]["log_likelihood"] == pytest.approx(fa.score(X[1200:]))
    assert by_name["Autoencoder"]["log_likelihood"] is None
    assert all(0.1 < r["knn_accuracy"] <= 1 for r in rows)
    assert all(r["note"] is None for r in rows)


def test_tables_and_plot(rows, tmp_path):
    rows = rows[0]
    table = to_markdown(rows)
    assert table.splitlines()[0].startswith("| model | log_likelihood")
    assert len(table.splitlines()) == 2 + len(rows) and "| Autoencoder | - |" in table
    text = write_csv(rows, tmp_path / "c.csv").read_text().splitlines()
    assert text[0] == "model,log_likelihood,squared_error,knn_accuracy,fit_seconds"
    assert text[2].startswith("Autoencoder,,")
    assert comparison_bars(rows, tmp_path / "c.png").stat().st_size > 1000


def test_a_degenerate_factor_analysis_is_flagged(digits):
    X = digits[0] / 16  # some pixels are always 0 in training
    models = {"FactorAnalysis": FactorAnalysis(2, random_state=0)}
    rows = compare(X[:1200], X[1200:], models=models)
    assert rows[0]["note"] and "constant" in rows[0]["note"]
    assert rows[0]["knn_accuracy"] is None
    assert "FactorAnalysis: " in to_markdown(rows)
